"""S3Store against a real S3 endpoint (moto server on loopback): settings, writes, retries.

The message rules that use the store, and the error messages as users see them, are tested
in test_s3_flow.py; this file covers how the store reaches S3 and copes when S3 misbehaves.
"""

import email.utils
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from message_adapter.errors import RemoteStoreError
from message_adapter.jsonio import dumps as _json
from message_adapter.stores import S3Store, make_s3_client
from tests.helpers import (
    DEAD_ENDPOINT,
    FlakyProxy,
    MotoServer,
    get_json,
    port_is_free,
    put_json,
    run_adapter,
    stream_input,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("s3_env")


# ---- reaching S3: the standard AWS settings ------------------------------------------------


def test_aws_endpoint_url_is_the_endpoint(s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/a", {"stored": True})

    assert S3Store().get_json(bucket, "events/a") == {"stored": True}


def test_aws_endpoint_url_s3_wins_over_aws_endpoint_url(
    s3: Any, bucket: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_server.endpoint)
    put_json(s3, bucket, "events/a", [1, 2])

    assert S3Store().get_json(bucket, "events/a") == [1, 2]


def test_region_comes_from_aws_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")

    assert make_s3_client().meta.region_name == "eu-west-2"


def test_credentials_come_from_the_environment(
    s3: Any, bucket: str, restricted_credentials: Any
) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    restricted_credentials(allow=[{"Action": "s3:GetObject", "Resource": "*"}])

    assert S3Store().get_json(bucket, "events/a") == {"ok": 1}


def test_rejected_credentials_are_named(
    s3: Any, bucket: str, restricted_credentials: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    restricted_credentials(allow=[{"Action": "s3:GetObject", "Resource": "*"}])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")

    with pytest.raises(RemoteStoreError, match=rf"s3://{bucket}/events/a: the AWS credentials"):
        S3Store().get_json(bucket, "events/a")


# ---- reaching S3: CUMULUS_ENV=testing (http://$LOCALSTACK_HOST:4566, fixed credentials) ---


@pytest.fixture(scope="module")
def server_on_4566() -> Any:
    """A moto server where the historic testing convention looks: 127.0.0.1:4566."""
    if not port_is_free(4566):
        pytest.skip("port 4566 is taken (LocalStack running?), so moto cannot listen there")
    try:
        server = MotoServer(4566)
    except RuntimeError as error:
        pytest.skip(f"could not start moto on port 4566: {error}")
    yield server
    server.stop()


def test_cumulus_env_testing_means_localstack_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUMULUS_ENV", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    client = make_s3_client()

    credentials = client._request_signer._credentials
    assert client.meta.endpoint_url == "http://localhost:4566"
    assert client.meta.region_name == "us-east-1"
    assert (credentials.access_key, credentials.secret_key) == ("my-id", "my-secret")


def test_cumulus_env_testing_honours_localstack_host(
    server_on_4566: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_ENV", "testing")
    monkeypatch.setenv("LOCALSTACK_HOST", "127.0.0.1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)  # ignored in testing mode
    make_s3_client().create_bucket(Bucket="cma-localstack-host")

    S3Store().put_json("cma-localstack-host", "events/a", b'{"via":"4566"}')

    assert S3Store().get_json("cma-localstack-host", "events/a") == {"via": "4566"}


def test_cumulus_env_testing_reaches_localhost_from_the_cli(
    server_on_4566: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_ENV", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    client = make_s3_client()
    client.create_bucket(Bucket="cma-localhost")
    client.put_object(Bucket="cma-localhost", Key="events/a", Body=b'{"via":"localhost"}')
    request = {
        "event": {
            "payload": {},
            "replace": {"Bucket": "cma-localhost", "Key": "events/a", "TargetPath": "$.payload"},
        }
    }

    run = run_adapter("loadAndUpdateRemoteEvent", stdin=_json(request))

    assert (run.returncode, run.stderr) == (0, b"")
    assert run.json() == {"payload": {"via": "localhost"}}


# ---- writing: expiry, content type, never overwriting -----------------------------------------


def test_put_marks_the_object_to_expire_in_seven_days(s3: Any, bucket: str) -> None:
    S3Store().put_json(bucket, "events/a", b"{}")

    head = s3.head_object(Bucket=bucket, Key="events/a")
    expires = email.utils.parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["expires"])
    expected = datetime.now(timezone.utc) + timedelta(days=7)
    assert abs(expires - expected) < timedelta(minutes=5)
    assert head["ContentType"] == "application/json"


def test_put_never_overwrites_an_object(s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/a", {"first": 1})

    with pytest.raises(RemoteStoreError, match=rf"s3://{bucket}/events/a: an object already"):
        S3Store().put_json(bucket, "events/a", b'{"second":2}')
    assert get_json(s3, bucket, "events/a") == {"first": 1}


def test_put_of_identical_content_onto_itself_succeeds(s3: Any, bucket: str) -> None:
    S3Store().put_json(bucket, "events/a", b'{"same":1}')

    S3Store().put_json(bucket, "events/a", b'{"same":1}')

    assert get_json(s3, bucket, "events/a") == {"same": 1}


def test_put_to_an_endpoint_without_conditional_writes_writes_plainly(
    s3: Any, bucket: str, flaky_s3: FlakyProxy
) -> None:
    flaky_s3.fail(
        "PUT",
        status=501,
        code="NotImplemented",
        times=99,
        when=lambda headers: "If-None-Match" in headers,
    )

    S3Store().put_json(bucket, "events/a", b'{"plain":1}')

    assert get_json(s3, bucket, "events/a") == {"plain": 1}
    assert flaky_s3.count("PUT") == 2


# ---- transient failures are retried ----------------------------------------------------------


def test_read_is_retried_after_a_503(s3: Any, bucket: str, flaky_s3: FlakyProxy) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", status=503, code="SlowDown")

    assert S3Store().get_json(bucket, "events/a") == {"ok": 1}
    assert flaky_s3.count("GET") == 2


def test_write_is_retried_after_a_500(s3: Any, bucket: str, flaky_s3: FlakyProxy) -> None:
    flaky_s3.fail("PUT", status=500, code="InternalError")

    S3Store().put_json(bucket, "events/a", b'{"ok":1}')

    assert get_json(s3, bucket, "events/a") == {"ok": 1}
    assert flaky_s3.count("PUT") == 2


def test_write_whose_reply_was_lost_is_not_reported_as_a_conflict(
    s3: Any, bucket: str, flaky_s3: FlakyProxy
) -> None:
    flaky_s3.fail("PUT", kind="lose", status=503, code="ServiceUnavailable")

    S3Store().put_json(bucket, "events/a", b'{"ok":1}')

    assert get_json(s3, bucket, "events/a") == {"ok": 1}
    assert flaky_s3.count("PUT") == 2


def test_cli_retries_a_503_too(s3: Any, bucket: str, flaky_s3: FlakyProxy) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", status=503, code="SlowDown")
    request = {
        "event": {
            "payload": {},
            "replace": {"Bucket": bucket, "Key": "events/a", "TargetPath": "$.payload"},
        }
    }

    run = run_adapter("loadAndUpdateRemoteEvent", stdin=_json(request))

    assert (run.returncode, run.stderr) == (0, b"")
    assert run.json() == {"payload": {"ok": 1}}
    assert flaky_s3.count("GET") == 2


def test_read_cut_off_mid_body_is_retried(s3: Any, bucket: str, flaky_s3: FlakyProxy) -> None:
    put_json(s3, bucket, "events/a", {"text": "x" * 1000})
    flaky_s3.fail("GET", kind="truncate")

    assert S3Store().get_json(bucket, "events/a") == {"text": "x" * 1000}
    assert flaky_s3.count("GET") == 2


def test_s3_that_comes_up_late_is_retried(
    s3: Any, bucket: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection is retried, and S3 answering by the next attempt is enough.

    S3 comes up right after the first refusal, not after a set time: botocore's backoff
    for connection errors is random and, since botocore 1.36, spans well under a second.
    """
    import urllib3.util.connection

    put_json(s3, bucket, "events/a", {"late": True})
    proxy = FlakyProxy(moto_server.port, listening=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    connect = urllib3.util.connection.create_connection
    refused = []

    def come_up_after_the_first_refusal(address: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return connect(address, *args, **kwargs)
        except ConnectionRefusedError:
            refused.append(address)
            if len(refused) == 1:
                proxy.listen()
            raise

    monkeypatch.setattr(
        urllib3.util.connection, "create_connection", come_up_after_the_first_refusal
    )
    try:
        assert S3Store().get_json(bucket, "events/a") == {"late": True}
    finally:
        proxy.stop()
    assert len(refused) == 1
    assert proxy.count("GET") == 1


def test_aws_max_attempts_limits_the_retries(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", status=503, code="SlowDown")

    with pytest.raises(RemoteStoreError, match=rf"cannot read s3://{bucket}/events/a \(SlowDown"):
        S3Store().get_json(bucket, "events/a")
    assert flaky_s3.count("GET") == 1


def test_unreachable_s3_is_named_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    with pytest.raises(RemoteStoreError, match=r"cannot read s3://b/k: S3 could not be reached"):
        S3Store().get_json("b", "k")


def test_object_that_is_not_json_is_named(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="events/a", Body=b"<html>")

    with pytest.raises(RemoteStoreError, match=rf"s3://{bucket}/events/a does not hold JSON"):
        S3Store().get_json(bucket, "events/a")


# ---- every call is bounded in time -----------------------------------------------------------


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each attempt waits 0.3 s for an answer; a whole call may take 1 s."""
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT", "1")


def test_read_from_s3_that_never_answers_fails_at_the_timeout(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, short_timeouts: None
) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", kind="hang", times=100)
    store = S3Store()
    store.client  # noqa: B018 (made before the clock starts, as in a warm sidecar)

    started = time.monotonic()
    with pytest.raises(RemoteStoreError) as raised:
        store.get_json(bucket, "events/a")
    elapsed = time.monotonic() - started

    assert 1 <= elapsed < 2
    message = str(raised.value)
    where = f"cannot read s3://{bucket}/events/a: S3 at {flaky_s3.endpoint}"
    assert f"{where} did not answer within 1 s" in message
    assert "CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT" in message
    assert flaky_s3.count("GET") >= 2  # attempts timed out and were retried meanwhile


def test_write_to_s3_that_never_answers_fails_at_the_timeout(
    bucket: str, flaky_s3: FlakyProxy, short_timeouts: None
) -> None:
    flaky_s3.fail("PUT", kind="hang", times=100)
    store = S3Store()
    store.client  # noqa: B018

    started = time.monotonic()
    with pytest.raises(RemoteStoreError, match=r"cannot write s3://.*did not answer within 1 s"):
        store.put_json(bucket, "events/a", b'{"ok":1}')

    assert time.monotonic() - started < 2


def test_no_attempt_starts_after_the_timeout(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, short_timeouts: None
) -> None:
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", kind="hang", times=100)
    with pytest.raises(RemoteStoreError):
        S3Store().get_json(bucket, "events/a")
    attempts = flaky_s3.count("GET")

    # The attempt in flight at the deadline ends at its read timeout, and so does the call.
    wait_until(lambda: not any(t.name == "cma-s3" for t in threading.enumerate()), timeout=2)

    assert flaky_s3.count("GET") == attempts


def test_s3_that_keeps_failing_is_given_up_at_the_timeout_naming_the_last_failure(
    s3: Any,
    bucket: str,
    flaky_s3: FlakyProxy,
    short_timeouts: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "50")  # retries outlast the timeout, always
    put_json(s3, bucket, "events/a", {"ok": 1})
    store = S3Store()
    store.get_json(bucket, "events/a")  # botocore's lazy loading done before the clock runs
    flaky_s3.fail("GET", status=503, code="SlowDown", times=100)

    with pytest.raises(RemoteStoreError) as raised:
        store.get_json(bucket, "events/a")

    message = str(raised.value)
    assert "did not answer within 1 s" in message
    assert "last failure: HTTP 503 SlowDown" in message


def test_request_that_hangs_once_is_retried_within_the_timeout(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT", "0.3")
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", kind="hang")

    assert S3Store().get_json(bucket, "events/a") == {"ok": 1}
    assert flaky_s3.count("GET") == 2


def test_read_timeout_of_the_last_attempt_names_its_setting(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", kind="hang")

    with pytest.raises(RemoteStoreError) as raised:
        S3Store().get_json(bucket, "events/a")

    message = str(raised.value)
    assert "did not answer within 0.3 s" in message
    assert "CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT" in message


def test_invalid_timeout_setting_is_named(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT", "soon")

    with pytest.raises(RemoteStoreError, match="CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT='soon' is not"):
        S3Store().get_json(bucket, "events/a")


def test_sidecar_answers_a_hung_s3_within_the_timeout_and_serves_the_next_request(
    s3: Any, bucket: str, flaky_s3: FlakyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the overall timeout, five attempts of 1 s each would take over 5 s.
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT", "1.5")
    put_json(s3, bucket, "events/a", {"ok": 1})
    flaky_s3.fail("GET", kind="hang", times=100)
    stored = {"Bucket": bucket, "Key": "events/a", "TargetPath": "$.payload"}

    run = run_adapter(
        "stream",
        "--structured-errors",
        "--verbose",
        stdin=stream_input(
            ("loadAndUpdateRemoteEvent", {"event": {"payload": {}, "replace": stored}}),
            ("loadNestedEvent", {"event": {"payload": [1]}}),
        ),
    )

    error_frame, answer_frame, end = run.stdout.split(b"\n<EOC>\n")
    assert (run.returncode, end) == (0, b"")
    assert error_frame.startswith(b"<ERROR>\n")
    error = json.loads(error_frame[len(b"<ERROR>\n") :])
    assert error["name"] == "RemoteStoreError"
    assert "did not answer within 1.5 s" in error["message"]
    assert "CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT" in error["message"]
    assert json.loads(answer_frame) == {"input": [1], "config": {}}
    took = re.search(rb"loadAndUpdateRemoteEvent took ([\d.]+) ms", run.stderr)
    assert took is not None, run.stderr
    assert float(took.group(1)) < 4000  # 1.5 s, plus importing boto3 and making the client
