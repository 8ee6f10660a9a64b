"""The sidecar's cold-start JSON (the standard library) reads and writes what msgspec does."""

from hypothesis import given, settings
from hypothesis import strategies as st

from message_adapter import jsonio
from tests.strategies import AWKWARD_VALUES, render


@settings(max_examples=500, deadline=None)
@given(AWKWARD_VALUES, st.sampled_from(["compact", "spaced", "indented", "crlf"]))
def test_light_reading_gives_msgspecs_value_or_steps_aside(value: object, layout: str) -> None:
    text = render(value, layout)
    try:
        light = jsonio.loads_light(text.decode("utf-8"))
    except jsonio.NeedsMsgspec:
        return
    assert light == jsonio.loads(text)
    assert repr(light) == repr(jsonio.loads(text))


@settings(max_examples=500, deadline=None)
@given(AWKWARD_VALUES)
def test_light_writing_gives_msgspecs_bytes(value: object) -> None:
    text = render(value, "compact").decode("utf-8")
    try:
        parsed = jsonio.loads_light(text)
    except jsonio.NeedsMsgspec:
        return
    light = jsonio.dumps_light(parsed)
    if light is not None:
        assert light == jsonio.dumps(parsed)


def test_light_reading_refuses_floats_and_constants() -> None:
    for text in ("1.5", "[1e3]", '{"a": NaN}', "-Infinity", "[1, 2", "1" * 5000):
        try:
            jsonio.loads_light(text)
        except jsonio.NeedsMsgspec:
            continue
        raise AssertionError(f"{text[:20]!r} was read by the standard library")


def test_light_writing_escapes_control_characters_as_msgspec_does() -> None:
    text = "".join(chr(code) for code in range(0x80)) + "\u2028\ufeff é 𝄞"
    assert jsonio.dumps_light({"s": text, "n": [10**30, -1, True, None]}) == jsonio.dumps(
        {"s": text, "n": [10**30, -1, True, None]}
    )
