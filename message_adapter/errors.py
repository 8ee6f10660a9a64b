"""Error types shared by the core and the edges.

Every error the adapter raises on purpose is an ``AdapterError`` whose message says what
is wrong and what to change, so the CLI and the protocol can show it as-is.
"""


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
