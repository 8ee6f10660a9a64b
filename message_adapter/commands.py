"""The three adapter commands as the sidecar, the CLI and the task runner call them.

This layer reads a command's request object, checks its shape, and wires the pure
message rules to a remote store and to the schema checks. It knows nothing of framing.
"""

from collections.abc import Callable
from typing import Any

from message_adapter import message_flow
from message_adapter.errors import MessageError, ProtocolError
from message_adapter.message_flow import RemoteStore
from message_adapter.request_parsing import decode_raw, parse_request
from message_adapter.schemas import schema_file
from message_adapter.schemas import validate as check

COMMANDS = ("loadAndUpdateRemoteEvent", "loadNestedEvent", "createNextEvent")


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


class _LazyS3:
    """S3, set up on first use: messages that never touch it import nothing for it."""

    def __init__(self) -> None:
        self._store: RemoteStore | None = None

    def _s3(self) -> RemoteStore:
        if self._store is None:
            from message_adapter.remote_store import S3Store

            self._store = S3Store()
        return self._store

    def get_json(self, bucket: str, key: str) -> Any:
        return self._s3().get_json(bucket, key)

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        self._s3().put_json(bucket, key, body)


class Adapter:
    """Runs adapter commands against one remote store (S3 unless told otherwise)."""

    def __init__(self, store: RemoteStore | None = None) -> None:
        self.store = store if store is not None else _LazyS3()

    def load_and_update_remote_event(self, event: Any, context: Any = None) -> dict:
        return message_flow.load_and_update_remote_event(event, context, self.store)

    def load_nested_event(self, event: Any, schemas: Any = None) -> dict:
        return message_flow.load_nested_event(event, _validator(schemas))

    def create_next_event(
        self, event: Any, handler_response: Any, message_config: Any = None, schemas: Any = None
    ) -> dict:
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
        return handler(self, request)

    def _handler(self, command: str) -> Callable[["Adapter", dict], Any]:
        handler = self._handlers.get(command)
        if handler is None:
            raise ProtocolError(
                f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}"
            )
        return handler

    def _load_and_update(self, request: dict) -> Any:
        return self.load_and_update_remote_event(request["event"], request.get("context"))

    def _load_nested(self, request: dict) -> Any:
        return self.load_nested_event(request["event"], request.get("schemas"))

    def _create_next(self, request: dict) -> Any:
        return self.create_next_event(
            request["event"],
            request.get("handler_response"),
            request.get("message_config"),
            request.get("schemas"),
        )

    _handlers: dict[str, Callable[["Adapter", dict], Any]] = {
        "loadAndUpdateRemoteEvent": _load_and_update,
        "loadNestedEvent": _load_nested,
        "createNextEvent": _create_next,
    }
