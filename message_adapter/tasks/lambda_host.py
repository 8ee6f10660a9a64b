"""One long-lived process that calls a Lambda handler, as a warm Lambda container does.

``LambdaHost`` starts ``hosts/node_host.js`` (``nodejs*``) or ``hosts/python_host.py``
(``python*``) with the function's environment, waits until it has loaded the handler, and
sends it one request per task: ``{"id", "event", "context", "env"}`` as a JSON line on a
pipe; the host answers ``{"id", "ok", "result"|"error"}`` on another. Several requests
may be in flight at once (``--concurrency``). When the process dies, every request it
held fails with ``HandlerProcessExited`` and the next request starts a new process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from message_adapter.errors import TaskError
from message_adapter.jsonio import dumps, loads
from message_adapter.tasks.lambda_code import LambdaFunction

HOSTS = Path(__file__).resolve().parent / "hosts"
READY_TIMEOUT = 120.0


class HandlerLoadError(TaskError):
    """The host could not load the handler (``Runtime.ImportModuleError`` and the like)."""


def host_command(function: LambdaFunction, node: str = "node", python: str | None = None) -> list:
    """The argv that starts the host for the function's runtime."""
    if function.kind == "nodejs":
        return [node, str(HOSTS / "node_host.js")]
    return [python or sys.executable, "-u", str(HOSTS / "python_host.py")]


def host_environment(
    function: LambdaFunction,
    base: Mapping[str, str],
    task_dir: str,
    layers_dir: str,
    cma_dir: str,
) -> dict[str, str]:
    """The host's environment: ours, the function's variables, and what Lambda sets for
    its runtime (task root, handler, where layers' modules are), with
    ``CUMULUS_MESSAGE_ADAPTER_DIR`` where this worker put the adapter."""
    env = dict(base)
    env.update(function.environment)
    env.update(
        {
            "LAMBDA_TASK_ROOT": task_dir,
            "_HANDLER": function.handler,
            "CUMULUS_MESSAGE_ADAPTER_DIR": cma_dir,
        }
    )
    if function.kind == "nodejs":
        major = function.runtime.removeprefix("nodejs").split(".")[0]
        paths = [
            f"{layers_dir}/nodejs/node_modules",
            f"{layers_dir}/nodejs/node{major}/node_modules",
        ]
        if base.get("NODE_PATH"):
            paths.append(base["NODE_PATH"])
        env["NODE_PATH"] = os.pathsep.join(paths)
    else:
        version = function.runtime.removeprefix("python")
        env["CMA_HOST_PYTHONPATH"] = os.pathsep.join(
            [f"{layers_dir}/python", f"{layers_dir}/python/lib/python{version}/site-packages"]
        )
    return env


@dataclass(frozen=True)
class Invocation:
    """What one handler call gets beside the event: the context's fields and task env vars."""

    context: dict[str, Any]
    env: dict[str, str]


def context_fields(
    function: LambdaFunction,
    deadline_s: float,
    activity_arn: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The Lambda-like context of one call; ``deadlineMs`` drives getRemainingTimeInMillis."""
    return {
        "functionName": function.name,
        "functionVersion": function.version,
        "invokedFunctionArn": function.arn,
        "memoryLimitInMB": str(function.memory),
        "awsRequestId": request_id or str(uuid.uuid4()),
        "logGroupName": f"/aws/lambda/{function.name}",
        "logStreamName": "ecs-task",
        "activityArn": activity_arn,
        "deadlineMs": int(deadline_s * 1000),
    }


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: dict | None = None


class _Process:
    """One running host: its pipes, the reader of its answers, the calls it holds."""

    def __init__(self, popen: subprocess.Popen, requests: int, answers: Any) -> None:
        self.popen = popen
        self.requests = requests
        self.answers = answers
        self.pending: dict[str, _Pending] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.ready_answer: dict | None = None
        self.gone = False
        self._write_lock = threading.Lock()

    def send(self, data: bytes) -> None:
        """Write one request line whole (lines from several slots never interleave)."""
        with self._write_lock:
            if self.requests < 0:
                raise BrokenPipeError("the request pipe is closed")
            view = memoryview(data)
            while view:
                view = view[os.write(self.requests, view) :]

    def close_requests(self) -> None:
        with self._write_lock:
            if self.requests >= 0:
                with contextlib.suppress(OSError):
                    os.close(self.requests)
                self.requests = -1


class LambdaHost:
    """Calls the function's handler in one warm host process; see the module docstring."""

    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        cwd: str,
        name: str,
        stdout: Any = None,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.argv = argv
        self.env = dict(env)
        self.cwd = cwd
        self.name = name
        self.stdout = stdout
        self._log = log or (lambda *args, **kwargs: None)
        self._process: _Process | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.popen.pid if process and not process.gone else None

    def start(self) -> None:
        """Start the host unless one runs; raises ``HandlerLoadError`` if it cannot load."""
        self._running()

    def _running(self) -> _Process:
        with self._start_lock:
            process = self._process
            if process is not None and not process.gone:
                return process
            if self._closed:
                raise TaskError("WorkerShutdownError", "the worker is stopping")
            process = self._spawn()
            self._process = process
            return process

    def _spawn(self) -> _Process:
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        env = dict(
            self.env, CMA_HOST_REQUEST_FD=str(request_read), CMA_HOST_ANSWER_FD=str(answer_write)
        )
        try:
            popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self.stdout,
                pass_fds=(request_read, answer_write),
                start_new_session=True,  # its own group: a kill reaches what it started
            )
        except OSError as error:
            for fd in (request_read, request_write, answer_read, answer_write):
                os.close(fd)
            raise HandlerLoadError(
                "HandlerProcessError", f"cannot start {' '.join(self.argv)}: {error}"
            ) from None
        os.close(request_read)
        os.close(answer_write)
        self.starts += 1
        process = _Process(popen, request_write, os.fdopen(answer_read, "rb"))
        threading.Thread(
            target=self._read_answers, args=(process,), name="lambda-host-answers", daemon=True
        ).start()
        started = time.monotonic()
        if not process.ready.wait(READY_TIMEOUT):
            self._kill(process)
            raise HandlerLoadError(
                "HandlerProcessError",
                f"the {self.name} handler process did not load the handler in {READY_TIMEOUT:g} s",
            )
        ready = process.ready_answer or {}
        if not ready.get("ready"):
            failure = ready.get("error") or {}
            code = popen.wait(10)
            raise HandlerLoadError(
                failure.get("name") or "HandlerProcessError",
                failure.get("message")
                or f"the handler process exited with status {code} "
                "before loading the handler (its output above says why)",
            )
        self._log(
            "info",
            f"{self.name} handler loaded in process {popen.pid}",
            event="handler_loaded",
            pid=popen.pid,
            duration_s=round(time.monotonic() - started, 3),
            restart=self.starts > 1,
        )
        return process

    def _read_answers(self, process: _Process) -> None:
        for line in process.answers:
            try:
                answer = loads(line)
            except ValueError:
                continue
            if not process.ready.is_set():
                process.ready_answer = answer
                process.ready.set()
                continue
            with process.lock:
                pending = process.pending.pop(str(answer.get("id")), None)
            if pending is not None:
                pending.answer = answer
                pending.done.set()
        code = process.popen.wait()
        with process.lock:
            process.gone = True
            orphans = list(process.pending.values())
            process.pending.clear()
        process.ready.set()
        process.close_requests()
        process.answers.close()
        if orphans or not self._closed:
            how = _exit_description(code)
            self._log(
                "error" if orphans else "warn",
                f"the {self.name} handler process {process.popen.pid} {how}"
                + (f"; {len(orphans)} task(s) it was running fail" if orphans else ""),
                event="handler_process_exited",
                pid=process.popen.pid,
                returncode=code,
            )
        for pending in orphans:
            pending.answer = {
                "ok": False,
                "error": {
                    "name": "HandlerProcessExited",
                    "message": f"the process running the {self.name} handler {how} while "
                    "running this task; it is restarted for the next task",
                },
            }
            pending.done.set()

    def invoke(self, event: Any, invocation: Invocation) -> Any:
        """The handler's result for ``event``; its error raised as a ``TaskError``."""
        process = self._running()
        request_id = uuid.uuid4().hex
        pending = _Pending()
        line = dumps(
            {"id": request_id, "context": invocation.context, "env": invocation.env, "event": event}
        )
        with process.lock:
            gone = process.gone
            if not gone:
                process.pending[request_id] = pending
        if gone:
            return self.invoke(event, invocation)  # it died between the check and now
        with contextlib.suppress(OSError):  # on a dead pipe the reader fails this call
            process.send(line + b"\n")
        pending.done.wait()
        answer = pending.answer or {}
        if answer.get("ok"):
            return answer.get("result")
        error = answer.get("error") or {}
        raise TaskError(
            str(error.get("name") or "Error"), str(error.get("message") or "the handler failed")
        )

    def close(self, timeout: float = 5.0) -> None:
        """Close the request pipe so the host exits after its calls; kill it after ``timeout``."""
        self._closed = True
        process = self._process
        if process is None or process.gone:
            return
        process.close_requests()
        try:
            process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill(process)

    def kill(self) -> None:
        """Kill the host (and what it started) at once; its calls fail."""
        self._closed = True
        if self._process is not None:
            self._kill(self._process)

    @staticmethod
    def _kill(process: _Process) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(10)


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"
