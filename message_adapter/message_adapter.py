"""The library API the published Python client imports in-process.

nasa/cumulus-message-adapter-python puts ``CUMULUS_MESSAGE_ADAPTER_DIR`` first on
``sys.path`` and runs ``from message_adapter.message_adapter import MessageAdapter``; this
class keeps that API (and its argument order) on top of the same rules the sidecar uses.
No method mutates its arguments. Schema failures raise ``jsonschema.ValidationError``.
Every instance shares the process's S3 client unless given a store.
"""

from typing import Any

from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import RemoteStore


class MessageAdapter:
    """Historic-compatible adapter object: ``MessageAdapter(schemas)``."""

    def __init__(self, schemas: dict | None = None, store: RemoteStore | None = None) -> None:
        self.schemas = schemas
        self._adapter = Adapter(store)

    def load_and_update_remote_event(self, incoming_event: dict, context: Any) -> dict:
        """Unwrap ``cma``, load a remotely stored part, record the task in ``workflow_tasks``."""
        return self._adapter.load_and_update_remote_event(event=incoming_event, context=context)

    def load_nested_event(self, event: dict, context: Any = None) -> dict:
        """The task's ``{input, config, messageConfig?, cumulus_config?}``."""
        return self._adapter.load_nested_event(event=event, schemas=self.schemas)

    def create_next_event(
        self, handler_response: Any, event: dict, message_config: dict | None
    ) -> dict:
        """The next Cumulus message, offloaded to S3 per ``ReplaceConfig``."""
        return self._adapter.create_next_event(
            event=event,
            handler_response=handler_response,
            message_config=message_config,
            schemas=self.schemas,
        )
