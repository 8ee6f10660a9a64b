"""``cumulus_logger``: Cumulus-format JSON log lines for Python tasks.

The same API and output as the module of that name in the published Python client
(nasa/cumulus-message-adapter-python), so ``from cumulus_logger import CumulusLogger``
works unchanged::

    logger = CumulusLogger()                # or CumulusLogger("my_task", logging.INFO)
    logger.setMetadata(event, context)      # execution, granules, stack... from the message
    logger.info("found {} granules", 3)     # str.format arguments
    logger.error("download failed", exc_info=True)

Each call writes one JSON object: the message, ``level`` (``debug``, ``info``, ``warning``,
``error``, ``critical``), ``timestamp``, and the metadata ``asyncOperationId``,
``executions``, ``granules`` (a JSON list of granule IDs), ``parentArn``, ``sender``,
``stackName`` and ``version``, leaving out those the message does not hold.

Where the published module is silent this one is lenient: a context may be a dict as
well as a Lambda context object; a message with braces is only formatted when format
arguments are given (``exc_info`` is not one); ``exc_info=<exception>`` logs that
exception's traceback. Without an explicit ``level``, ``LOG_LEVEL`` (or Lambda's
``AWS_LAMBDA_LOG_LEVEL``) sets it when defined, else DEBUG, the published default.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["CumulusLogger"]

_LEVEL_NAMES = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
}


def _dig(value: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _find(event: Any, *paths: str) -> Any:
    """The first non-None value at ``paths`` in the message, else inside ``cma.event``."""
    for prefix in ("", "cma.event."):
        for path in paths:
            value = _dig(event, prefix + path)
            if value is not None:
                return value
    return None


def _context_value(context: Any, name: str) -> Any:
    if isinstance(context, Mapping):
        return context.get(name, "unknown")
    return getattr(context, name, "unknown")


def _environment_level() -> int | None:
    for variable in ("LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"):
        level = _LEVEL_NAMES.get((os.environ.get(variable) or "").strip().lower())
        if level is not None:
            return level
    return None


def _traceback_text(exc_info: Any) -> str:
    if not exc_info:
        return ""
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if not any(exc_info):
        return ""
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


class CumulusLogger:
    """A logger writing one Cumulus-format JSON object per call; see the module docstring."""

    def __init__(self, name: str = __name__, level: int | None = None) -> None:
        self.logger = logging.getLogger(name)
        if level is None:
            level = _environment_level() or logging.DEBUG
        self.logger.setLevel(level)
        self.logger.propagate = False  # one line per message in CloudWatch, not two
        if not self.logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)
        self.event: Any = None
        self.context: Any = None
        self._metadata: dict[str, Any] = {}

    def setMetadata(self, event: Any, context: Any) -> None:  # noqa: N802 - published name
        """Take the metadata of later lines from a Cumulus message (or a ``cma`` wrapper
        of one) and a Lambda context: ``sender`` and ``version`` are the context's
        ``function_name`` and ``function_version`` (``"unknown"`` when absent)."""
        self.event, self.context = event, context
        granules = _find(event, "payload.granules", "meta.input_granules") or []
        ids = [_dig(granule, "granuleId") for granule in granules]
        candidates = {
            "asyncOperationId": _find(event, "cumulus_meta.asyncOperationId"),
            "executions": _find(event, "cumulus_meta.execution_name"),
            "granules": json.dumps(ids) if ids else None,
            "parentArn": _find(event, "cumulus_meta.parentExecutionArn"),
            "sender": _context_value(context, "function_name"),
            "stackName": _find(event, "meta.stack"),
            "version": _context_value(context, "function_version"),
        }
        self._metadata = {key: value for key, value in candidates.items() if value}

    def createMessage(self, message: Any, *args: Any, **kwargs: Any) -> dict:  # noqa: N802
        """The object one call logs: ``message`` (formatted with ``args``/``kwargs``, with
        the traceback appended when ``exc_info`` is truthy; a dict is taken as is), the
        metadata, and ``timestamp``."""
        if isinstance(message, Mapping):
            line = dict(message)
        else:
            exc_info = kwargs.pop("exc_info", None)
            text = str(message)
            if args or kwargs:
                text = text.format(*args, **kwargs)
            line = {"message": " ".join(part for part in (text, _traceback_text(exc_info)) if part)}
        line.update(self._metadata)
        line["timestamp"] = datetime.now().isoformat()
        return line

    def log(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at the level named by a dict message's ``level`` key, else the logger's."""
        self._log(logging.NOTSET, message, *args, **kwargs)

    def trace(self, message: Any, *args: Any, **kwargs: Any) -> None:
        """Log at DEBUG (Python has no TRACE level)."""
        self._log(logging.DEBUG, message, *args, **kwargs)

    def debug(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.DEBUG, message, *args, **kwargs)

    def info(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.INFO, message, *args, **kwargs)

    def warn(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.WARNING, message, *args, **kwargs)

    def warning(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.WARNING, message, *args, **kwargs)

    def error(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.ERROR, message, *args, **kwargs)

    def critical(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.CRITICAL, message, *args, **kwargs)

    def fatal(self, message: Any, *args: Any, **kwargs: Any) -> None:
        self._log(logging.CRITICAL, message, *args, **kwargs)

    def _log(self, level: int, message: Any, *args: Any, **kwargs: Any) -> None:
        line = self.createMessage(message, *args, **kwargs)
        if level == logging.NOTSET:
            named = line.get("level")
            level = _LEVEL_NAMES.get(named.lower(), 0) if isinstance(named, str) else 0
            level = level or self.logger.level
        if not self.logger.isEnabledFor(level):
            return
        line["level"] = logging.getLevelName(level).lower()
        self.logger.log(level, json.dumps(line, default=str))
