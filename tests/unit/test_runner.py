"""The shared core: one message through the adapter and a task, and the answers it makes."""

import datetime
from pathlib import Path
from typing import Any

import pytest

from message_adapter.errors import (
    MessageError,
    RemoteStoreError,
    TaskError,
    TaskOutputError,
    describe,
)
from message_adapter.jsonio import dumps
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import LocalDirStore, MemoryStore
from message_adapter.tasks.loading import ExecTask
from message_adapter.tasks.runner import (
    MAX_CAUSE_CHARS,
    MAX_ERROR_CHARS,
    MAX_OUTPUT_BYTES,
    RunResult,
    answer_for,
    answer_for_error,
    failure,
    run_message,
)

MESSAGE = {
    "cumulus_meta": {
        "system_bucket": "internal",
        "execution_name": "e1",
        "state_machine": "arn:sm",
    },
    "meta": {"collection": "MOD09GQ"},
    "task_config": {
        "name": "{$.meta.collection}",
        "cumulus_message": {"input": "{$.payload.granules}"},
    },
    "payload": {"granules": ["g1", "g2"]},
}


def echo_task(event: Any, context: Any) -> Any:
    return {"seen": event}


class NoGranulesWorkflowError(Exception):
    pass


def raising(error: Exception):
    def task(event: Any, context: Any) -> Any:
        raise error

    return task


# ---- run_message ------------------------------------------------------------------------


def test_task_gets_the_nested_event_without_message_config() -> None:
    result = run_message(Adapter(MemoryStore()), echo_task, MESSAGE)
    assert result.message["payload"] == {
        "seen": {
            "input": ["g1", "g2"],
            "config": {"name": "MOD09GQ"},
            "cumulus_config": {"state_machine": "arn:sm", "execution_name": "e1"},
        }
    }


def test_next_message_keeps_the_rest_of_the_message() -> None:
    result = run_message(Adapter(MemoryStore()), lambda e, c: 1, MESSAGE)
    assert result == RunResult({**MESSAGE, "payload": 1, "exception": "None"})


def test_context_reaches_the_task_and_workflow_tasks() -> None:
    context = {"functionName": "ingest", "activityArn": "arn:activity"}
    result = run_message(Adapter(MemoryStore()), lambda e, c: c["functionName"], MESSAGE, context)
    assert result.message["payload"] == "ingest"
    assert result.message["meta"]["workflow_tasks"] == {
        "0": {"name": "ingest", "version": None, "arn": "arn:activity"}
    }


def test_python_workflow_error_gives_the_incoming_message_with_the_exception() -> None:
    error = Exception("NoGranulesWorkflowError: nothing to do")
    result = run_message(Adapter(MemoryStore()), raising(error), MESSAGE)
    assert result == RunResult(
        {**MESSAGE, "payload": None, "exception": "NoGranulesWorkflowError: nothing to do"},
        "NoGranulesWorkflowError: nothing to do",
    )


def test_python_error_class_named_workflow_error_without_such_message_fails() -> None:
    # The Python client looks at the first argument, not the class: so does run.
    with pytest.raises(NoGranulesWorkflowError):
        run_message(Adapter(MemoryStore()), raising(NoGranulesWorkflowError("empty")), MESSAGE)


def test_workflow_error_named_by_an_exec_task_counts_too() -> None:
    class FailingExec(ExecTask):
        def __call__(self, nested_event: Any, context: Any = None) -> Any:
            raise TaskError("GranuleMissingWorkflowError", "gone")

    result = run_message(Adapter(MemoryStore()), FailingExec("true"), MESSAGE)
    assert result.message["exception"] == "GranuleMissingWorkflowError"


def test_other_task_errors_are_raised() -> None:
    with pytest.raises(ZeroDivisionError):
        run_message(Adapter(MemoryStore()), lambda e, c: 1 / 0, MESSAGE)


def test_adapter_errors_are_raised() -> None:
    with pytest.raises(MessageError, match="task_config"):
        run_message(Adapter(MemoryStore()), echo_task, {**MESSAGE, "task_config": [1]})


def test_result_that_is_not_json_is_a_task_output_error_naming_type_and_place() -> None:
    def task(event: Any, context: Any) -> Any:
        return {"granules": [{"date": datetime.datetime(2020, 1, 1)}]}

    with pytest.raises(TaskOutputError) as raised:
        run_message(Adapter(MemoryStore()), task, MESSAGE)
    assert describe(raised.value) == {
        "name": "TaskOutputError",
        "message": "the task's result is not JSON: $.granules[0].date is of type "
        "datetime.datetime; convert it with .isoformat()",
    }


def test_result_that_is_not_json_is_not_a_workflow_error() -> None:
    with pytest.raises(TaskOutputError):
        run_message(Adapter(MemoryStore()), lambda e, c: {"NoGranulesWorkflowError"}, MESSAGE)


def test_offloaded_payload_is_loaded_back_by_the_next_step(tmp_path: Path) -> None:
    adapter = Adapter(LocalDirStore(tmp_path))
    offload = {**MESSAGE, "ReplaceConfig": {"Path": "$.payload", "MaxSize": 1}}
    first = run_message(adapter, lambda e, c: {"big": "x" * 100}, offload).message
    assert first["payload"] == {} and first["replace"]["Bucket"] == "internal"
    assert list((tmp_path / "internal" / "events").iterdir())
    second = run_message(adapter, lambda e, c: e["input"], {**first, "task_config": {}})
    assert second.message["payload"] == {"big": "x" * 100}


# ---- pure rules -------------------------------------------------------------------------


def test_success_answer_is_the_compact_next_message() -> None:
    answer = answer_for(RunResult({"payload": "é"}))
    assert answer.succeeded and answer.output == '{"payload":"é"}'


def test_output_over_256_kb_fails_and_points_at_replace_config() -> None:
    answer = answer_for(RunResult({"payload": "x" * MAX_OUTPUT_BYTES}))
    assert not answer.succeeded
    assert answer.error == "MessageTooLargeError"
    assert "ReplaceConfig" in answer.cause and "262144" in answer.cause


def test_output_of_exactly_256_kb_is_accepted() -> None:
    filler = MAX_OUTPUT_BYTES - len(dumps({"p": ""}))
    assert answer_for(RunResult({"p": "x" * filler})).succeeded


def test_failure_is_trimmed_to_step_functions_limits() -> None:
    answer = failure("E" * 1000, "c" * 100_000)
    assert len(answer.error) == MAX_ERROR_CHARS and answer.error.endswith("(trimmed)")
    assert len(answer.cause) == MAX_CAUSE_CHARS


def test_error_answer_names_the_error_and_its_message_on_one_line() -> None:
    answer = answer_for_error(TaskError("BadGranule", "line one\nline two"))
    assert (answer.error, answer.cause) == ("BadGranule", "line one line two")


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("k" * 300, "File name too long"),
        ("folder", "names a folder"),
        ("x\ud800", "cannot be a file name"),
    ],
)
def test_local_store_failures_are_short_remote_store_errors(
    tmp_path: Path, key: str, words: str
) -> None:
    (tmp_path / "bucket" / "folder").mkdir(parents=True)
    store = LocalDirStore(tmp_path)
    with pytest.raises(RemoteStoreError, match=words) as raised:
        store.get_json("bucket", key)
    assert len(str(raised.value)) < 300


def test_the_activity_answer_is_strict_json_whatever_the_message_holds() -> None:
    import json

    from message_adapter.tasks.runner import RunResult, answer_for

    answer = answer_for(RunResult({"a": [float("nan"), float("inf")], "s": "\ud800"}))
    assert answer.output is not None
    assert json.loads(answer.output, parse_constant=lambda constant: 1 / 0) == {
        "a": [None, None],
        "s": "\ud800",
    }
