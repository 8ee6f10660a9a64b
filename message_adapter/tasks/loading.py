"""Loading and calling a workflow task: a Python callable, or any executable.

A task is called with the nested event (``{"input", "config", "cumulus_config"?}``) and a
context, and returns its result. Two kinds exist:

- a Python callable named ``package.module:function`` or ``path/to/file.py:function``,
  called in-process as ``function(nested_event, context)`` (a coroutine is awaited);
- ``ExecTask``: a command run once per message, speaking the task protocol of
  protocol.md: the nested event as JSON on stdin, the result as JSON on stdout, exit 0
  for success; a non-zero exit is a ``TaskError`` named by a last stderr line
  ``{"name", "message"}``. Other stderr lines pass through as logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from message_adapter.errors import TaskError, TaskOutputError
from message_adapter.jsonio import dumps, loads
from message_adapter.tasks.workflow_errors import named_workflow_error, python_workflow_error

Task = Callable[[Any, Any], Any]


class TaskLoadError(Exception):
    """The task named on the command line cannot be found or loaded."""


DEFAULT_TIMEOUT = 900.0
"""Seconds a task may run, as far as its context says, when no ``--timeout`` is given: the
Lambda maximum, so a task that checks its remaining time behaves as in a long Lambda."""


class TaskContext(dict):
    """The context a Python task receives: a dict that also reads like a Lambda context.

    Keys read as attributes (``context.function_name``), and camelCase keys, as in a
    context file written by hand or by ``scripts/demo`` (``functionName``,
    ``invokedFunctionArn``, ``awsRequestId``...), also as their snake_case names.
    ``get_remaining_time_in_millis()`` counts down from ``timeout`` seconds after the
    context was made, as Lambda counts from the start of the invocation.
    """

    def __init__(
        self, fields: Any = (), /, *, timeout: float = DEFAULT_TIMEOUT, **more: Any
    ) -> None:
        super().__init__(fields, **more)
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the time budget (never below 0)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        camel = _camel_case(name)
        if camel in self:
            return self[camel]
        raise AttributeError(
            f"the task's context has no {name!r} (it has: {', '.join(map(str, self)) or 'nothing'})"
        )


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def load_callable(spec: str) -> Task:
    """Import ``package.module:function`` or ``path/file.py:function``."""
    target, sep, attribute = spec.rpartition(":")
    if not sep or not target or not attribute:
        raise TaskLoadError(
            f"task {spec!r} must be 'package.module:function' or 'path/file.py:function' "
            "(or use --exec 'COMMAND' for a task in another language)"
        )
    if target.endswith(".py") or os.sep in target or "/" in target:
        module = _import_file(Path(target))
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise TaskLoadError(f"cannot import {target!r} for task {spec!r}: {error}") from None
    function = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise TaskLoadError(f"{target!r} has no {attribute!r} for task {spec!r}")
    if not callable(function):
        raise TaskLoadError(f"task {spec!r} is not callable")
    return PythonTask(_awaiting(function), spec)


class PythonTask:
    """A Python callable run in-process; its failures follow the Python client's rules."""

    def __init__(self, function: Callable[[Any, Any], Any], spec: str) -> None:
        self.function = function
        self.spec = spec

    def __call__(self, nested_event: Any, context: Any = None) -> Any:
        return self.function(nested_event, context)

    @staticmethod
    def workflow_error(error: BaseException) -> str | None:
        """The Python client's WorkflowError rule (see ``workflow_errors``)."""
        return python_workflow_error(error)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise TaskLoadError(f"task file {str(path)!r} does not exist")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the task's sibling modules import, as in Lambda
    name = f"_cma_task_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TaskLoadError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _awaiting(function: Callable[..., Any]) -> Task:
    if not inspect.iscoroutinefunction(function):
        return function

    def call(nested_event: Any, context: Any) -> Any:
        return asyncio.run(function(nested_event, context))

    call.__name__ = getattr(function, "__name__", "task")
    return call


def parse_error_line(line: bytes | str) -> tuple[str, str] | None:
    """``(name, message)`` from a stderr line ``{"name": ..., "message": ...}``, else None."""
    try:
        value = loads(line.strip() or b"null")
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    name = value["name"].strip()
    if not name:
        return None
    message = value.get("message")
    return name, message if isinstance(message, str) else ("" if message is None else str(message))


def exit_error(command: str, returncode: int, last_line: bytes | None) -> TaskError:
    """The error for a non-zero exit: named by the last stderr line when it says so."""
    if last_line is not None:
        parsed = parse_error_line(last_line)
        if parsed is not None:
            return TaskError(*parsed)
    if returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    hint = ""
    if last_line and last_line.strip():
        hint = f"; last stderr line: {last_line.decode('utf-8', 'replace').strip()[:500]}"
    return TaskError("TaskFailed", f"task command {command!r} {how}{hint}")


def parse_output(command: str, stdout: bytes) -> Any:
    """The task's result from its stdout: exactly one JSON document."""
    if not stdout.strip():
        raise TaskOutputError(
            f"task command {command!r} exited 0 but wrote nothing on stdout; it must print "
            "its result as JSON (print null for no result)"
        )
    try:
        return loads(stdout)
    except ValueError as error:
        start = stdout[:200].decode("utf-8", "replace")
        raise TaskOutputError(
            f"task command {command!r} wrote something other than one JSON document on "
            f"stdout ({error}); send logs to stderr. Output began: {start!r}"
        ) from None


class ExecTask:
    """Runs ``command`` once per message under the task protocol (see protocol.md)."""

    def __init__(self, command: str, log: BinaryIO | None = None) -> None:
        self.command = command
        self.argv = shlex.split(command)
        if not self.argv:
            raise TaskLoadError("--exec needs a command, e.g. --exec 'node task.js'")
        self._log = log
        self._running: set[subprocess.Popen] = set()
        self._killed = False  # set by kill_all: a command that starts later is killed too
        self._lock = threading.Lock()

    def __call__(self, nested_event: Any, context: Any = None) -> Any:
        env = getattr(_call_environment, "env", None)
        try:
            process = subprocess.Popen(
                self.argv,
                env={**os.environ, **env} if env else None,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, so kill() reaches children
            )
        except OSError as error:
            raise TaskLoadError(f"cannot start task command {self.command!r}: {error}") from None
        with self._lock:
            self._running.add(process)
            killed = self._killed
        if killed:  # kill_all ran while this command was starting
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        try:
            last_line: list[bytes | None] = [None]
            relay = threading.Thread(
                target=self._relay_stderr, args=(process.stderr, last_line), daemon=True
            )
            relay.start()
            feeder = threading.Thread(
                target=_feed, args=(process.stdin, dumps(nested_event)), daemon=True
            )
            feeder.start()
            assert process.stdout is not None  # stdout=PIPE
            stdout = process.stdout.read()
            process.wait()
            relay.join()
            feeder.join()
        finally:
            with self._lock:
                self._running.discard(process)
        last = last_line[0]
        failed = process.returncode != 0
        if last is not None and not (failed and parse_error_line(last) is not None):
            self._write_log(last)  # not an error object: an ordinary log line
        if failed:
            raise exit_error(self.command, process.returncode, last)
        return parse_output(self.command, stdout)

    def _relay_stderr(self, stream: BinaryIO, last_line: list[bytes | None]) -> None:
        # Hold back one line: the last one may be the error object, not a log line.
        for line in iter(stream.readline, b""):
            if last_line[0] is not None:
                self._write_log(last_line[0])
            last_line[0] = line
        stream.close()

    def _write_log(self, line: bytes) -> None:
        out = self._log or sys.stderr.buffer
        out.write(line if line.endswith(b"\n") else line + b"\n")
        out.flush()

    @staticmethod
    def workflow_error(error: BaseException) -> str | None:
        """The task protocol's WorkflowError rule: the name on the last stderr line."""
        return named_workflow_error(error.name) if isinstance(error, TaskError) else None

    def kill_all(self) -> None:
        """Kill every running task command (and its children): for a shutdown deadline.

        Commands started from then on are killed as soon as they start, so one that was
        starting at that moment does not escape.
        """
        with self._lock:
            self._killed = True
            running = list(self._running)
        for process in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def _feed(stream: BinaryIO, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except (BrokenPipeError, OSError):
        pass  # a task may exit without reading its input


_call_environment = threading.local()


def call_task(task: Task, nested_event: Any, context: Any, env: dict[str, str]) -> Any:
    """Call ``task`` with the Cumulus logging variables (``logs.task_environment``) set:
    in an ``--exec`` command's own environment (per call, so concurrent tasks keep their
    own); for a Python callable in ``os.environ`` (process-wide, as the Node client sets
    them)."""
    if not isinstance(task, ExecTask):
        os.environ.update(env)
    _call_environment.env = env
    try:
        return task(nested_event, context)
    finally:
        _call_environment.env = None


def load_task(spec: str | None, exec_command: str | None) -> Task:
    """The task named by TASK or ``--exec`` (exactly one of them)."""
    if (spec is None) == (exec_command is None):
        raise TaskLoadError("give either TASK (module:function or file.py:function) or --exec")
    if exec_command is not None:
        return ExecTask(exec_command)
    assert spec is not None  # exactly one of them, checked above
    return load_callable(spec)
