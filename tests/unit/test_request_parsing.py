"""Partial parsing of requests must give exactly the answers a full parse gives."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import ValidationError

from message_adapter.errors import ProtocolError
from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar import request_parsing
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore
from tests.strategies import (
    AWKWARD_MESSAGES,
    LAYOUTS,
    MESSAGE_CONFIGS,
    MESSAGES,
    VALUES,
    render,
)


@pytest.fixture(autouse=True)
def parse_every_request_partially(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests use small requests, which are otherwise parsed whole."""
    monkeypatch.setattr(request_parsing, "LAZY_FROM", 0)


def normalized(answer: Any) -> Any:
    """Offload keys are random: compare everything else (numbers by value: raw parts keep
    ``1.50`` and ``1e400`` as written)."""
    text = json.loads(dumps(answer), parse_float=Decimal)
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


@given(MESSAGES, st.sampled_from([None, {}, {"functionName": "f"}]))
def test_load_and_update_remote_event_is_unchanged_by_partial_parsing(
    message: dict, context: Any
) -> None:
    full, partial = both("loadAndUpdateRemoteEvent", {"event": message, "context": context})
    assert partial == full


@given(MESSAGES)
def test_load_nested_event_is_unchanged_by_partial_parsing(message: dict) -> None:
    full, partial = both("loadNestedEvent", {"event": message, "schemas": None})
    assert partial == full


@given(MESSAGES, VALUES, MESSAGE_CONFIGS)
def test_create_next_event_is_unchanged_by_partial_parsing(
    message: dict, response: Any, message_config: Any
) -> None:
    request = {"event": message, "handler_response": response, "message_config": message_config}
    full, partial = both("createNextEvent", request)
    assert partial == full


def outcome(command: str, body: bytes, lazy_from: int) -> Any:
    """The normalized answer, or the error's name and message, with ``LAZY_FROM`` set."""
    saved = request_parsing.LAZY_FROM
    request_parsing.LAZY_FROM = lazy_from
    try:
        return normalized(Adapter(MemoryStore()).run_json(command, body))
    except Exception as error:
        return (type(error).__name__, str(error))
    finally:
        request_parsing.LAZY_FROM = saved


CORRUPTIONS = st.sampled_from([None, b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n", b"}"])


@given(
    st.sampled_from(["loadAndUpdateRemoteEvent", "loadNestedEvent", "createNextEvent"]),
    AWKWARD_MESSAGES,
    AWKWARD_MESSAGES.map(lambda message: message.get("payload")),
    LAYOUTS,
    st.sampled_from([0, request_parsing.LAZY_FROM + 1]),
    CORRUPTIONS,
    st.integers(0, 10**6),
)
def test_lazy_and_whole_parsing_agree_on_any_request_above_and_below_32_kib(
    command: str,
    message: dict,
    response: Any,
    layout: str,
    pad: int,
    corruption: bytes | None,
    where: int,
) -> None:
    """Lazy parsing (for requests from LAZY_FROM bytes up) and whole parsing give the same
    answer or the same error for any layout, size, awkward value or stray byte."""
    body = render({"event": message, "handler_response": response}, layout, pad)
    if corruption is not None:
        inside = body.rfind(b'"', 0, where % len(body))  # just inside a string, mostly
        body = body[: inside + 1] + corruption + body[inside + 1 :]
    assert outcome(command, body, 0) == outcome(command, body, 1 << 40)


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


PAYLOAD_AS_WRITTEN = b'{"n": 1.50, "big": 1e2, "e": "\\u00e9"}'


def nested_answer(task_config: bytes, schemas: bytes = b"null") -> bytes:
    body = (
        b'{"event": {"payload": ' + PAYLOAD_AS_WRITTEN + b', "meta": {"m": 1}, '
        b'"task_config": ' + task_config + b'}, "schemas": ' + schemas + b"}"
    )
    return dumps(Adapter(MemoryStore()).run_json("loadNestedEvent", body))


def test_an_input_template_taking_payload_whole_passes_it_through_as_written() -> None:
    answer = nested_answer(b'{"cumulus_message": {"input": "{$.payload}"}}')
    assert answer.startswith(b'{"input":' + PAYLOAD_AS_WRITTEN + b',"config":{}')


def test_a_config_template_taking_a_key_whole_passes_it_through_as_written() -> None:
    answer = nested_answer(b'{"all": "{$.payload}", "list": "{[$.payload]}"}')
    assert b'"config":{"all":' + PAYLOAD_AS_WRITTEN + b',"list":[' + PAYLOAD_AS_WRITTEN + b"]}" in (
        answer
    )


def test_a_key_some_template_looks_into_is_decoded_everywhere() -> None:
    answer = nested_answer(b'{"n": "{$.payload.n}", "cumulus_message": {"input": "{$.payload}"}}')
    assert json.loads(answer)["input"] == {"n": 1.5, "big": 100.0, "e": "é"}
    assert PAYLOAD_AS_WRITTEN not in answer


def test_a_key_written_into_text_is_decoded() -> None:
    answer = nested_answer(
        b'{"text": "p={$.payload}", "cumulus_message": {"input": "{$.payload}"}}'
    )
    assert json.loads(answer)["config"]["text"] == 'p={"n":1.5,"big":100.0,"e":"é"}'


def test_a_config_schema_has_whole_keys_decoded_for_its_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    (tmp_path / "config.json").write_text('{"properties": {"all": {"required": ["granules"]}}}')
    with pytest.raises(ValidationError, match="'granules' is a required property"):
        nested_answer(b'{"all": "{$.payload}"}', b'{"config": "config.json"}')


def test_an_input_schema_checks_a_whole_payload_that_stays_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    (tmp_path / "in.json").write_text('{"type": "object", "required": ["n"]}')
    task_config = b'{"cumulus_message": {"input": "{$.payload}"}}'
    answer = nested_answer(task_config, b'{"input": "in.json"}')
    assert answer.startswith(b'{"input":' + PAYLOAD_AS_WRITTEN)
    (tmp_path / "strict.json").write_text('{"type": "object", "required": ["granules"]}')
    with pytest.raises(ValidationError, match="'granules' is a required property"):
        nested_answer(task_config, b'{"input": "strict.json"}')
