"""Property tests against the real sidecar: any framing protocol.md allows gets the same
answers; any request, however awkward, gets strict JSON or a documented error, and the
process serves on. Bounded so that each runs in a few seconds."""

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar.commands import Adapter
from message_adapter.sidecar.request_parsing import LAZY_FROM
from message_adapter.stores import MemoryStore
from tests.helpers import (
    DOCUMENTED_NAMES,
    StreamSidecar,
    run_adapter,
    strict_json,
    unreachable_s3_env,
)
from tests.strategies import AWKWARD_MESSAGES, LAYOUTS, MESSAGES, render

COMMANDS = ("loadAndUpdateRemoteEvent", "loadNestedEvent", "createNextEvent")
SPACE = st.text(alphabet=" \t", max_size=12)


@st.composite
def framed(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """Frames for 1-4 requests with random blank lines, whitespace, line ends and JSON
    layout, and the answers a canonical framing gets for them."""
    data = b""
    expected = []
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    for _ in range(draw(st.integers(1, 4))):
        command = draw(st.sampled_from(COMMANDS))
        message = draw(MESSAGES)
        message.pop("ReplaceConfig", None)  # no S3 here
        request = {"event": message, "context": {"functionName": "f"}, "handler_response": [1]}
        body = render(request, draw(LAYOUTS))
        if newline == b"\r\n":
            body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        blank = draw(st.lists(SPACE, max_size=2))
        data += b"".join(line.encode() + newline for line in blank)
        data += draw(SPACE).encode() + command.encode() + draw(SPACE).encode() + newline
        data += body + newline
        data += draw(SPACE).encode() + b"<EOC>" + draw(SPACE).encode() + newline
        try:
            expected.append(strict_json(dumps(Adapter(MemoryStore()).run(command, loads(body)))))
        except Exception as error:
            expected.append(("error", type(error).__name__))
    if draw(st.booleans()):
        data += draw(SPACE).encode() + b"<EXIT>" + draw(SPACE).encode() + newline
    return data, expected


@settings(max_examples=25, deadline=None)
@given(framed())
def test_any_framing_protocol_md_allows_gets_the_canonical_answers(
    frames: tuple[bytes, list[Any]],
) -> None:
    data, expected = frames
    result = run_adapter("stream", "--structured-errors", stdin=data)
    assert result.returncode == 0, result.stderr
    lines = iter(result.stdout.split(b"\n"))
    answers = []
    for line in lines:
        if line == b"<ERROR>":
            answers.append(("error", strict_json(next(lines))["name"]))
        elif line:
            answers.append(strict_json(line))
        else:
            break
        assert next(lines) == b"<EOC>"
    assert answers == expected


@pytest.fixture(scope="module")
def sidecar() -> Iterator[StreamSidecar]:
    process = StreamSidecar(env=unreachable_s3_env())
    yield process
    assert process.close() == 0


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    AWKWARD_MESSAGES,
    LAYOUTS,
    st.sampled_from([0, LAZY_FROM]),
    st.sampled_from([None, b"\xff", b"\xc3", b"\xed\xa0\x80", b"}", b"\\u"]),
    st.integers(0, 10**6),
)
def test_any_request_gets_strict_json_or_a_documented_error_from_every_command(
    sidecar: StreamSidecar,
    message: dict,
    layout: str,
    pad: int,
    corruption: bytes | None,
    where: int,
) -> None:
    for command in COMMANDS:
        request = {"event": message, "handler_response": message.get("payload")}
        body = render(request, layout, pad)
        if corruption is not None:
            inside = body.rfind(b'"', 0, where % len(body))
            body = body[: inside + 1] + corruption + body[inside + 1 :]
        kind, answer = sidecar.request(command, body)  # parsed as strict UTF-8 JSON
        if kind == "error":
            assert answer["name"] in DOCUMENTED_NAMES, answer
            assert answer["message"]
    assert sidecar.request("loadNestedEvent", b'{"event": {"payload": 1}}') == (
        "answer",
        {"input": 1, "config": {}},
    )
