"""Loading and calling tasks: Python callables and --exec commands (the task protocol)."""

import io
import json
import shlex
import sys
import threading
import time
from pathlib import Path

import pytest

from message_adapter.errors import TaskError
from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore
from message_adapter.tasks.loading import (
    ExecTask,
    TaskLoadError,
    parse_error_line,
)
from message_adapter.tasks.runner import run_message
from tests.helpers import wait_until

NESTED = {"input": {"granules": [1, 2]}, "config": {"name": "MOD09GQ"}}


def failing_command(name: str, message: str, status: int = 1) -> str:
    """A shell command whose last stderr line is the error object, then exit ``status``."""
    line = json.dumps({"name": name, "message": message})
    return "sh -c " + shlex.quote(f"echo {shlex.quote(line)} >&2; exit {status}")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- Python callables ------------------------------------------------------------------


# ---- --exec commands --------------------------------------------------------------------


def test_exec_task_gets_the_nested_event_on_stdin() -> None:
    assert ExecTask("cat")(NESTED) == NESTED


def test_exec_task_result_is_its_stdout_json() -> None:
    task = ExecTask("""sh -c 'cat >/dev/null; echo "{\\"n\\": 7}"'""")
    assert task(NESTED) == {"n": 7}


def test_exec_task_that_ignores_its_input_still_succeeds() -> None:
    big = {"input": "x" * 1_000_000, "config": {}}
    assert ExecTask("echo 1")(big) == 1


def test_exec_error_is_named_by_the_last_stderr_line() -> None:
    task = ExecTask(failing_command("NoGranulesWorkflowError", "empty", status=3))
    with pytest.raises(TaskError) as raised:
        task(NESTED)
    assert (raised.value.name, raised.value.message) == ("NoGranulesWorkflowError", "empty")


def test_exec_error_without_an_error_line_names_the_exit_status() -> None:
    with pytest.raises(TaskError, match="exited with status 3; last stderr line: boom") as raised:
        ExecTask("sh -c 'echo boom >&2; exit 3'")(NESTED)
    assert raised.value.name == "TaskFailed"


def test_exec_stderr_passes_through_as_logs_but_the_error_line_does_not() -> None:
    log = io.BytesIO()
    task = ExecTask(
        """sh -c 'echo one >&2; echo two >&2; echo {\\"name\\":\\"E\\"} >&2; exit 1'""", log=log
    )
    with pytest.raises(TaskError):
        task(NESTED)
    assert log.getvalue() == b"one\ntwo\n"


def test_exec_last_stderr_line_is_a_log_line_when_the_task_succeeds() -> None:
    log = io.BytesIO()
    ExecTask("""sh -c 'echo {\\"name\\":\\"E\\"} >&2; echo 1'""", log=log)(NESTED)
    assert log.getvalue() == b'{"name":"E"}\n'


def test_exec_task_with_empty_stdout_is_an_output_error() -> None:
    with pytest.raises(TaskError, match="wrote nothing on stdout") as raised:
        ExecTask("true")(NESTED)
    assert raised.value.name == "TaskOutputError"


def test_exec_task_with_non_json_stdout_is_an_output_error() -> None:
    with pytest.raises(TaskError, match="send logs to stderr"):
        ExecTask("echo hello world")(NESTED)


def test_exec_task_killed_by_a_signal_says_so() -> None:
    with pytest.raises(TaskError, match="killed by SIGKILL"):
        ExecTask("sh -c 'kill -9 $$'")(NESTED)


def test_exec_command_that_does_not_exist_is_a_load_error() -> None:
    with pytest.raises(TaskLoadError, match="cannot start"):
        ExecTask("no-such-command-anywhere")(NESTED)


def test_kill_all_stops_a_running_command_and_its_children(tmp_path: Path) -> None:
    started_file = tmp_path / "started"
    task = ExecTask(f"sh -c 'sleep 30 & touch {started_file}; wait'")
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _call_catching(task, errors))
    thread.start()
    wait_until(started_file.exists)
    started = time.monotonic()
    task.kill_all()
    thread.join(5)
    assert time.monotonic() - started < 3
    assert "killed by SIGKILL" in str(errors[0])


def test_command_starting_after_kill_all_is_killed_too() -> None:
    task = ExecTask("sleep 30")
    task.kill_all()  # as if the deadline came while this command was being started
    started = time.monotonic()
    with pytest.raises(TaskError, match="killed by SIGKILL"):
        task(NESTED)
    assert time.monotonic() - started < 10


def _call_catching(task: ExecTask, errors: list[BaseException]) -> None:
    try:
        task(NESTED)
    except Exception as error:  # noqa: BLE001
        errors.append(error)


def test_exec_python_task_runs_under_the_same_interpreter() -> None:
    script = "import json,sys; e=json.load(sys.stdin); print(json.dumps(e['config']['name']))"
    assert ExecTask(f'{sys.executable} -c "{script}"')(NESTED) == "MOD09GQ"


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (b'{"name": "E", "message": "m"}\n', ("E", "m")),
        (b'{"name": "E"}', ("E", "")),
        (b'{"name": "E", "message": 3}', ("E", "3")),
        (b'{"message": "m"}', None),
        (b'{"name": ""}', None),
        (b"Traceback (most recent call last):", None),
        (b"[1]", None),
    ],
)
def test_error_line_is_an_object_with_a_name(line: bytes, parsed: tuple | None) -> None:
    assert parse_error_line(line) == parsed


def test_exec_task_echoing_a_number_beyond_float_range_passes_it_on_exactly() -> None:
    script = "import sys; sys.stdout.write(sys.stdin.read())"
    task = ExecTask(f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}")
    message = loads(b'{"task_config": {}, "payload": {"huge": 1e400}}')
    result = run_message(Adapter(MemoryStore()), task, message)
    assert dumps(result.message["payload"]) == b'{"input":{"huge":1E+400},"config":{}}'
