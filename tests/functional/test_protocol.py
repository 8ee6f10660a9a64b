"""The stream protocol and the single commands, through a real subprocess."""

import json
import signal
import subprocess
import sys
from typing import Any

import pytest

from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar import request_parsing
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore

ADAPTER = [sys.executable, "-m", "message_adapter"]
MESSAGE = {
    "cumulus_meta": {"state_machine": "sm", "execution_name": "ex"},
    "meta": {"name": "MOD09GQ"},
    "payload": {"granules": [{"id": "g1"}]},
    "task_config": {"name": "{$.meta.name}"},
}


def frame(command: str, request: Any) -> bytes:
    return f"{command}\n{json.dumps(request)}\n<EOC>\n".encode()


def stream(data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ADAPTER, "stream", *args], input=data, capture_output=True, timeout=30)


def answers(stdout: bytes) -> list[Any]:
    """Parse ``<JSON>\n<EOC>\n`` answers, checking the framing."""
    lines = stdout.decode().split("\n")
    assert lines.pop() == ""
    assert lines[1::2] == ["<EOC>"] * (len(lines) // 2)
    return [json.loads(line) for line in lines[0::2]]


def test_full_cycle_in_one_stream() -> None:
    loaded_frame = frame("loadAndUpdateRemoteEvent", {"event": MESSAGE, "context": {}})
    result = stream(loaded_frame)
    (loaded,) = answers(result.stdout)
    nested_input = {"event": loaded, "context": {}, "schemas": None}
    next_input = {"event": loaded, "handler_response": {"done": True}}
    result = stream(
        loaded_frame
        + frame("loadNestedEvent", nested_input)
        + frame("createNextEvent", next_input)
        + b"<EXIT>\n"
    )
    assert result.returncode == 0, result.stderr
    assert answers(result.stdout) == [
        loaded,
        {
            "input": {"granules": [{"id": "g1"}]},
            "config": {"name": "MOD09GQ"},
            "cumulus_config": {"state_machine": "sm", "execution_name": "ex"},
        },
        {**loaded, "payload": {"done": True}, "exception": "None"},
    ]


def test_each_answer_is_one_line_followed_by_eoc() -> None:
    result = stream(frame("loadNestedEvent", {"event": MESSAGE}))
    assert result.stdout.count(b"\n") == 2
    assert result.stdout.endswith(b"\n<EOC>\n")


def test_request_json_may_span_lines() -> None:
    body = json.dumps({"event": MESSAGE}, indent=2).encode()
    result = stream(b"loadNestedEvent\n" + body + b"\n<EOC>\n")
    assert answers(result.stdout)[0]["config"] == {"name": "MOD09GQ"}


def test_blank_lines_whitespace_and_crlf_are_accepted() -> None:
    data = b"\r\n\n  loadNestedEvent  \r\n" + json.dumps({"event": {}}).encode() + b"\r\n<EOC>\r\n"
    result = stream(data + b" <EXIT> \r\n")
    assert result.returncode == 0
    assert answers(result.stdout) == [{"input": None, "config": {}}]


def test_exit_stops_reading_further_input() -> None:
    result = stream(b"<EXIT>\n" + frame("loadNestedEvent", {"event": {}}))
    assert (result.returncode, result.stdout) == (0, b"")


def test_end_of_input_between_frames_exits_zero() -> None:
    result = stream(frame("loadNestedEvent", {"event": {}}))
    assert result.returncode == 0


def test_end_of_input_inside_a_frame_exits_one_with_a_message() -> None:
    result = stream(b'loadNestedEvent\n{"event": {}}\n')
    assert result.returncode == 1
    assert b"input ended inside a 'loadNestedEvent' frame" in result.stderr


def test_error_exits_one_with_one_line_on_stderr() -> None:
    result = stream(
        frame("loadNestedEvent", {"event": {"task_config": {"x": "{1,3}"}}})
        + frame("loadNestedEvent", {"event": {}})
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.count(b"\n") == 1
    assert b"TemplateError: task_config.x" in result.stderr


def test_structured_errors_answer_with_an_error_frame_and_keep_serving() -> None:
    result = stream(
        frame("loadNestedEvent", {"event": {"task_config": []}})
        + frame("noSuchCommand", {"event": {}})
        + b"loadNestedEvent\n{not json\n<EOC>\n"
        + frame("loadNestedEvent", {"event": {"payload": 1}}),
        "--structured-errors",
    )
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert lines[0::3][:3] == ["<ERROR>"] * 3
    errors = [json.loads(line) for line in lines[1:9:3]]
    assert [error["name"] for error in errors] == ["MessageError", "ProtocolError", "ProtocolError"]
    assert errors[0] == {
        "name": "MessageError",
        "command": "loadNestedEvent",
        "message": "task_config must be a JSON object, got list",
    }
    assert "unknown command 'noSuchCommand'" in errors[1]["message"]
    assert lines[9:] == ['{"input":1,"config":{}}', "<EOC>"]


def test_stderr_is_quiet_unless_verbose() -> None:
    quiet = stream(frame("loadNestedEvent", {"event": {}}))
    loud = stream(frame("loadNestedEvent", {"event": {}}), "--verbose")
    assert quiet.stderr == b""
    assert b"loadNestedEvent took" in loud.stderr
    assert quiet.stdout == loud.stdout


def test_unicode_round_trips() -> None:
    event = {"payload": {"text": "héllo ✓ 𝄞 中文"}}
    result = stream(frame("loadNestedEvent", {"event": event}))
    assert answers(result.stdout)[0]["input"] == event["payload"]


def test_escaped_lone_surrogate_is_accepted_and_written_back_escaped() -> None:
    data = b'loadNestedEvent\n{"event": {"payload": "a\\ud800b"}}\n<EOC>\n'
    result = stream(data)
    assert result.returncode == 0, result.stderr
    assert b'"a\\ud800b"' in result.stdout


def test_big_integers_and_floats_round_trip_exactly() -> None:
    data = (
        b'loadNestedEvent\n{"event": {"payload": [123456789012345678901234567890, '
        b"-98765432109876543210, 0.1, 1.7976931348623157e308, 5e-324]}}\n<EOC>\n"
    )
    result = stream(data)
    parsed = json.loads(result.stdout.split(b"\n")[0])
    assert parsed["input"] == [
        123456789012345678901234567890,
        -98765432109876543210,
        0.1,
        1.7976931348623157e308,
        5e-324,
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_one(signum: int) -> None:
    process = subprocess.Popen(
        [*ADAPTER, "stream"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(frame("loadNestedEvent", {"event": {}}))
    process.stdin.flush()
    assert process.stdout.readline() == b'{"input":null,"config":{}}\n'
    process.send_signal(signum)
    assert process.wait(timeout=10) == 1
    process.stdin.close()
    process.stdout.close()
    process.stderr.close()


def test_stream_serves_many_frames_in_order() -> None:
    data = b"".join(frame("loadNestedEvent", {"event": {"payload": n}}) for n in range(50))
    result = stream(data)
    assert [answer["input"] for answer in answers(result.stdout)] == list(range(50))


# ---- single commands


def single(command: str, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([*ADAPTER, command], input=data, capture_output=True, timeout=30)


def test_single_command_answers_on_stdout() -> None:
    result = single("loadNestedEvent", json.dumps({"event": MESSAGE}).encode())
    assert result.returncode == 0
    assert json.loads(result.stdout)["config"] == {"name": "MOD09GQ"}


def test_single_command_error_is_one_line_and_exit_one() -> None:
    result = single("createNextEvent", b'{"event": []}')
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr.decode().count("\n") == 1
    assert "expects a JSON object with an 'event' object" in result.stderr.decode()


def test_single_command_rejects_invalid_json() -> None:
    result = single("loadNestedEvent", b"{")
    assert result.returncode == 1
    assert b"loadNestedEvent: the request is not valid JSON" in result.stderr


def test_console_script_module_and_help_agree() -> None:
    result = subprocess.run([*ADAPTER, "--help"], capture_output=True, timeout=30)
    assert result.returncode == 0
    for command in (b"stream", b"loadAndUpdateRemoteEvent", b"loadNestedEvent", b"createNextEvent"):
        assert command in result.stdout


def test_unknown_cli_command_explains_usage() -> None:
    result = subprocess.run([*ADAPTER, "lodNestedEvent"], capture_output=True, timeout=30)
    assert result.returncode == 2
    assert b"No such command" in result.stderr


def test_large_request_through_the_stream_matches_a_full_parse() -> None:
    granules = [
        {"granuleId": f"g{index}", "files": [{"size": index, "ratio": 0.5}]}
        for index in range(2000)
    ]
    message = {
        "meta": {"name": "M"},
        "payload": {"granules": granules},
        "task_config": {"name": "{$.meta.name}", "n": "{$.payload.granules[1].granuleId}"},
    }
    body = dumps({"event": message})
    assert len(body) > request_parsing.LAZY_FROM * 2
    result = subprocess.run(
        [sys.executable, "-m", "message_adapter", "stream"],
        input=b"loadNestedEvent\n" + body + b"\n<EOC>\n",
        capture_output=True,
        timeout=60,
    )
    answer, end, rest = result.stdout.split(b"\n")
    assert (end, rest) == (b"<EOC>", b"")
    assert loads(answer) == Adapter(MemoryStore()).run("loadNestedEvent", loads(body))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are Linux's")
def test_a_large_request_gives_the_stream_1_mib_pipes() -> None:
    import fcntl

    message = {**MESSAGE, "payload": {"text": "x" * 100_000}}
    process = subprocess.Popen(ADAPTER + ["stream"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        process.stdin.write(frame("loadAndUpdateRemoteEvent", {"event": message}))
        process.stdin.flush()
        assert loads(process.stdout.readline())["payload"] == message["payload"]
        assert process.stdout.readline() == b"<EOC>\n"
        pipes = (process.stdin, process.stdout)
        sizes = [fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) for pipe in pipes]
        assert sizes == [1 << 20, 1 << 20]
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()
