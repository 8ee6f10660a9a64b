"""Error types shared by the core and the edges, and the one way an error is described.

Every error the adapter raises on purpose is an ``AdapterError`` whose message says what
is wrong and what to change, so the CLI, the protocol and the worker can show it as-is.
This module imports nothing of the package, so every other module can import it.
"""

from typing import Any


class AdapterError(Exception):
    """Base class for errors whose message is meant for the person fixing the input."""


class MessageError(AdapterError, ValueError):
    """The Cumulus message or the command request is malformed."""


class TemplateError(MessageError):
    """A template in task_config, cumulus_message or outputs cannot be evaluated."""


class RemoteStoreError(AdapterError):
    """Reading or writing a stored message part failed (names bucket and key)."""


class ProtocolError(AdapterError):
    """The stream framing was violated (unknown command, truncated frame, bad JSON)."""


class ConfigurationError(AdapterError):
    """A setting a command needs is missing (an AWS region, credentials); the message says
    which, and how to provide it."""


class TaskError(Exception):
    """A task failed with an error name of its own (an ``--exec`` task's stderr, or a
    task result the adapter cannot use, such as ``TaskOutputError``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class TaskOutputError(TaskError, TypeError):
    """A task returned a result the adapter cannot pass on: not JSON (the message names the
    type and where it is), or, for an ``--exec`` task, stdout that is not one JSON document."""

    def __init__(self, message: str) -> None:
        super().__init__("TaskOutputError", message)


def error_name(error: BaseException) -> str:
    """The name an error is reported under: a ``TaskError``'s own name, else its class's.

    Only ``TaskError`` names itself: other exceptions may carry an unrelated ``name``
    attribute (``ImportError.name`` is a module, ``AttributeError.name`` an attribute).
    """
    if isinstance(error, TaskError) and isinstance(error.name, str) and error.name:
        return error.name
    return type(error).__name__


def error_message(error: BaseException) -> str:
    """The error's message on one line (jsonschema keeps it in ``.message``)."""
    message: Any = getattr(error, "message", None)
    if not isinstance(message, str) or not message:
        message = str(error) or type(error).__name__
    return " ".join(message.split())


def describe(error: BaseException) -> dict[str, str]:
    """``{"name", "message"}``: how the sidecar, ``run`` and the worker report an error.

    An error raised by one step of a v2 session command also names that step (``"step":
    "loadNestedEvent"``), so clients can report the command that failed as v1 does.
    """
    info = {"name": error_name(error), "message": error_message(error)}
    step = getattr(error, "adapter_step", None)
    if isinstance(step, str):
        info["step"] = step
    return info
