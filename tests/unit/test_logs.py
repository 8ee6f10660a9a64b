"""Cumulus-format log lines (message_adapter/logs.py): fields, order, levels, env vars."""

import io
import json

from message_adapter.logs import (
    Logger,
    fields_from_environment,
    granule_ids,
    level_name,
    message_fields,
    record,
    task_environment,
    threshold,
    timestamp,
)

MESSAGE = {
    "cumulus_meta": {
        "execution_name": "ex-1",
        "parentExecutionArn": "arn:parent",
        "asyncOperationId": "op-1",
    },
    "meta": {"stack": "prod", "input_granules": [{"granuleId": "in-1"}]},
    "payload": {"granules": [{"granuleId": "g1"}, {"granuleId": "g2"}]},
}
CONTEXT = {"functionName": "DiscoverGranules", "functionVersion": "7"}


def test_task_environment_holds_what_the_node_client_sets():
    assert task_environment(MESSAGE, CONTEXT) == {
        "EXECUTIONS": "ex-1",
        "SENDER": "DiscoverGranules",
        "TASKVERSION": "7",
        "STACKNAME": "prod",
        "GRANULES": '["g1","g2"]',
        "PARENTARN": "arn:parent",
        "ASYNCOPERATIONID": "op-1",
    }


def test_task_environment_reads_a_lambda_context_object_too():
    class Context:
        function_name = "fn"
        function_version = "$LATEST"

    env = task_environment({}, Context())
    assert (env["SENDER"], env["TASKVERSION"]) == ("fn", "$LATEST")


def test_values_the_message_lacks_are_left_out_but_granules_is_always_a_list():
    assert task_environment({"payload": None}) == {"GRANULES": "[]"}


def test_granules_fall_back_to_input_granules_and_stop_at_500():
    assert granule_ids({"meta": MESSAGE["meta"]}) == ["in-1"]
    many = {"payload": {"granules": [{"granuleId": str(n)} for n in range(600)]}}
    assert granule_ids(many) == [str(n) for n in range(500)]


def test_a_cma_wrapped_message_is_read_inside_cma_event():
    wrapped = {"cma": {"event": MESSAGE, "task_config": {}}}
    assert task_environment(wrapped, CONTEXT) == task_environment(MESSAGE, CONTEXT)


def test_fields_are_named_as_cumulus_logger_names_them():
    assert message_fields(MESSAGE, CONTEXT) == {
        "asyncOperationId": "op-1",
        "executions": "ex-1",
        "granules": '["g1","g2"]',
        "parentArn": "arn:parent",
        "sender": "DiscoverGranules",
        "stackName": "prod",
        "version": "7",
    }
    assert fields_from_environment({"EXECUTIONS": "x", "OTHER": "y"}) == {"executions": "x"}


def test_record_puts_extra_keys_first_and_cumulus_keys_in_logger_order():
    line = record("info", "hello", message_fields(MESSAGE, CONTEXT), {"event": "task"}, now=0)
    assert list(line) == [
        "event",
        "asyncOperationId",
        "executions",
        "granules",
        "level",
        "message",
        "parentArn",
        "sender",
        "stackName",
        "timestamp",
        "version",
    ]
    assert line["timestamp"] == "1970-01-01T00:00:00.000Z"


def test_record_drops_missing_fields_and_defaults_sender_to_unknown():
    line = record("warn", "w", {}, now=1.5)
    assert line == {
        "level": "warn",
        "message": "w",
        "sender": "unknown",
        "timestamp": "1970-01-01T00:00:01.500Z",
    }


def test_cumulus_keys_win_over_extra_keys_of_the_same_name():
    assert record("info", "real", {}, {"message": "fake", "level": "x"})["message"] == "real"


def test_timestamp_is_iso_utc_with_milliseconds():
    assert timestamp(1700000000.25) == "2023-11-14T22:13:20.250Z"


def test_log_level_comes_from_log_level_then_lambdas_variable():
    assert threshold({}) == "info"
    assert threshold({"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}) == "debug"
    assert threshold({"LOG_LEVEL": "error", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}) == "error"
    assert threshold({"LOG_LEVEL": "nonsense"}) == "info"


def test_level_names_accept_python_spellings():
    assert (level_name("WARNING"), level_name("critical"), level_name("Trace")) == (
        "warn",
        "fatal",
        "trace",
    )


def test_logger_writes_one_json_line_per_call_above_its_level():
    out = io.StringIO()
    log = Logger(out, {"sender": "worker"}, level="warn")
    log.info("quiet")
    log.error("loud", fields={"executions": "ex-1"}, event="task")
    (line,) = out.getvalue().splitlines()
    parsed = json.loads(line)
    assert (parsed["level"], parsed["message"], parsed["sender"]) == ("error", "loud", "worker")
    assert (parsed["executions"], parsed["event"]) == ("ex-1", "task")


def test_logger_logs_an_exception_as_cumulus_logger_logs_an_error():
    out = io.StringIO()
    try:
        raise ValueError("bad granule")
    except ValueError as error:
        Logger(out).log("error", "failed", exc=error)
    logged = json.loads(out.getvalue())["error"]
    assert (logged["name"], logged["message"]) == ("ValueError", "bad granule")
    assert logged["stack"][0] == "Traceback (most recent call last):"
    assert logged["stack"][-1] == "ValueError: bad granule"
