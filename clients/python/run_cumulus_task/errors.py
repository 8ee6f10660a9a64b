"""What ``run_cumulus_task`` raises when the adapter, not the task, fails, and when the task
returns something the adapter cannot take (``TaskOutputError``).

Every adapter failure is a ``MessageAdapterError`` carrying the adapter's error ``name``
(``MessageError``, ``TemplateError``, ``RemoteStoreError``, ``ValidationError``...) and the
``command`` that failed. Schema failures are ``SchemaValidationError``; when jsonschema is
importable the raised object is also a ``jsonschema.ValidationError``, so tasks written for
the published client keep catching that type.
"""

from __future__ import annotations

from functools import lru_cache


class MessageAdapterError(Exception):
    """The adapter refused the message or could not process it."""

    def __init__(
        self, message: str, name: str = "MessageAdapterError", command: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.command = command


class SchemaValidationError(MessageAdapterError):
    """The task's input, config or output does not match its JSON schema."""


class AdapterProcessError(MessageAdapterError):
    """The adapter sidecar could not be found or started, or it died mid-command."""


class AdapterTimeoutError(AdapterProcessError):
    """The sidecar did not answer before the invocation's deadline; it was killed."""


class MessageTooLargeError(MessageAdapterError):
    """The next message is over Step Functions' limit for a state's output (256 KiB)."""


class TaskOutputError(TypeError):
    """The task returned something that is not JSON; the message names the type and where
    it is (``$.granules[0].date``). A ``TypeError``, as the published client's
    ``json.dumps`` failure was; ``.name`` is ``"TaskOutputError"``, as under the adapter's
    ``run`` and ``activity``."""

    name = "TaskOutputError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@lru_cache(maxsize=1)
def _schema_error_type() -> type[SchemaValidationError]:
    try:
        from jsonschema import ValidationError
    except ImportError:
        return SchemaValidationError

    class JsonSchemaValidationError(SchemaValidationError, ValidationError):
        """A ``SchemaValidationError`` that is also a ``jsonschema.ValidationError``."""

        def __init__(
            self, message: str, name: str = "ValidationError", command: str | None = None
        ) -> None:
            ValidationError.__init__(self, message)
            self.name = name
            self.command = command

        def __str__(self) -> str:
            return self.message

    JsonSchemaValidationError.__module__ = __name__
    return JsonSchemaValidationError


def adapter_error(name: str, message: str, command: str | None) -> MessageAdapterError:
    """The exception for an adapter failure reported as ``{"name", "message"}``."""
    if name == "ValidationError":
        return _schema_error_type()(message, name, command)
    return MessageAdapterError(message, name, command)
