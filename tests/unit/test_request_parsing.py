"""Partial parsing of requests must give exactly the answers a full parse gives."""

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError

from message_adapter.errors import ProtocolError
from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar import request_parsing
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "", "é"]))
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "name", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
TEMPLATES = st.sampled_from(
    [
        "{$.meta.name}",
        "{{$.meta}}",
        "{[$.payload[*]]}",
        "pre-{$.meta.name}-{$.payload.id}",
        "{$}",
        "{$..id}",
        "{meta.x}",
        "{$.cumulus_meta.execution_name}",
        "plain",
        r"\d{1,3}",
        "{$.other}",
    ]
)
TASK_CONFIGS = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(TEMPLATES, VALUES), max_size=3
) | st.builds(
    lambda config, source: {**config, "cumulus_message": {"input": source}},
    st.dictionaries(st.sampled_from(["a", "b"]), TEMPLATES, max_size=2),
    TEMPLATES,
)
MESSAGES = st.fixed_dictionaries(
    {
        "cumulus_meta": st.just(
            {"state_machine": "sm", "execution_name": "ex", "system_bucket": "bucket"}
        )
    },
    optional={
        "meta": st.dictionaries(
            st.sampled_from(["name", "x", "workflow_tasks"]), VALUES, max_size=3
        ),
        "payload": VALUES,
        "other": VALUES,
        "task_config": TASK_CONFIGS,
        "exception": st.sampled_from([None, "None", "Err", {}]),
        "ReplaceConfig": st.sampled_from(
            [{"Path": "$.payload"}, {"FullMessage": True}, {"Path": "$.payload", "MaxSize": 10**6}]
        ),
    },
)


@pytest.fixture(autouse=True)
def parse_every_request_partially(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests use small requests, which are otherwise parsed whole."""
    monkeypatch.setattr(request_parsing, "LAZY_FROM", 0)


MESSAGE_CONFIGS = st.one_of(
    st.none(),
    st.just({"input": "{$}"}),
    st.just({"outputs": [{"source": "{$}", "destination": "{$.meta.out}"}]}),
)


def normalized(answer: Any) -> Any:
    """Offload keys are random: compare everything else."""
    text = json.loads(dumps(answer))
    if isinstance(text, dict) and isinstance(text.get("replace"), dict):
        text["replace"]["Key"] = "events/<uuid>"
    return text


def both(command: str, request: dict) -> tuple[Any, Any]:
    body = dumps(request)
    outcomes = []
    for run in (
        lambda adapter: adapter.run(command, loads(body)),
        lambda adapter: adapter.run_json(command, body),
    ):
        try:
            outcomes.append(normalized(run(Adapter(MemoryStore()))))
        except Exception as error:  # both paths must fail alike
            outcomes.append((type(error).__name__, str(error)))
    return outcomes[0], outcomes[1]


@settings(max_examples=300, deadline=None)
@given(MESSAGES, st.sampled_from([None, {}, {"functionName": "f"}]))
def test_load_and_update_remote_event_is_unchanged_by_partial_parsing(
    message: dict, context: Any
) -> None:
    full, partial = both("loadAndUpdateRemoteEvent", {"event": message, "context": context})
    assert partial == full


@settings(max_examples=300, deadline=None)
@given(MESSAGES)
def test_load_nested_event_is_unchanged_by_partial_parsing(message: dict) -> None:
    full, partial = both("loadNestedEvent", {"event": message, "schemas": None})
    assert partial == full


@settings(max_examples=300, deadline=None)
@given(MESSAGES, VALUES, MESSAGE_CONFIGS)
def test_create_next_event_is_unchanged_by_partial_parsing(
    message: dict, response: Any, message_config: Any
) -> None:
    request = {"event": message, "handler_response": response, "message_config": message_config}
    full, partial = both("createNextEvent", request)
    assert partial == full


def test_untouched_parts_are_passed_through_as_written() -> None:
    body = b'{"event": {"payload": {"n": 1.50, "big": 1e2}, "meta": {}}, "context": null}'
    answer = dumps(Adapter(MemoryStore()).run_json("loadAndUpdateRemoteEvent", body))
    assert b'"payload":{"n": 1.50, "big": 1e2}' in answer


def test_request_over_several_lines_still_answers_on_one_line() -> None:
    body = b'{"event": {"payload": {\n"a": [1,\n2]}},\n "handler_response": [\n3]}\n'
    for command in ("loadAndUpdateRemoteEvent", "createNextEvent"):
        answer = dumps(Adapter(MemoryStore()).run_json(command, body))
        assert b"\n" not in answer
        assert json.loads(answer) == Adapter(MemoryStore()).run(command, json.loads(body))


def test_carriage_returns_never_reach_the_answer() -> None:
    body = b'{"event": {"payload": {"a":\r\n1}}}\r\n'
    answer = dumps(Adapter(MemoryStore()).run_json("loadAndUpdateRemoteEvent", body))
    assert answer == b'{"payload":{"a":  1}}'


def test_a_line_break_inside_a_string_is_refused_as_in_a_whole_parse() -> None:
    body = b'{"event": {"payload": "two\nlines"}}'
    with pytest.raises(ProtocolError, match="not valid JSON"):
        Adapter(MemoryStore()).run_json("loadAndUpdateRemoteEvent", body)


def test_raw_parts_are_decoded_for_schema_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    (tmp_path / "in.json").write_text('{"type": "object", "required": ["granules"]}')
    body = b'{"event": {"payload": {"files": []}}, "schemas": {"input": "in.json"}}'
    with pytest.raises(ValidationError, match="'granules' is a required property"):
        Adapter(MemoryStore()).run_json("loadNestedEvent", body)
