"""JSON in and out: lossless for every JSON value, including what JavaScript can emit."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from message_adapter.errors import MessageError
from message_adapter.jsonio import dumps, dumps_pretty, dumps_text, loads

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


def strict(data: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def test_nan_and_infinity_are_written_as_null_even_beside_a_lone_surrogate() -> None:
    value = loads(b'[NaN, "\\ud800", Infinity, -Infinity]')
    assert strict(dumps(value)) == [None, "\ud800", None, None]
    assert strict(dumps([float("nan"), 1.5])) == [None, 1.5]


def test_a_number_beyond_float_range_is_kept_exactly() -> None:
    value = loads(b'{"n": 1e400, "m": -2.5E+999, "f": 0.5}')
    assert dumps(value) == b'{"n":1E+400,"m":-2.5E+999,"f":0.5}'


def test_pretty_output_follows_the_same_rules() -> None:
    value = loads(b'{"a": [NaN, "\\ud800", 1e400, "\xc3\xa9"], "b": {}}')
    pretty = dumps_pretty(value)
    assert strict(pretty) == strict(dumps(value))
    assert pretty.startswith(b'{\n  "a": [\n    null,\n    "\\ud800",\n    1E+400,')
    assert dumps_pretty({"a": ["é"]}) == '{\n  "a": [\n    "é"\n  ]\n}'.encode()


def test_invalid_utf8_names_the_byte_and_its_offset() -> None:
    with pytest.raises(ValueError, match="not valid UTF-8 .byte 0xff at offset 7"):
        loads(b'{"a": "\xff"}')


def test_input_in_another_encoding_is_refused() -> None:
    with pytest.raises(ValueError):
        loads('{"a": 1}'.encode("utf-16"))


def test_a_value_too_deep_to_write_is_a_message_error() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(MessageError, match="nests objects and lists too deeply"):
        dumps(value)
