"""``cumulus_logger`` (clients/python): the published CumulusLogger API and output."""

import io
import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from cumulus_logger import CumulusLogger  # noqa: E402

EVENT = {
    "cumulus_meta": {
        "execution_name": "ex-1",
        "asyncOperationId": "op-1",
        "parentExecutionArn": "arn:parent",
    },
    "meta": {"stack": "prod", "input_granules": [{"granuleId": "in-1"}]},
    "payload": {"granules": [{"granuleId": "g1"}]},
}


class Context:
    function_name = "SyncGranule"
    function_version = "4"


@pytest.fixture
def logger(request):
    """A logger of its own name writing into a buffer (``logger.out``)."""
    log = CumulusLogger(f"test-{request.node.name}", logging.DEBUG)
    out = io.StringIO()
    log.logger.handlers[0].setStream(out)
    log.out = out
    return log


def lines(logger) -> list[dict]:
    return [json.loads(line) for line in logger.out.getvalue().splitlines()]


def test_metadata_comes_from_the_message_and_the_context(logger):
    logger.setMetadata(EVENT, Context())
    message = logger.createMessage("hello")
    assert {k: v for k, v in message.items() if k != "timestamp"} == {
        "message": "hello",
        "asyncOperationId": "op-1",
        "executions": "ex-1",
        "granules": '["g1"]',
        "parentArn": "arn:parent",
        "sender": "SyncGranule",
        "stackName": "prod",
        "version": "4",
    }


def test_a_cma_wrapped_event_is_read_inside_cma_event(logger):
    logger.setMetadata({"cma": {"event": EVENT}}, Context())
    assert logger.createMessage("x")["executions"] == "ex-1"


def test_without_context_sender_and_version_are_unknown(logger):
    logger.setMetadata({}, None)
    assert set(logger.createMessage("x")) == {"message", "sender", "version", "timestamp"}
    assert logger.createMessage("x")["sender"] == "unknown"


def test_a_dict_context_is_read_too(logger):
    logger.setMetadata({}, {"function_name": "fn", "function_version": "2"})
    assert (logger.createMessage("x")["sender"], logger.createMessage("x")["version"]) == (
        "fn",
        "2",
    )


def test_each_call_writes_one_json_line_with_its_level(logger):
    logger.setMetadata(EVENT, Context())
    logger.info("found {} granules", 2)
    logger.warn("w")
    logger.fatal("f")
    logger.trace("t")
    assert [(line["level"], line["message"]) for line in lines(logger)] == [
        ("info", "found 2 granules"),
        ("warning", "w"),
        ("critical", "f"),
        ("debug", "t"),
    ]
    assert all(line["executions"] == "ex-1" for line in lines(logger))


def test_braces_are_kept_when_no_format_arguments_are_given(logger):
    assert logger.createMessage('json: {"a": 1}')["message"] == 'json: {"a": 1}'
    assert logger.createMessage("{x}", exc_info=False)["message"] == "{x}"


def test_exc_info_appends_the_traceback(logger):
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as error:
        assert "ZeroDivisionError" in logger.createMessage("oops", exc_info=True)["message"]
        from_instance = logger.createMessage("oops", exc_info=error)["message"]
    assert from_instance.startswith("oops Traceback")


def test_a_dict_message_is_logged_as_is_at_its_own_level(logger):
    logger.log({"message": "custom {}", "level": "error", "extra": 1})
    (line,) = lines(logger)
    assert (line["level"], line["message"], line["extra"]) == ("error", "custom {}", 1)


def test_lines_below_the_level_are_not_written(request):
    quiet = CumulusLogger(f"quiet-{request.node.name}", logging.WARNING)
    out = io.StringIO()
    quiet.logger.handlers[0].setStream(out)
    quiet.info("no")
    quiet.error("yes")
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == ["yes"]


def test_log_level_variable_sets_the_default_level(monkeypatch, request):
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    assert CumulusLogger(f"env-{request.node.name}").logger.level == logging.ERROR


def test_one_handler_per_logger_name(request):
    first = CumulusLogger(f"same-{request.node.name}")
    second = CumulusLogger(f"same-{request.node.name}")
    assert len(first.logger.handlers) == len(second.logger.handlers) == 1
    assert first.logger.propagate is False
