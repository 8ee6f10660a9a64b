"""The Python host of ``cumulus-message-adapter ecs-task``: a warm Lambda container for one handler.

Loads ``_HANDLER`` (``module.function``) from ``LAMBDA_TASK_ROOT`` once, then calls it for
every request, each on its own thread. Requests and answers are JSON lines on two pipes
(``CMA_HOST_REQUEST_FD``, ``CMA_HOST_ANSWER_FD``), so the handler's stdin, stdout and stderr
stay its own. Standard library only: it runs beside the task's packages, not ours.
"""

import asyncio
import importlib
import inspect
import json
import os
import sys
import threading
import time
import traceback

_write_lock = threading.Lock()


def send(fd, value):
    data = (json.dumps(value, separators=(",", ":")) + "\n").encode("utf-8")
    with _write_lock:
        while data:
            data = data[os.write(fd, data) :]


def describe(error):
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {
        "name": type(error).__name__,
        "message": str(error),
        "stack": stack.rstrip("\n").split("\n"),
    }


class HandlerError(Exception):
    """A handler that cannot be loaded, named as Lambda names it."""

    def __init__(self, name, message):
        super().__init__(message)
        self.lambda_name = name


def load_handler(spec):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise HandlerError(
            "Runtime.MalformedHandlerName",
            f"handler {spec!r} is not MODULE.FUNCTION (for example app.handler)",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ModuleNotFoundError as error:
        raise HandlerError(
            "Runtime.ImportModuleError", f"Unable to import module {module_name!r}: {error}"
        ) from error
    except Exception as error:
        raise HandlerError(
            "Runtime.ImportModuleError",
            f"Unable to import module {module_name!r}: {type(error).__name__}: {error}",
        ) from error
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise HandlerError(
            "Runtime.HandlerNotFound", f"module {module_name!r} has no function {function_name!r}"
        )
    return handler


class LambdaContext:
    """What a Lambda handler's ``context`` holds, plus ``via = "ECS"`` as the historic worker."""

    def __init__(self, fields):
        self.function_name = fields.get("functionName")
        self.function_version = fields.get("functionVersion")
        self.invoked_function_arn = fields.get("invokedFunctionArn")
        self.memory_limit_in_mb = fields.get("memoryLimitInMB")
        self.aws_request_id = fields.get("awsRequestId")
        self.log_group_name = fields.get("logGroupName")
        self.log_stream_name = fields.get("logStreamName")
        self.activity_arn = fields.get("activityArn")
        self.identity = None
        self.client_context = None
        self.via = "ECS"
        self._deadline_ms = fields.get("deadlineMs")

    def get_remaining_time_in_millis(self):
        if not self._deadline_ms:
            return 0
        return max(0, int(self._deadline_ms - time.time() * 1000))


def call(handler, request, answer_fd):
    try:
        result = handler(request.get("event"), LambdaContext(request.get("context") or {}))
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        send(answer_fd, {"id": request["id"], "ok": True, "result": result})
    except BaseException as error:  # noqa: BLE001 - sys.exit() in a handler fails its task too
        try:
            send(answer_fd, {"id": request["id"], "ok": False, "error": describe(error)})
        except BaseException as send_error:  # noqa: BLE001 - e.g. a result that is not JSON
            send(answer_fd, {"id": request["id"], "ok": False, "error": describe(send_error)})


async def _await(awaitable):
    return await awaitable


def main():
    answer_fd = int(os.environ["CMA_HOST_ANSWER_FD"])
    request_fd = int(os.environ["CMA_HOST_REQUEST_FD"])
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    extra = [p for p in os.environ.get("CMA_HOST_PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:0] = [root, *extra]
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except HandlerError as error:
        info = describe(error)
        info["name"] = error.lambda_name
        send(answer_fd, {"ready": False, "error": info})
        sys.exit(3)
    except BaseException as error:  # noqa: BLE001
        send(answer_fd, {"ready": False, "error": describe(error)})
        sys.exit(3)
    send(answer_fd, {"ready": True, "pid": os.getpid()})
    calls: list[threading.Thread] = []
    with os.fdopen(request_fd, "rb") as requests:
        for line in requests:
            if not line.strip():
                continue
            request = json.loads(line)
            os.environ.update(request.get("env") or {})
            thread = threading.Thread(target=call, args=(handler, request, answer_fd), daemon=True)
            thread.start()
            calls = [running for running in calls if running.is_alive()] + [thread]
    # The worker closed the requests pipe (or died): let running calls finish, then exit
    # at once, without waiting for threads the handler's libraries left behind.
    for thread in calls:
        thread.join()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
