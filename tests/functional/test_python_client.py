"""The Python client ``run_cumulus_task`` (clients/python), in both of its modes.

Behaviour tests run against a real sidecar (the checkout's console script) and in-process;
each test starts from no sidecar, so environment changes reach the next one it spawns.
"""

import collections
import contextlib
import copy
import datetime
import decimal
import enum
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))

import run_cumulus_task as client  # noqa: E402
from run_cumulus_task import (  # noqa: E402
    AdapterProcessError,
    AdapterTimeoutError,
    MessageAdapterError,
    MessageTooLargeError,
    SchemaValidationError,
    TaskOutputError,
    context_dict,
    run_cumulus_task,
)
from run_cumulus_task.sidecar import (  # noqa: E402
    Sidecar,
    adapter_command,
    command_timeout,
    get_sidecar,
)

from tests.helpers import wait_until  # noqa: E402

MODES = ["sidecar", "inprocess"]


class LambdaContext:
    """Shaped like the Python Lambda runtime's context object."""

    def __init__(self) -> None:
        self.function_name = "SyncGranule"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123:function:SyncGranule"
        self.memory_limit_in_mb = "512"
        self.aws_request_id = "req-1"
        self.identity = object()  # not JSON: must not reach the adapter
        self._epoch_deadline_time_in_ms = 1


def message(**extra: Any) -> dict:
    return {
        "cumulus_meta": {"state_machine": "arn:sm", "execution_name": "exec-1"},
        "meta": {"collection": "MOD09GQ", "bucket": "protected"},
        "task_config": {"collection": "{$.meta.collection}", "fixed": [1, 2]},
        "payload": {"granules": [{"granuleId": "g1"}]},
        **extra,
    }


def echo(event: dict, context: Any) -> Any:
    return event["input"]


@pytest.fixture(autouse=True)
def no_sidecar_between_tests(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in (
        "CUMULUS_MESSAGE_ADAPTER_DIR",
        "CUMULUS_MESSAGE_ADAPTER_DISABLED",
        "CUMULUS_MESSAGE_ADAPTER_MODE",
        "LAMBDA_TASK_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    client.stop_adapter()
    yield
    client.stop_adapter()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", request.param)
    return request.param


@pytest.fixture
def sidecar_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")


# ---- the task's view ---------------------------------------------------------------------


def test_task_gets_input_and_config_resolved_from_task_config(mode: str) -> None:
    seen = {}

    def task(event: dict, context: Any) -> None:
        seen.update(event)

    run_cumulus_task(task, message())
    assert seen["input"] == {"granules": [{"granuleId": "g1"}]}
    assert seen["config"] == {"collection": "MOD09GQ", "fixed": [1, 2]}
    assert seen["cumulus_config"] == {"state_machine": "arn:sm", "execution_name": "exec-1"}


def test_task_output_becomes_the_next_payload(mode: str) -> None:
    result = run_cumulus_task(lambda event, context: {"done": [1, 2]}, message())
    assert result["payload"] == {"done": [1, 2]}
    assert result["exception"] == "None"
    assert result["meta"] == message()["meta"]


def test_taskargs_are_passed_to_the_task(mode: str) -> None:
    result = run_cumulus_task(
        lambda event, context, factor, label: [factor, label],
        message(),
        None,
        None,
        factor=3,
        label="x",
    )
    assert result["payload"] == [3, "x"]


def test_task_receives_the_callers_context_object(mode: str) -> None:
    context = LambdaContext()
    seen = []
    run_cumulus_task(lambda event, ctx: seen.append(ctx), message(), context)
    assert seen == [context]


def test_lambda_context_is_recorded_in_workflow_tasks(mode: str) -> None:
    result = run_cumulus_task(echo, message(), LambdaContext())
    assert result["meta"]["workflow_tasks"] == {
        "0": {
            "name": "SyncGranule",
            "version": "$LATEST",
            "arn": "arn:aws:lambda:us-east-1:123:function:SyncGranule",
        }
    }


def test_cma_message_is_unwrapped_with_its_parameters(mode: str) -> None:
    wrapped = {"cma": {"event": message(task_config=None), "task_config": {"n": "{$.meta.bucket}"}}}
    seen = []
    result = run_cumulus_task(lambda event, context: seen.append(event["config"]), wrapped)
    assert seen == [{"n": "protected"}]
    assert "cma" not in result


def test_outputs_in_cumulus_message_place_the_response(mode: str) -> None:
    msg = message(
        task_config={
            "cumulus_message": {
                "outputs": [
                    {"source": "{$.id}", "destination": "{$.meta.new_id}"},
                    {"source": "{$}", "destination": "{$.payload}"},
                ]
            }
        }
    )
    result = run_cumulus_task(lambda event, context: {"id": 7}, msg)
    assert result["meta"]["new_id"] == 7
    assert result["payload"] == {"id": 7}


# ---- the caller's message ----------------------------------------------------------------


def test_callers_message_is_unchanged_even_when_the_task_mutates_its_input(mode: str) -> None:
    original = message()
    before = copy.deepcopy(original)

    def mutating(event: dict, context: Any) -> Any:
        event["input"]["granules"].append({"granuleId": "added"})
        event["config"]["fixed"].append(3)
        return event["input"]

    result = run_cumulus_task(mutating, original, LambdaContext())
    assert original == before
    assert len(result["payload"]["granules"]) == 2


# ---- the WorkflowError rule --------------------------------------------------------------


def test_workflow_error_returns_the_message_with_exception_and_null_payload(mode: str) -> None:
    def failing(event: dict, context: Any) -> None:
        raise Exception("SomeWorkflowError: granule missing")

    result = run_cumulus_task(failing, message())
    assert result == {
        **message(),
        "payload": None,
        "exception": "SomeWorkflowError: granule missing",
    }


def test_workflow_error_on_a_cma_message_keeps_the_incoming_shape(mode: str) -> None:
    wrapped = {"cma": {"event": message()}, "payload": {"outer": 1}}

    def failing(event: dict, context: Any) -> None:
        raise RuntimeError("WorkflowError")

    result = run_cumulus_task(failing, wrapped)
    assert result == {"cma": {"event": message()}, "payload": None, "exception": "WorkflowError"}


def test_workflow_error_does_not_change_the_callers_message(mode: str) -> None:
    original = message()

    def failing(event: dict, context: Any) -> None:
        raise Exception("WorkflowError")

    run_cumulus_task(failing, original)
    assert original == message()


def test_other_task_errors_are_reraised_unchanged(mode: str) -> None:
    error = ValueError("SomeError")

    def failing(event: dict, context: Any) -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        run_cumulus_task(failing, message())
    assert raised.value is error


def test_error_whose_first_argument_is_not_a_string_is_reraised(mode: str) -> None:
    def failing(event: dict, context: Any) -> None:
        raise KeyError(404, "WorkflowError")

    with pytest.raises(KeyError):
        run_cumulus_task(failing, message())


def test_error_without_arguments_is_reraised(mode: str) -> None:
    def failing(event: dict, context: Any) -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError):
        run_cumulus_task(failing, message())


# ---- what the task returns ----------------------------------------------------------------

NOT_JSON = [
    ({"granules": [{"date": datetime.datetime(2020, 1, 1)}]}, "$.granules[0].date", "datetime"),
    ({"total": decimal.Decimal("NaN")}, "$.total", "Decimal('NaN')"),
    ({"ids": {1, 2}}, "$.ids", "set"),
    ([object()], "$[0]", "object"),
    ({"raw": b"\x00"}, "$.raw", "bytes"),
    ({"by_flag": {True: 1}}, "$.by_flag", "key of type bool"),
]


@pytest.mark.parametrize(("result", "where", "what"), NOT_JSON, ids=lambda v: str(v)[:30])
def test_result_that_is_not_json_is_a_task_output_error_naming_type_and_place(
    mode: str, result: Any, where: str, what: str
) -> None:
    with pytest.raises(TaskOutputError) as raised:
        run_cumulus_task(lambda event, context: result, message())
    assert isinstance(raised.value, TypeError) and raised.value.name == "TaskOutputError"
    assert str(raised.value).startswith(f"the task's result is not JSON: {where} ")
    assert what in str(raised.value)


def test_both_modes_refuse_a_result_with_the_same_message(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = []
    for mode in MODES:
        monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", mode)
        with pytest.raises(TaskOutputError) as raised:
            run_cumulus_task(lambda event, context: {"at": datetime.date(2020, 1, 1)}, message())
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


class Level(enum.IntEnum):
    HIGH = 1


def test_enums_named_tuples_and_ordered_dicts_pass_as_their_json(mode: str) -> None:
    result = collections.OrderedDict(level=Level.HIGH, pair=(1, "a"), by_year={2017: "x"})
    next_message = run_cumulus_task(lambda event, context: result, message())
    assert json.loads(json.dumps(next_message))["payload"] == {
        "level": 1,
        "pair": [1, "a"],
        "by_year": {"2017": "x"},
    }


def test_decimals_pass_as_numbers(mode: str) -> None:
    result = {"size": decimal.Decimal("12.5"), "count": decimal.Decimal("3")}
    next_message = run_cumulus_task(lambda event, context: result, message())
    assert json.loads(json.dumps(next_message, default=float))["payload"] == {
        "size": 12.5,
        "count": 3,
    }


# ---- CUMULUS_MESSAGE_ADAPTER_DISABLED ----------------------------------------------------


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_disabled_adapter_calls_the_task_with_the_raw_message(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DISABLED", value)
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", "/nonexistent")  # never started
    raw = message()
    result = run_cumulus_task(
        lambda event, context, extra: (event, context, extra), raw, "ctx", extra=1
    )
    assert result == (raw, "ctx", 1)
    assert result[0] is raw


def test_disabled_adapter_still_applies_the_workflow_error_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DISABLED", "true")

    def failing(event: dict, context: Any) -> None:
        raise Exception("WorkflowError")

    assert run_cumulus_task(failing, {"payload": 1})["exception"] == "WorkflowError"


# ---- adapter failures --------------------------------------------------------------------


@pytest.fixture
def schemas_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "output.json").write_text(
        json.dumps({"type": "object", "required": ["granules"]})
    )
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    return tmp_path


def test_schema_failure_is_a_jsonschema_validation_error(mode: str, schemas_root: Path) -> None:
    with pytest.raises(jsonschema.ValidationError, match="'granules' is a required property"):
        run_cumulus_task(
            lambda event, context: {}, message(), schemas={"output": "schemas/output.json"}
        )


def test_schema_failure_is_a_schema_validation_error_naming_the_command(
    mode: str, schemas_root: Path
) -> None:
    with pytest.raises(SchemaValidationError) as raised:
        run_cumulus_task(lambda event, context: {}, message())
    assert raised.value.command == "createNextEvent"
    assert raised.value.name == "ValidationError"


def test_schema_failure_without_jsonschema_is_a_plain_schema_validation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from run_cumulus_task import errors

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema now fails
    errors._schema_error_type.cache_clear()
    try:
        error = errors.adapter_error("ValidationError", "output schema: bad", "createNextEvent")
    finally:
        errors._schema_error_type.cache_clear()
    assert type(error) is SchemaValidationError
    assert (str(error), error.command) == ("output schema: bad", "createNextEvent")


def test_malformed_message_raises_message_adapter_error(mode: str) -> None:
    with pytest.raises(MessageAdapterError, match="task_config must be a JSON object") as raised:
        run_cumulus_task(echo, message(task_config=[1]))
    assert (raised.value.name, raised.value.command) == ("MessageError", "loadNestedEvent")


# ---- S3 ----------------------------------------------------------------------------------


# ---- Step Functions' limit on the next message ---------------------------------------------

LIMIT = 262144


def returning_text(size: int) -> Any:
    """A task whose output is a string of ``size`` characters."""
    return lambda event, context: "x" * size


def next_message_size(text_size: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Bytes of compact JSON of the next message when the task returns that much text."""
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES", "0")
    result = run_cumulus_task(returning_text(text_size), message())
    monkeypatch.delenv("CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES")
    return len(json.dumps(result, separators=(",", ":")).encode())


def test_next_message_over_the_step_functions_limit_fails_the_invocation(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = next_message_size(300_000, monkeypatch)

    with pytest.raises(MessageTooLargeError) as raised:
        run_cumulus_task(returning_text(300_000), message())

    error = raised.value
    assert (error.name, error.command) == ("MessageTooLargeError", "createNextEvent")
    assert f"the next message is {size} bytes of JSON, over Step Functions' limit of" in str(error)
    assert f"{LIMIT} bytes" in str(error) and "set ReplaceConfig" in str(error)
    assert isinstance(error, MessageAdapterError)


def test_next_message_of_exactly_the_limit_is_returned(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text_size = LIMIT - next_message_size(0, monkeypatch)

    result = run_cumulus_task(returning_text(text_size), message())

    assert len(json.dumps(result, separators=(",", ":")).encode()) == LIMIT
    with pytest.raises(MessageTooLargeError, match=f"is {LIMIT + 1} bytes"):
        run_cumulus_task(returning_text(text_size + 1), message())


def test_multibyte_characters_count_as_their_utf8_bytes(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 000 characters of 3 bytes each: over the limit in bytes, not in characters.
    with pytest.raises(MessageTooLargeError, match=r"is 3\d{5} bytes"):
        run_cumulus_task(lambda event, context: "\u20ac" * 100_000, message())


def test_output_limit_can_be_changed_for_runs_outside_step_functions(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES", "1000")
    with pytest.raises(MessageTooLargeError, match="limit of 1000 bytes"):
        run_cumulus_task(returning_text(1000), message())

    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES", "0")
    assert len(run_cumulus_task(returning_text(300_000), message())["payload"]) == 300_000


def test_invalid_output_limit_is_named(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES", "256k")

    with pytest.raises(ValueError, match="CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES='256k' is not"):
        run_cumulus_task(echo, message())


def test_a_workflow_error_message_is_not_checked_against_the_limit(mode: str) -> None:
    # The incoming message came through Step Functions, so it is within the limit already.
    def fail(event: dict, context: Any) -> Any:
        raise Exception("NoGranulesWorkflowError")

    big = message(payload={"text": "x" * 300_000})
    assert run_cumulus_task(fail, big)["exception"] == "NoGranulesWorkflowError"


def test_offloaded_message_is_loaded_back_by_the_next_task(
    mode: str, s3_env: dict, s3: Any, bucket: str
) -> None:
    msg = message(ReplaceConfig={"FullMessage": True})
    msg["cumulus_meta"]["system_bucket"] = bucket
    offloaded = run_cumulus_task(lambda event, context: {"big": list(range(100))}, msg)
    stored_object = s3.get_object(Bucket=bucket, Key=offloaded["replace"]["Key"])
    stored = json.loads(stored_object["Body"].read())
    assert stored["payload"] == {"big": list(range(100))}
    seen = []
    run_cumulus_task(lambda event, context: seen.append(event["input"]), offloaded)
    assert seen == [{"big": list(range(100))}]


# ---- the context dict --------------------------------------------------------------------


def test_context_dict_keeps_the_json_fields_of_a_lambda_context() -> None:
    assert context_dict(LambdaContext()) == {
        "function_name": "SyncGranule",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123:function:SyncGranule",
        "memory_limit_in_mb": "512",
        "aws_request_id": "req-1",
    }


def test_context_dict_reads_attributes_of_a_context_without_dict() -> None:
    class Slotted:
        __slots__ = ("function_name",)

    context = Slotted()
    context.function_name = "f"
    assert context_dict(context) == {"function_name": "f"}


def test_context_dict_copies_a_mapping_context() -> None:
    context = {"functionName": "f", "activityArn": "arn:act"}
    assert context_dict(context) == context
    assert context_dict(context) is not context


def test_context_dict_of_no_context_is_empty() -> None:
    assert context_dict(None) == {}


# ---- choosing the mode -------------------------------------------------------------------


def test_auto_mode_uses_a_sidecar_when_an_adapter_dir_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", "/opt")
    assert client.adapter_mode() == "sidecar"


def test_auto_mode_runs_in_process_when_the_package_is_installed() -> None:
    assert client.adapter_mode() == "inprocess"


def test_unknown_mode_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "thread")
    with pytest.raises(ValueError, match="not one of auto, sidecar, inprocess"):
        run_cumulus_task(echo, message())


# ---- finding the adapter -----------------------------------------------------------------


def _fake_bundle(root: Path, python: str, with_exe: bool) -> Path:
    root.mkdir()
    (root / "__main__.py").write_text("")
    (root / "cma-bundle.json").write_text(json.dumps({"python": python}))
    if with_exe:
        (root / "cma_bin").mkdir()
        (root / "cma_bin" / "cma").write_text("#!/bin/sh\n")
        (root / "cma_bin" / "cma").chmod(0o755)
    return root


def test_bundle_for_this_python_runs_with_this_interpreter(tmp_path: Path) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = _fake_bundle(tmp_path / "b", here, with_exe=True)
    command = adapter_command({"CUMULUS_MESSAGE_ADAPTER_DIR": str(root)})
    assert command == [sys.executable, "-I", "-S", str(root), "stream", "--structured-errors"]


def test_bundle_for_another_python_runs_its_executable(tmp_path: Path) -> None:
    root = _fake_bundle(tmp_path / "b", "2.7", with_exe=True)
    command = adapter_command({"CUMULUS_MESSAGE_ADAPTER_DIR": str(root)})
    assert command == [str(root / "cma_bin" / "cma"), "stream", "--structured-errors"]


def test_bundle_for_another_python_without_executable_is_a_clear_error(tmp_path: Path) -> None:
    root = _fake_bundle(tmp_path / "b", "2.7", with_exe=False)
    with pytest.raises(AdapterProcessError, match="built for Python 2.7"):
        adapter_command({"CUMULUS_MESSAGE_ADAPTER_DIR": str(root)})


def test_missing_adapter_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AdapterProcessError, match="does not exist"):
        adapter_command({"CUMULUS_MESSAGE_ADAPTER_DIR": str(tmp_path / "missing")})


def test_directory_without_manifest_runs_as_the_historic_adapter(tmp_path: Path) -> None:
    root = tmp_path / "historic"
    root.mkdir()
    (root / "__main__.py").write_text("")
    command = adapter_command({"CUMULUS_MESSAGE_ADAPTER_DIR": str(root)})
    assert command == [sys.executable, str(root), "stream"]


@pytest.fixture
def historic_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory shaped like the historic adapter (no manifest, no structured errors)."""
    root = tmp_path / "historic"
    root.mkdir()
    (root / "__main__.py").write_text("from message_adapter.cli import main\nmain()\n")
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", str(root))
    return root


def test_historic_adapter_runs_tasks(historic_dir: Path) -> None:
    assert run_cumulus_task(echo, message())["payload"] == message()["payload"]


def test_historic_adapter_error_is_raised_with_its_stderr_and_recovered_from(
    historic_dir: Path,
) -> None:
    with pytest.raises(AdapterProcessError, match="task_config must be a JSON object"):
        run_cumulus_task(echo, message(task_config=[1]))
    assert run_cumulus_task(echo, message())["payload"] == message()["payload"]


def test_without_adapter_dir_the_console_script_is_used() -> None:
    command = adapter_command({})
    assert Path(command[0]).name == "cumulus-message-adapter"
    assert command[1:] == ["stream", "--structured-errors"]


# ---- the warm sidecar --------------------------------------------------------------------


def test_sidecar_is_reused_across_invocations(sidecar_mode: None) -> None:
    run_cumulus_task(echo, message())
    pid = get_sidecar().pid
    run_cumulus_task(echo, message())
    assert pid is not None and get_sidecar().pid == pid


def test_warm_up_starts_the_sidecar_before_the_first_message(sidecar_mode: None) -> None:
    client.warm_up()
    pid = get_sidecar().pid
    assert pid is not None
    run_cumulus_task(echo, message())
    assert get_sidecar().pid == pid


def test_sidecar_keeps_serving_after_an_adapter_error(sidecar_mode: None) -> None:
    run_cumulus_task(echo, message())
    pid = get_sidecar().pid
    with pytest.raises(MessageAdapterError):
        run_cumulus_task(echo, message(task_config=[1]))
    assert run_cumulus_task(echo, message())["payload"] == message()["payload"]
    assert get_sidecar().pid == pid


def test_dead_sidecar_is_replaced_on_the_next_invocation(sidecar_mode: None) -> None:
    run_cumulus_task(echo, message())
    pid = get_sidecar().pid
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: get_sidecar().pid is None)
    assert run_cumulus_task(echo, message())["payload"] == message()["payload"]
    assert get_sidecar().pid not in (None, pid)


def test_concurrent_invocations_each_get_their_own_answer(sidecar_mode: None) -> None:
    results: dict[int, Any] = {}

    def invoke(n: int) -> None:
        msg = message(payload={"n": n})
        results[n] = run_cumulus_task(lambda event, context: event["input"], msg)["payload"]

    threads = [threading.Thread(target=invoke, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: {"n": n} for n in range(16)}


def test_sidecar_that_dies_reports_its_exit_status_and_stderr() -> None:
    sidecar = Sidecar(
        [PYTHON, "-c", "import sys; sys.stderr.write('no such adapter\\n'); sys.exit(3)"]
    )
    with pytest.raises(AdapterProcessError, match="exit status 3.*no such adapter") as raised:
        sidecar.call("loadNestedEvent", b'{"event":{}}')
    assert raised.value.command == "loadNestedEvent"


def test_sidecar_interrupted_mid_command_is_not_reused(sidecar_mode: None) -> None:
    run_cumulus_task(echo, message())
    sidecar = get_sidecar()
    pid = sidecar.pid

    class Interrupt(BaseException):
        pass

    def interrupted(*args: Any) -> bytes:
        raise Interrupt

    sidecar._reader.readline = interrupted  # type: ignore[method-assign, union-attr]
    with pytest.raises(Interrupt):
        run_cumulus_task(echo, message())
    assert run_cumulus_task(echo, message())["payload"] == message()["payload"]
    assert get_sidecar().pid not in (None, pid)


# ---- the invocation's deadline -----------------------------------------------------------


class ExpiringContext(LambdaContext):
    """A Lambda context whose invocation has ``remaining_ms`` left at every call."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__()
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def stopped_sidecar(sidecar_mode: None) -> Any:
    """The warm sidecar's pid, after SIGSTOP: it accepts requests and never answers."""
    run_cumulus_task(echo, message())
    pid = get_sidecar().pid
    os.kill(pid, signal.SIGSTOP)
    yield pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def test_a_command_may_take_the_time_left_less_a_margin() -> None:
    assert command_timeout(10_000, {}) == 9.5


def test_the_margin_never_takes_more_than_half_the_time_left() -> None:
    assert command_timeout(600, {}) == 0.3


def test_the_margin_is_set_in_milliseconds() -> None:
    assert command_timeout(10_000, {"CUMULUS_MESSAGE_ADAPTER_DEADLINE_MARGIN_MS": "2000"}) == 8


def test_no_deadline_without_a_known_time_left() -> None:
    assert [command_timeout(value, {}) for value in (None, 0, -5, "soon")] == [None] * 4


def test_stopped_sidecar_is_killed_at_the_deadline(stopped_sidecar: int) -> None:
    started = time.monotonic()
    with pytest.raises(AdapterTimeoutError) as raised:
        run_cumulus_task(echo, message(), ExpiringContext(1500))
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 2.0  # 1.5 s left, less the 0.5 s margin
    error = raised.value
    assert (error.name, error.command) == ("AdapterTimeout", "loadAndUpdateRemoteEvent")
    assert "did not answer loadAndUpdateRemoteEvent within 1 s" in error.message
    assert isinstance(error, AdapterProcessError)
    assert get_sidecar().pid is None


def test_sidecar_that_missed_the_deadline_is_replaced(stopped_sidecar: int) -> None:
    with pytest.raises(AdapterTimeoutError):
        run_cumulus_task(echo, message(), ExpiringContext(400))

    assert run_cumulus_task(echo, message(), ExpiringContext(60_000))["payload"] == {
        "granules": [{"granuleId": "g1"}]
    }
    assert get_sidecar().pid not in (None, stopped_sidecar)


def test_request_larger_than_the_pipe_to_a_stopped_sidecar_times_out(
    stopped_sidecar: int,
) -> None:
    big = message(payload={"text": "x" * 1_000_000})  # the write itself blocks

    with pytest.raises(AdapterTimeoutError, match="did not answer loadAndUpdateRemoteEvent"):
        run_cumulus_task(echo, big, ExpiringContext(400))


def test_context_without_remaining_time_sets_no_deadline(sidecar_mode: None) -> None:
    sidecar = get_sidecar()

    assert sidecar.call_within(LambdaContext()) == sidecar.call
    assert sidecar.call_within({"function_name": "f"}) == sidecar.call


def test_sidecar_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    sidecar = Sidecar([str(tmp_path / "no-such-cma"), "stream"])
    with pytest.raises(AdapterProcessError, match="cannot start the message adapter"):
        sidecar.call("loadNestedEvent", b'{"event":{}}')


def test_sidecar_ends_when_the_interpreter_exits(tmp_path: Path) -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(REPO / 'clients' / 'python')!r})\n"
        "from run_cumulus_task import run_cumulus_task\n"
        "from run_cumulus_task.sidecar import get_sidecar\n"
        "run_cumulus_task(lambda e, c: e['input'], {'payload': 1})\n"
        "print(get_sidecar().pid)\n"
    )
    env = {**os.environ, "CUMULUS_MESSAGE_ADAPTER_MODE": "sidecar"}
    done = subprocess.run(
        [PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    wait_until(lambda: not _running(pid), what="the sidecar exiting with its parent")


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


# ---- the distribution --------------------------------------------------------------------


@pytest.mark.e2e
def test_client_builds_as_a_wheel_with_the_run_cumulus_task_module(tmp_path: Path) -> None:
    import zipfile

    subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(REPO / "clients" / "python"),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("cumulus_message_adapter_python-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "run_cumulus_task/__init__.py" in names
    assert "run_cumulus_task/sidecar.py" in names


def test_published_style_import_and_call() -> None:
    from run_cumulus_task import run_cumulus_task as published_name

    class LambdaContextMock:
        example = "context"

    result = published_name(lambda event, context: event, message(), LambdaContextMock())
    assert result["payload"]["input"] == message()["payload"]


def test_protocol_v1_and_v2_give_the_same_next_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")

    def task(event: dict, context: object) -> dict:
        return {"got": event["input"], "config": event["config"]}

    results = []
    for protocol in ("2", "1"):
        monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_PROTOCOL", protocol)
        results.append(run_cumulus_task(task, message()))
    assert results[0] == results[1]
    assert get_sidecar().protocol == 2


def test_over_v2_the_next_payload_is_the_tasks_own_plain_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")
    response = {"granules": [{"granuleId": "g1", "size": 1.5, "files": []}]}

    result = run_cumulus_task(lambda event, context: response, message())

    assert "referToResponse" in get_sidecar().features
    assert result["payload"] is response
    assert list(result) == ["cumulus_meta", "meta", "task_config", "payload", "exception"]


@pytest.mark.parametrize(
    "response",
    [{"pair": (1, 2)}, {"n": float("nan")}, {1: "one"}, collections.OrderedDict(a=1)],
    ids=repr,
)
def test_a_response_json_would_change_comes_back_as_json_gives_it(
    response: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")
    results = []
    for protocol in ("2", "1"):
        monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_PROTOCOL", protocol)
        results.append(run_cumulus_task(lambda event, context: response, message()))
    assert results[0] == results[1]
    assert results[0]["payload"] is not response
    assert json.loads(json.dumps(results[0]["payload"])) == results[0]["payload"]


def test_a_v2_sidecar_without_refer_to_response_gets_the_response_written_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")
    run_cumulus_task(echo, message())
    sidecar = get_sidecar()
    monkeypatch.setattr(sidecar, "_features", frozenset())
    response = {"granules": []}

    result = run_cumulus_task(lambda event, context: response, message())

    assert sidecar.protocol == 2
    assert result["payload"] == response and result["payload"] is not response


def test_a_sidecar_from_before_v2_is_used_over_v1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cma-bundle.json").write_text("{}")  # ours: started with --structured-errors
    (tmp_path / "__main__.py").write_text(
        f"import sys\nsys.path[:0] = {[str(REPO), *sys.path]!r}\n"
        "from message_adapter.errors import ProtocolError\n"
        "from message_adapter.sidecar.commands import Adapter\n"
        "v1 = Adapter.run_stream_command\n"
        "def before_v2(self, command, body):\n"
        "    if command in ('hello', 'beginTask', 'completeTask', 'cancelTask'):\n"
        "        raise ProtocolError(f'unknown command {command!r}')\n"
        "    return v1(self, command, body)\n"
        "Adapter.run_stream_command = before_v2\n"
        "from message_adapter.cli import main\n"
        "main()\n"
    )
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_DIR", str(tmp_path))
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")

    first = run_cumulus_task(echo, message())
    second = run_cumulus_task(echo, message())

    assert get_sidecar().protocol == 1
    assert first["payload"] == second["payload"] == message()["payload"]


def test_over_v2_the_task_gets_a_fresh_copy_of_the_payload_decoded_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")
    incoming = message()
    seen = []

    def task(event: dict, context: Any) -> Any:
        seen.append(event["input"])
        event["input"]["granules"].append("changed by the task")
        return None

    run_cumulus_task(task, incoming)

    assert "referToPayload" in get_sidecar().features
    assert seen[0] is not incoming["payload"]
    assert incoming == message()  # the caller's message is untouched


@pytest.mark.parametrize(
    "task_config",
    [{"cumulus_message": {"input": "{$.payload.granules}"}}, {"collection": "{$.meta.collection}"}],
    ids=["input inside the payload", "default input"],
)
def test_over_v2_the_input_is_v1s_with_or_without_the_payload_referred_to(
    task_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_MODE", "sidecar")
    incoming = message(task_config=task_config, payload={"granules": [{"n": 1.5}, {"n": 10**30}]})
    inputs = []
    for protocol in ("2", "1"):
        monkeypatch.setenv("CUMULUS_MESSAGE_ADAPTER_PROTOCOL", protocol)
        run_cumulus_task(lambda event, context: inputs.append(event["input"]), incoming)
    assert inputs[0] == inputs[1]
