"""How long S3 calls may take: the CUMULUS_MESSAGE_ADAPTER_S3_* settings."""

import pytest

from message_adapter.errors import RemoteStoreError
from message_adapter.stores import S3Timeouts


def test_defaults_suit_a_lambda_task() -> None:
    assert S3Timeouts.from_environment({}) == S3Timeouts(connect=5, read=10, total=30)


def test_each_setting_is_read_in_seconds() -> None:
    env = {
        "CUMULUS_MESSAGE_ADAPTER_S3_CONNECT_TIMEOUT": "1.5",
        "CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT": " 4 ",
        "CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT": "120",
    }

    assert S3Timeouts.from_environment(env) == S3Timeouts(connect=1.5, read=4, total=120)


def test_an_empty_setting_means_the_default() -> None:
    assert S3Timeouts.from_environment({"CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT": ""}).total == 30


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_setting_that_is_not_a_positive_number_is_named(value: str) -> None:
    env = {"CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT": value}

    with pytest.raises(RemoteStoreError) as raised:
        S3Timeouts.from_environment(env)

    assert str(raised.value).startswith(f"CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT={value!r}")
    assert "default (10 s)" in str(raised.value)
