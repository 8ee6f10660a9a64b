"""Bad input through the real sidecar: every error has a documented name, a message that
names the part at fault, and the process goes on answering. Plus the wrong-output
regressions (output that was not strict JSON or not UTF-8), through every way out."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from message_adapter.sidecar.request_parsing import LAZY_FROM
from tests.helpers import (
    DOCUMENTED_NAMES,
    PYTHON,
    REPO,
    StreamSidecar,
    run_adapter,
    strict_json,
    unreachable_s3_env,
)

GOOD = ("loadNestedEvent", b'{"event": {"payload": 1}}')
PAD = b'"' + b"x" * (LAZY_FROM + 100) + b'"'  # makes a request large enough to parse lazily


def deep(levels: int, leaf: bytes = b"1") -> bytes:
    return b"[" * levels + leaf + b"]" * levels


# (command, request body, documented name, words the message must hold)
BAD_INPUTS = [
    ("noSuchCommand", b'{"event": {}}', "ProtocolError", ["unknown command 'noSuchCommand'"]),
    ("loadNestedEvent", b"{not json", "ProtocolError", ["not valid JSON"]),
    (
        "loadNestedEvent",
        b'{"event": {"payload": "\xff\xfe"}}',
        "ProtocolError",
        ["event.payload", "UTF-8", "0xff"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"payload": "\xff\xfe", "pad": ' + PAD + b"}}",
        "ProtocolError",
        ["event.payload", "UTF-8", "0xff"],
    ),
    (
        "createNextEvent",
        b'{"event": {"pad": ' + PAD + b'}, "handler_response": "\xc3"}',
        "ProtocolError",
        ["handler_response", "UTF-8"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"payload": ' + deep(3000) + b"}}",
        "ProtocolError",
        ["nests", "levels"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"task_config": {"a": ' + deep(3000) + b"}}}",
        "ProtocolError",
        ["nests", "levels"],
    ),
    (
        "createNextEvent",
        b'{"event": {"pad": ' + PAD + b'}, "handler_response": ' + deep(3000) + b"}",
        "ProtocolError",
        ["nests", "levels"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"task_config": {"a": "{$' + b"[0]" * 3000 + b'}"}}}',
        "TemplateError",
        ["task_config.a", "256 steps"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"task_config": {"a": "{$.x[}"}}}',
        "TemplateError",
        ["task_config.a", "valid JSONPath"],
    ),
    ("loadNestedEvent", b'{"event": {"task_config": []}}', "MessageError", ["task_config"]),
    ("loadNestedEvent", b'{"payload": 1}', "MessageError", ["'event' object"]),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": 1, "message_config": {"outputs": 5}}',
        "MessageError",
        ["message_config.outputs", "list"],
    ),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": 1, "message_config": {"outputs": '
        b'[{"source": "{$}", "destination": "{$.a[}"}]}}',
        "MessageError",
        ["message_config.outputs[0].destination", "valid JSONPath"],
    ),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": 1, "message_config": {"outputs": '
        b'[{"source": "{$}", "destination": "{$.a.b}"}]}, "schemas": null, "x": ' + deep(5) + b"}",
        "ok",
        [],
    ),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": 1, "schemas": {"output": "schemas/five.json"}}',
        "MessageError",
        ["schemas/five.json", "JSON Schema"],
    ),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": {}, "schemas": {"output": "schemas/dangling.json"}}',
        "MessageError",
        ["schemas/dangling.json", "missing.json", "$ref"],
    ),
    (
        "createNextEvent",
        b'{"event": {}, "handler_response": {}, "schemas": {"output": "schemas/refers.json"}}',
        "ValidationError",
        ["output schema", "'granules' is a required property"],
    ),
    (
        "loadNestedEvent",
        b'{"event": {"payload": ' + deep(600) + b'}, "schemas": {"input": "schemas/nested.json"}}',
        "MessageError",
        ["input schema", "nested.json", "too deeply"],
    ),
    (
        "loadAndUpdateRemoteEvent",
        b'{"event": {"meta": {"workflow_tasks": [1]}}, "context": {"functionName": "f"}}',
        "MessageError",
        ["meta.workflow_tasks", "list"],
    ),
    (
        "loadAndUpdateRemoteEvent",
        b'{"event": {"replace": {"Bucket": 1}}}',
        "MessageError",
        ["replace"],
    ),
    (
        "loadAndUpdateRemoteEvent",
        b'{"event": {"replace": {"Bucket": "b", "Key": "k", "TargetPath": "$"}}}',
        "RemoteStoreError",
        ["s3://b/k"],
    ),
    (
        "createNextEvent",
        b'{"event": {"ReplaceConfig": {"Path": "$.nothing"}, "cumulus_meta": {}}, '
        b'"handler_response": 1}',
        "MessageError",
        ["ReplaceConfig.Path"],
    ),
]


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("task")
    schemas = root / "schemas"
    (schemas / "defs").mkdir(parents=True)
    (schemas / "five.json").write_text("5")
    (schemas / "dangling.json").write_text('{"$ref": "missing.json#/a"}')
    (schemas / "refers.json").write_text('{"$ref": "defs/granules.json"}')
    (schemas / "defs" / "granules.json").write_text('{"type": "object", "required": ["granules"]}')
    (schemas / "nested.json").write_text('{"type": ["array", "integer"], "items": {"$ref": "#"}}')
    return root


@pytest.fixture(scope="module")
def sidecar(task_root: Path) -> Iterator[StreamSidecar]:
    process = StreamSidecar(cwd=task_root, env=unreachable_s3_env(LAMBDA_TASK_ROOT=str(task_root)))
    yield process
    assert process.close() == 0


@pytest.mark.parametrize(
    ("command", "body", "name", "words"),
    BAD_INPUTS,
    ids=[f"{index}-{case[2]}" for index, case in enumerate(BAD_INPUTS)],
)
def test_bad_input_gets_a_documented_error_and_the_sidecar_serves_on(
    sidecar: StreamSidecar, command: str, body: bytes, name: str, words: list[str]
) -> None:
    kind, answer = sidecar.request(command, body)
    if name == "ok":
        assert kind == "answer", answer
    else:
        assert kind == "error", answer
        assert answer["name"] == name, answer
        assert answer["name"] in DOCUMENTED_NAMES
        assert answer["command"] == command
        for word in words:
            assert word in answer["message"], answer["message"]
        assert len(answer["message"]) < 600, answer["message"]
    assert sidecar.request(*GOOD) == ("answer", {"input": 1, "config": {}})


def test_every_documented_name_is_in_protocol_md_error_table() -> None:
    table = (REPO / "protocol.md").read_text().split("| name | what triggers it |")[1]
    rows = table.split("\n\n")[0]
    for name in DOCUMENTED_NAMES:
        assert f"| `{name}` |" in rows


# ---- wrong output: regressions ------------------------------------------------------------


def test_invalid_utf8_is_refused_at_every_size() -> None:
    small = b'{"event": {"payload": "\xff\xfe"}}'
    large = b'{"event": {"payload": "\xff\xfe", "pad": ' + PAD + b"}}"
    for body in (small, large):
        result = run_adapter("stream", "--structured-errors", stdin=frame("loadNestedEvent", body))
        lines = result.stdout.split(b"\n")
        assert lines[0] == b"<ERROR>"
        assert strict_json(lines[1])["name"] == "ProtocolError"


def frame(command: str, body: bytes) -> bytes:
    return command.encode() + b"\n" + body + b"\n<EOC>\n"


NOT_JSON_NUMBERS = b'{"event": {"payload": [NaN, "\\ud800", Infinity, -Infinity, 1.5]}}'


def test_nan_with_a_lone_surrogate_is_written_as_strict_json_by_the_stream() -> None:
    result = run_adapter("stream", stdin=frame("loadNestedEvent", NOT_JSON_NUMBERS))
    assert result.returncode == 0, result.stderr
    answer = strict_json(result.stdout.split(b"\n")[0])
    assert answer["input"] == [None, "\ud800", None, None, 1.5]


def test_nan_with_a_lone_surrogate_is_written_as_strict_json_by_a_single_command() -> None:
    result = run_adapter("loadNestedEvent", stdin=NOT_JSON_NUMBERS)
    assert result.returncode == 0, result.stderr
    assert strict_json(result.stdout)["input"] == [None, "\ud800", None, None, 1.5]


@pytest.mark.parametrize("flags", [(), ("--pretty",)])
def test_run_writes_strict_json_with_and_without_pretty(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    (tmp_path / "task.py").write_text("def task(event, context):\n    return event['input']\n")
    (tmp_path / "message.json").write_bytes(
        b'{"payload": [NaN, "\\ud800", Infinity, 1e400, "\xc3\xa9"]}'
    )
    result = subprocess.run(
        [PYTHON, "-m", "message_adapter", "run", "task.py:task", "message.json", *flags],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert strict_json(result.stdout)["payload"][:3] == [None, "\ud800", None]
    assert b"1E+400" in result.stdout
    if flags:
        assert result.stdout.startswith(b'{\n  "payload": [\n    null,')


def test_eoc_with_any_whitespace_ends_the_frame() -> None:
    data = b"".join(
        b"loadNestedEvent\n" + b'{"event": {"payload": %d}}' % n + b"\n" + spaces + b"\n"
        for n, spaces in enumerate(
            [
                b"<EOC>",
                b" " * 10 + b"<EOC>" + b" " * 10,
                b"\t" * 40 + b"<EOC>\r",
                b"<EOC>" + b" " * 99,
            ]
        )
    )
    result = run_adapter("stream", stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.answers() == [{"input": n, "config": {}} for n in range(4)]


def test_a_number_beyond_float_range_is_kept_at_every_size() -> None:
    small = b'{"event": {"payload": [1e400, -2E+999]}}'
    large = b'{"event": {"payload": [1e400, -2E+999], "pad": ' + PAD + b"}}"
    for command in ("loadNestedEvent", "loadAndUpdateRemoteEvent"):
        for body in (small, large):
            result = run_adapter(command, stdin=body)
            assert result.returncode == 0, result.stderr
            payload = json.loads(result.stdout, parse_float=str)
            payload = payload.get("input", payload.get("payload"))
            assert [text.lower().replace("+", "") for text in payload] == ["1e400", "-2e999"]


def test_workflow_tasks_that_is_a_list_is_an_error_not_replaced() -> None:
    body = b'{"event": {"meta": {"workflow_tasks": []}}, "context": {"functionName": "f"}}'
    result = run_adapter("loadAndUpdateRemoteEvent", stdin=body)
    assert result.returncode == 1
    assert b"MessageError: meta.workflow_tasks must be an object" in result.stderr


def test_a_missing_schema_file_is_reported_once_per_path(tmp_path: Path) -> None:
    frames = b"".join(
        frame(
            "loadNestedEvent",
            b'{"event": {"payload": 1}, "schemas": {"input": "%s.json"}}' % name,
        )
        for name in (b"a", b"b", b"a", b"a", b"b")
    )
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(tmp_path)}
    result = subprocess.run(
        [PYTHON, "-m", "message_adapter", "stream"],
        input=frames,
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0
    warnings = result.stderr.decode().splitlines()
    assert len(warnings) == 2
    assert "a.json" in warnings[0] and "b.json" in warnings[1]
