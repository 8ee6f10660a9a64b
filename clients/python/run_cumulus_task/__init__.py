"""``run_cumulus_task``: run a Python Cumulus task through the Cumulus Message Adapter.

API-compatible with nasa/cumulus-message-adapter-python::

    from run_cumulus_task import run_cumulus_task

    def handler(event, context):
        return run_cumulus_task(task, event, context, schemas=None, **taskargs)

The adapter runs as a warm sidecar process (see ``run_cumulus_task.sidecar``) or, when the
``message_adapter`` package is installed in this environment, in-process. The choice:

- ``CUMULUS_MESSAGE_ADAPTER_MODE=sidecar`` or ``inprocess`` forces one;
- otherwise (``auto``): a sidecar when ``CUMULUS_MESSAGE_ADAPTER_DIR`` is set (a layer or
  bundle: its packages never shadow the task's own), in-process when ``message_adapter``
  is importable here, else a sidecar from the ``cumulus-message-adapter`` console script.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from run_cumulus_task.errors import (
    AdapterProcessError,
    AdapterTimeoutError,
    MessageAdapterError,
    MessageTooLargeError,
    SchemaValidationError,
    TaskOutputError,
    adapter_error,
)
from run_cumulus_task.limits import check_message_size, check_output_size, output_limit
from run_cumulus_task.output import output_problem, plain_json
from run_cumulus_task.sidecar import (
    decode,
    encode,
    encode_message,
    encode_reusing,
    get_sidecar,
    stop_sidecar,
)

__all__ = [
    "AdapterProcessError",
    "AdapterTimeoutError",
    "MessageAdapterError",
    "MessageTooLargeError",
    "SchemaValidationError",
    "TaskOutputError",
    "adapter_mode",
    "context_dict",
    "run_cumulus_task",
    "stop_adapter",
    "warm_up",
]
__version__ = "3.0.0"

logger = logging.getLogger("run_cumulus_task")

MODES = ("auto", "sidecar", "inprocess")
# What a Lambda context object carries that the adapter records (workflow_tasks) or a task
# may want; read with getattr too, for context objects without a __dict__.
LAMBDA_CONTEXT_FIELDS = (
    "function_name",
    "function_version",
    "invoked_function_arn",
    "memory_limit_in_mb",
    "aws_request_id",
    "log_group_name",
    "log_stream_name",
)


def run_cumulus_task(
    task_function: Callable[..., Any],
    cumulus_message: dict,
    context: Any = None,
    schemas: dict | None = None,
    **taskargs: Any,
) -> Any:
    """Prepare the task's input and config, call the task, return the next Cumulus message.

    ``task_function(nested_event, context, **taskargs)`` gets ``{"input", "config", ...}``.
    A task exception whose first argument is a string containing ``WorkflowError`` yields
    the incoming message with ``payload: None`` and ``exception`` set to that string; other
    task exceptions are re-raised; a result that is not JSON (a ``datetime``, a ``set``...)
    raises ``TaskOutputError``. With ``CUMULUS_MESSAGE_ADAPTER_DISABLED=true`` the task
    gets the raw message and its result is returned as is. ``cumulus_message`` is never
    modified. Adapter failures raise ``MessageAdapterError`` (schema failures
    ``SchemaValidationError``, also a ``jsonschema.ValidationError`` when jsonschema is
    importable).
    """
    if str(os.environ.get("CUMULUS_MESSAGE_ADAPTER_DISABLED")).lower() == "true":
        try:
            return task_function(cumulus_message, context, **taskargs)
        except Exception as error:
            return _workflow_error_message(error, cumulus_message, context)

    run = _run_in_process if adapter_mode() == "inprocess" else _run_in_sidecar
    return run(task_function, cumulus_message, context, schemas, taskargs)


def adapter_mode() -> str:
    """``"sidecar"`` or ``"inprocess"``: how the next invocation runs the adapter."""
    mode = (os.environ.get("CUMULUS_MESSAGE_ADAPTER_MODE") or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"CUMULUS_MESSAGE_ADAPTER_MODE={mode!r} is not one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("CUMULUS_MESSAGE_ADAPTER_DIR"):
        return "sidecar"
    return "inprocess" if _adapter_importable() else "sidecar"


def warm_up() -> None:
    """Start the adapter now (e.g. at module import in a Lambda), not at the first message."""
    if adapter_mode() == "inprocess":
        _in_process_adapter()
    else:
        get_sidecar().start()


def stop_adapter() -> None:
    """Stop the sidecar, if one runs (it is also stopped when the interpreter exits)."""
    stop_sidecar()


def context_dict(context: Any) -> dict:
    """The JSON-safe dict of a Lambda context object (or of a dict) sent to the adapter."""
    if not context:
        return {}
    if isinstance(context, Mapping):
        fields = dict(context)
    else:
        fields = {}
        for name in LAMBDA_CONTEXT_FIELDS:
            value = getattr(context, name, None)
            if value is not None:
                fields[name] = value
        with contextlib.suppress(TypeError):
            fields.update(vars(context))
    return {
        key: value
        for key, value in fields.items()
        if isinstance(key, str) and not key.startswith("_") and _is_json(value)
    }


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_json(item) for key, item in value.items())
    return False


# ---- the WorkflowError rule ---------------------------------------------------------------


def _workflow_error_message(error: Exception, cumulus_message: Any, context: Any = None) -> Any:
    """The message to return for a ``WorkflowError``; re-raises any other exception."""
    name = error.args[0] if error.args else None
    if isinstance(name, str) and "WorkflowError" in name:
        _log_error(f"WorkflowError: {name}", cumulus_message, context)
        if isinstance(cumulus_message, dict):
            return {**cumulus_message, "payload": None, "exception": name}
        return {"payload": None, "exception": name}
    _log_error(f"task failed: {type(error).__name__}: {error}", cumulus_message, context)
    raise error


def _log_error(text: str, cumulus_message: Any, context: Any) -> None:
    """One Cumulus-format line (see ``cumulus_logger``) with the message's metadata."""
    try:
        from cumulus_logger import CumulusLogger
    except ImportError:  # only the package was vendored, not the module beside it
        logger.error("%s", text)
        return
    cumulus_log = CumulusLogger("run_cumulus_task")
    cumulus_log.setMetadata(cumulus_message, context)
    cumulus_log.error(text)


def _check_output(response: Any) -> None:
    """``TaskOutputError`` unless the task's result is JSON (the adapter's own rule)."""
    problem = output_problem(response)
    if problem is not None:
        raise TaskOutputError(problem)


# ---- sidecar mode ---------------------------------------------------------------------------


def _run_in_sidecar(
    task_function: Callable[..., Any],
    cumulus_message: dict,
    context: Any,
    schemas: dict | None,
    taskargs: dict,
) -> Any:
    sidecar = get_sidecar()
    call = sidecar.call_within(context)
    if sidecar.open_session(call):
        features = sidecar.features
        try:
            return _run_session(
                call, task_function, cumulus_message, context, schemas, taskargs, features
            )
        finally:
            sidecar.close_session()
    # The full message goes back and forth as the sidecar's own JSON bytes: it is never
    # decoded here, and a task cannot change it.
    full = call(
        "loadAndUpdateRemoteEvent",
        (
            b'{"event":',
            encode_reusing(cumulus_message, 0),
            b',"context":',
            encode(context_dict(context)),
            b"}",
        ),
    )
    full = memoryview(full)[: len(full) - _line_break_length(full)]  # no copy of the message
    schemas_json = encode(schemas)
    nested = decode(
        call("loadNestedEvent", (b'{"event":', full, b',"schemas":', schemas_json, b"}"))
    )
    message_config = nested.get("messageConfig")
    try:
        response = task_function(nested, context, **taskargs)
    except Exception as error:
        return _workflow_error_message(error, cumulus_message, context)
    _check_output(response)
    next_json = call(
        "createNextEvent",
        (
            b'{"event":',
            full,
            b',"handler_response":',
            encode_reusing(response, 1),
            b',"message_config":',
            encode(message_config),
            b',"schemas":',
            schemas_json,
            b"}",
        ),
    )
    return _next_message(next_json)


def _line_break_length(line: bytes) -> int:
    return 2 if line.endswith(b"\r\n") else 1 if line.endswith((b"\n", b"\r")) else 0


def _run_session(
    call: Callable[..., Any],
    task_function: Callable[..., Any],
    cumulus_message: dict,
    context: Any,
    schemas: dict | None,
    taskargs: dict,
    features: frozenset[str] = frozenset(),
) -> Any:
    """Protocol v2: the sidecar keeps the full message; only the nested event, the task's
    response and the next message cross the pipe (the same bytes as the v1 commands).

    What the sidecar understands of ``features`` spares more: a nested event whose input
    is the message's payload comes without it and it is decoded from the text sent
    (``referToPayload``); a next message whose payload is a plain-JSON response comes
    without it and the response itself is put in (``referToResponse``): either way, what
    decoding the v1 answer would give.
    """
    schemas_json = encode(schemas)
    pieces, payload_json = encode_message(cumulus_message)
    refer_payload = payload_json is not None and "referToPayload" in features
    begun = decode(
        call(
            "beginTask",
            (
                b'{"event":',
                *pieces,
                b',"context":',
                encode(context_dict(context)),
                b',"schemas":',
                schemas_json,
                b',"referToPayload":true}' if refer_payload else b"}",
            ),
            borrow=True,
        )
    )
    handle_json = encode(begun["handle"])
    nested = begun["nestedEvent"]
    if refer_payload and begun.get("inputIsPayload") is True:
        nested["input"] = decode(payload_json)
    message_config = nested.get("messageConfig")

    def cancel() -> None:  # there will be no completeTask: free the sidecar's session
        with contextlib.suppress(MessageAdapterError):
            call("cancelTask", b'{"handle":' + handle_json + b"}")

    try:
        response = task_function(nested, context, **taskargs)
    except Exception as error:
        cancel()
        return _workflow_error_message(error, cumulus_message, context)
    refer = "referToResponse" in features and plain_json(response)
    if not refer:
        try:
            _check_output(response)
        except TaskOutputError:
            cancel()
            raise
    next_json = call(
        "completeTask",
        (
            b'{"handle":',
            handle_json,
            b',"handler_response":',
            encode_reusing(response, 1),
            b',"message_config":',
            encode(message_config),
            b',"schemas":',
            schemas_json,
            b',"referToResponse":true}' if refer else b"}",
        ),
        borrow=True,
    )
    if not refer:
        return _next_message(next_json)
    answer = decode(next_json)
    check_output_size(answer["size"], output_limit())
    message = answer["nextEvent"]
    if answer["payloadIsResponse"]:
        message["payload"] = response
    return message


def _next_message(next_json: bytes | memoryview) -> Any:
    # The answer is one line of compact JSON: its length is the message's size.
    check_output_size(len(next_json) - (next_json[-1:] == b"\n"), output_limit())
    return decode(next_json)


# ---- in-process mode ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _adapter_importable() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("message_adapter.message_adapter") is not None
    except ImportError:
        return False


def _in_process_adapter() -> type:
    """The adapter's documented library class, ``MessageAdapter`` (its instances share one
    S3 client per process)."""
    directory = os.environ.get("CUMULUS_MESSAGE_ADAPTER_DIR")
    if directory and directory not in sys.path:
        sys.path.insert(0, directory)  # as the published client does
    from message_adapter.message_adapter import MessageAdapter

    return MessageAdapter


def _run_in_process(
    task_function: Callable[..., Any],
    cumulus_message: dict,
    context: Any,
    schemas: dict | None,
    taskargs: dict,
) -> Any:
    adapter = _in_process_adapter()(schemas)
    with _adapter_errors("loadAndUpdateRemoteEvent"):
        full = adapter.load_and_update_remote_event(cumulus_message, context_dict(context))
    with _adapter_errors("loadNestedEvent"):
        # The adapter shares unchanged parts with its input; the task gets its own copy, so
        # nothing it does can reach the caller's message.
        nested = decode(encode(adapter.load_nested_event(full)))
    message_config = nested.get("messageConfig")
    try:
        response = task_function(nested, context, **taskargs)
    except Exception as error:
        return _workflow_error_message(error, cumulus_message, context)
    _check_output(response)
    with _adapter_errors("createNextEvent"):
        next_message = adapter.create_next_event(response, full, message_config)
    check_message_size(next_message, output_limit())
    return next_message


class _adapter_errors:
    """Raise the in-process adapter's failures as the sidecar's exception types."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        if error is None or isinstance(error, MessageAdapterError):
            return False
        module = kind.__module__
        if kind.__name__ == "ValidationError" and module.startswith("jsonschema"):
            raise adapter_error("ValidationError", error.message, self.command) from error
        if module.startswith("message_adapter."):
            message = " ".join(str(error).split())
            raise adapter_error(kind.__name__, message, self.command) from error
        return False
