"""The three adapter commands as the sidecar, the CLI, the library and the task runner call them.

This layer reads a command's request object, checks its shape, and wires the pure
message rules to a remote store and to the schema checks. It knows nothing of framing.
Every method takes keyword arguments only: the historic library API orders
``create_next_event``'s arguments differently, and the two must never be mixed up.
"""

from collections.abc import Callable
from typing import Any

from message_adapter.errors import MessageError, ProtocolError
from message_adapter.rules import message_flow
from message_adapter.schemas import schema_file
from message_adapter.schemas import validate as check
from message_adapter.sidecar.request_parsing import MAX_NESTING, decode_raw, parse_request
from message_adapter.sidecar.sessions import SESSION_COMMANDS, Sessions
from message_adapter.stores import RemoteStore, shared_s3_store

COMMANDS = ("loadAndUpdateRemoteEvent", "loadNestedEvent", "createNextEvent")
"""The v1 commands, each answerable on its own (stream or single command)."""
STREAM_COMMANDS = COMMANDS + SESSION_COMMANDS
"""Everything a stream answers: v1 and the v2 session commands (``sessions``)."""


def _validator(schemas: Any) -> message_flow.Validate:
    if schemas is not None and not isinstance(schemas, dict):
        raise MessageError(
            "schemas must be an object mapping input/config/output to schema files, "
            f"got {type(schemas).__name__}"
        )

    def validate(document: Any, schema_type: str) -> None:
        path = schema_file(schemas, schema_type)
        if path is not None:
            check(decode_raw(document), schema_type, path)

    return validate


class Adapter:
    """Runs adapter commands against one store: the process's shared S3 store unless told."""

    def __init__(self, store: RemoteStore | None = None) -> None:
        self.store = store if store is not None else shared_s3_store()
        self.sessions = Sessions(self.run)

    def run_stream_command(self, command: str, body: bytes) -> Any:
        """Run one stream command, v1 or v2, on its request as JSON text."""
        if command in SESSION_COMMANDS:
            return self.sessions.run(command, body)
        return self.run_json(command, body)

    def load_and_update_remote_event(self, *, event: Any, context: Any = None) -> dict:
        """Unwrap ``cma``, load a ``replace``d part, record the task in ``workflow_tasks``."""
        return message_flow.load_and_update_remote_event(event, context, self.store)

    def load_nested_event(self, *, event: Any, schemas: Any = None) -> dict:
        """The task's ``{input, config, messageConfig?, cumulus_config?}``."""
        return message_flow.load_nested_event(event, _validator(schemas))

    def create_next_event(
        self,
        *,
        event: Any,
        handler_response: Any,
        message_config: Any = None,
        schemas: Any = None,
    ) -> dict:
        """The next message, offloaded per ``ReplaceConfig``."""
        return message_flow.create_next_event(
            event, handler_response, message_config, self.store, _validator(schemas)
        )

    def run_json(self, command: str, body: bytes) -> Any:
        """Run one protocol command on its request as JSON text, parsed only as needed."""
        self._handler(command)
        return self.run(command, parse_request(command, body))

    def run(self, command: str, request: Any) -> Any:
        """Run one protocol command on its request object (``{"event", ...}``)."""
        handler = self._handler(command)
        if not isinstance(request, dict) or not isinstance(request.get("event"), dict):
            raise MessageError(
                f"{command} expects a JSON object with an 'event' object "
                '(e.g. {"event": {...}, "context": {...}})'
            )
        try:
            return handler(self, request)
        except RecursionError:
            raise MessageError(
                f"{command}: the message nests objects and lists too deeply to process; "
                "flatten the deepest part (the JSON parser itself allows about "
                f"{MAX_NESTING} levels)"
            ) from None

    def _handler(self, command: str) -> Callable[["Adapter", dict], Any]:
        handler = _HANDLERS.get(command)
        if handler is None:
            raise ProtocolError(
                f"unknown command {command!r}; expected one of {', '.join(STREAM_COMMANDS)}"
            )
        return handler


_HANDLERS: dict[str, Callable[[Adapter, dict], Any]] = {
    "loadAndUpdateRemoteEvent": lambda adapter, request: adapter.load_and_update_remote_event(
        event=request["event"], context=request.get("context")
    ),
    "loadNestedEvent": lambda adapter, request: adapter.load_nested_event(
        event=request["event"], schemas=request.get("schemas")
    ),
    "createNextEvent": lambda adapter, request: adapter.create_next_event(
        event=request["event"],
        handler_response=request.get("handler_response"),
        message_config=request.get("message_config"),
        schemas=request.get("schemas"),
    ),
}
