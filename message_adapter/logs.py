"""Cumulus-format log lines: one JSON object per line, as ``@cumulus/logger`` writes them.

Cumulus log pipelines (CloudWatch subscriptions, ESDIS metrics) read ``level``,
``message``, ``sender``, ``timestamp`` and the message's ``executions``, ``granules``,
``stackName``, ``version``, ``parentArn`` and ``asyncOperationId``. The published Node
client derives those values from the message into environment variables (``EXECUTIONS``,
``GRANULES``, ...) that ``@cumulus/logger`` reads; ``task_environment`` is that derivation,
so tasks run by ``run``, ``activity`` and ``ecs-task`` get the same variables, and
``record`` builds a line with the same keys, in the same order, from the same values.
Which lines are written is set by ``LOG_LEVEL`` (else Lambda's ``AWS_LAMBDA_LOG_LEVEL``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}
ALIASES = {"warning": "warn", "critical": "fatal", "notset": "trace", "all": "trace"}
DEFAULT_LEVEL = "info"
GRANULE_LOG_LIMIT = 500

# Environment variable -> log field, as @cumulus/logger is constructed in Cumulus tasks.
ENV_FIELDS = (
    ("ASYNCOPERATIONID", "asyncOperationId"),
    ("EXECUTIONS", "executions"),
    ("GRANULES", "granules"),
    ("PARENTARN", "parentArn"),
    ("SENDER", "sender"),
    ("STACKNAME", "stackName"),
    ("TASKVERSION", "version"),
)
TASK_ENV_NAMES = tuple(name for name, _ in ENV_FIELDS)


def level_name(text: str | None) -> str | None:
    """The canonical level for ``text`` (any case; ``warning``/``critical`` accepted), or None."""
    if not text:
        return None
    name = text.strip().lower()
    name = ALIASES.get(name, name)
    return name if name in LEVELS else None


def threshold(env: Mapping[str, str] | None = None) -> str:
    """The least level written: ``LOG_LEVEL``, else ``AWS_LAMBDA_LOG_LEVEL``, else info."""
    env = os.environ if env is None else env
    for variable in ("LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"):
        name = level_name(env.get(variable))
        if name:
            return name
    return DEFAULT_LEVEL


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _message_part(message: Any, *keys: str) -> Any:
    """``message[keys]``, or the same path inside a ``cma.event`` wrapper."""
    found = _get(message, *keys)
    return found if found is not None else _get(message, "cma", "event", *keys)


def granule_ids(message: Any, limit: int = GRANULE_LOG_LIMIT) -> list:
    """IDs of the first ``limit`` granules of ``payload.granules``, else ``meta.input_granules``."""
    granules = _message_part(message, "payload", "granules") or _message_part(
        message, "meta", "input_granules"
    )
    if not isinstance(granules, list):
        return []
    return [_get(granule, "granuleId") for granule in granules[:limit]]


def _context_value(context: Any, camel: str, snake: str) -> Any:
    if context is None:
        return None
    if isinstance(context, Mapping):
        value = context.get(camel)
        return value if value is not None else context.get(snake)
    value = getattr(context, camel, None)
    return value if value is not None else getattr(context, snake, None)


def task_environment(message: Any, context: Any = None) -> dict[str, str]:
    """The variables the published Node client sets for ``@cumulus/logger``.

    ``EXECUTIONS`` (``cumulus_meta.execution_name``), ``SENDER`` (the context's function
    name), ``TASKVERSION`` (its version), ``STACKNAME`` (``meta.stack``), ``GRANULES``
    (JSON list of the first 500 granule IDs), ``PARENTARN``
    (``cumulus_meta.parentExecutionArn``), ``ASYNCOPERATIONID``
    (``cumulus_meta.asyncOperationId``). A value the message does not hold is left out,
    so the variable keeps what it had, as with the Node client.
    """
    values = {
        "EXECUTIONS": _message_part(message, "cumulus_meta", "execution_name"),
        "SENDER": _context_value(context, "functionName", "function_name"),
        "TASKVERSION": _context_value(context, "functionVersion", "function_version"),
        "STACKNAME": _message_part(message, "meta", "stack"),
        "GRANULES": json.dumps(granule_ids(message), separators=(",", ":"))
        if isinstance(message, Mapping)
        else None,
        "PARENTARN": _message_part(message, "cumulus_meta", "parentExecutionArn"),
        "ASYNCOPERATIONID": _message_part(message, "cumulus_meta", "asyncOperationId"),
    }
    return {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in values.items()
        if value is not None
    }


def fields_from_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The log fields that ``@cumulus/logger`` takes from these variables."""
    return {field: env[name] for name, field in ENV_FIELDS if env.get(name) is not None}


def message_fields(message: Any, context: Any = None) -> dict[str, str]:
    """The Cumulus log fields for a task on ``message`` (see ``task_environment``)."""
    return fields_from_environment(task_environment(message, context))


def timestamp(now: float | None = None) -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's ``Date.toISOString``."""
    now = time.time() if now is None else now
    millis = int(now * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}Z"


def error_field(error: BaseException) -> dict[str, Any]:
    """``{"name", "message", "stack": [lines]}``, as ``@cumulus/logger`` logs an error."""
    from message_adapter.errors import error_message, error_name

    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {
        "name": error_name(error),
        "message": error_message(error),
        "stack": stack.rstrip("\n").split("\n"),
    }


def record(
    level: str,
    message: str,
    fields: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """One log line's object: ``extra`` keys first, then the Cumulus keys in
    ``@cumulus/logger``'s order (which win over ``extra``); None values are left out."""
    fields = fields or {}
    standard = {
        "asyncOperationId": fields.get("asyncOperationId"),
        "executions": fields.get("executions"),
        "granules": fields.get("granules"),
        "level": level,
        "message": message,
        "parentArn": fields.get("parentArn"),
        "sender": fields.get("sender") or "unknown",
        "stackName": fields.get("stackName"),
        "timestamp": timestamp(now),
        "version": fields.get("version"),
    }
    line = {key: value for key, value in (extra or {}).items() if key not in standard}
    line.update(standard)
    return {key: value for key, value in line.items() if value is not None}


class Logger:
    """Writes Cumulus-format lines to a stream (stderr by default), one ``write`` per line.

    ``fields`` are the defaults of every line (``sender``, ``version``, ...); each call
    may add a message's fields and extra keys. Thread-safe.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        fields: Mapping[str, Any] | None = None,
        level: str | None = None,
    ) -> None:
        self.stream = stream
        self.fields = dict(fields or {})
        self.level = level_name(level) or threshold()
        self._lock = threading.Lock()

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= LEVELS[self.level]

    def log(
        self,
        level: str,
        message: str,
        fields: Mapping[str, Any] | None = None,
        *,
        exc: BaseException | None = None,
        **extra: Any,
    ) -> None:
        """Write one line at ``level`` (trace, debug, info, warn, error, fatal); ``exc``
        adds ``error: {name, message, stack}`` as ``@cumulus/logger`` does for an Error."""
        level = level_name(level) or "info"
        if not self.enabled(level):
            return
        if exc is not None:
            extra["error"] = error_field(exc)
        merged = {**self.fields, **(fields or {})}
        text = json.dumps(record(level, message, merged, extra), default=str) + "\n"
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(text)
            stream.flush()

    def trace(self, message: str, **extra: Any) -> None:
        self.log("trace", message, **extra)

    def debug(self, message: str, **extra: Any) -> None:
        self.log("debug", message, **extra)

    def info(self, message: str, **extra: Any) -> None:
        self.log("info", message, **extra)

    def warn(self, message: str, **extra: Any) -> None:
        self.log("warn", message, **extra)

    def error(self, message: str, **extra: Any) -> None:
        self.log("error", message, **extra)

    def fatal(self, message: str, **extra: Any) -> None:
        self.log("fatal", message, **extra)
