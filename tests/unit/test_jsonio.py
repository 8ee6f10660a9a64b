"""JSON in and out: lossless for every JSON value, including what JavaScript can emit."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from message_adapter.jsonio import dumps, dumps_text, loads

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.text(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_every_json_value_round_trips(value: Any) -> None:
    assert loads(dumps(value)) == value


@given(JSON_VALUES)
def test_output_is_what_the_standard_library_reads_back(value: Any) -> None:
    assert json.loads(dumps(value)) == value


def test_integers_beyond_64_bits_stay_exact() -> None:
    assert loads(b"[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert dumps(-(2**80)) == str(-(2**80)).encode()


def test_escaped_lone_surrogate_is_read_and_written_escaped() -> None:
    value = loads(b'{"s": "x\\udc00y"}')
    assert value == {"s": "x\udc00y"}
    assert dumps(value) == b'{"s":"x\\udc00y"}'


def test_output_is_compact_utf8() -> None:
    assert dumps({"a": ["é", 1]}) == '{"a":["é",1]}'.encode()


def test_dumps_text_renders_compact_json() -> None:
    assert dumps_text({"k": "v"}) == '{"k":"v"}'


def test_invalid_json_raises_value_error_with_the_reason() -> None:
    with pytest.raises(ValueError, match="truncated|Expecting"):
        loads(b"{")
