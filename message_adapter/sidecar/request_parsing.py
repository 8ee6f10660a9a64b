"""Parse a command's request only as deep as the command needs.

A Cumulus message can be 17 MB, and most of it (the granules in ``payload``) passes
through the adapter untouched. Here the request is parsed with every top-level value of
``event`` (and ``handler_response``) left as raw JSON text; a command then decodes just the
keys its rules read, and the untouched parts are written back out byte for byte. This
takes parsing, encoding and freeing of the bulk of a message off the sidecar's hands.
Small requests (below ``LAZY_FROM`` bytes, where decoding piecemeal costs more than it
saves), requests msgspec cannot read this way (escaped lone surrogates), and requests
written over several lines (raw text would carry their line breaks into a one-line
answer) are parsed whole.
"""

from functools import lru_cache
from typing import Any

import msgspec

from message_adapter.errors import ProtocolError
from message_adapter.jsonio import loads
from message_adapter.rules import message_flow

Raw = msgspec.Raw


class _Request(msgspec.Struct):
    event: dict[str, Raw]
    context: Any = None
    schemas: Any = None
    handler_response: Raw = Raw(b"null")
    message_config: Any = None


_decode_request = msgspec.json.Decoder(_Request).decode

LAZY_FROM = 32 * 1024


def parse_request(command: str, body: bytes) -> Any:
    """The request as a dict, with the parts ``command`` reads decoded and the rest raw.

    What each command reads is declared beside its rule in ``message_flow``.
    """
    if len(body) < LAZY_FROM:
        return _parse_whole(command, body)
    first_newline = body.find(b"\n")
    if (first_newline != -1 and first_newline != len(body) - 1) or b"\r" in body:
        return _parse_whole(command, body)
    try:
        parsed = _decode_request(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _parse_whole(command, body)
    event = parsed.event
    request: dict[str, Any] = {
        "event": event,
        "context": parsed.context,
        "schemas": parsed.schemas,
        "handler_response": parsed.handler_response,
        "message_config": parsed.message_config,
    }
    if command == "loadAndUpdateRemoteEvent":
        _decode(event, message_flow.load_and_update_reads(event))
    elif command == "loadNestedEvent":
        task_config = event.get("task_config")
        reads = _template_reads(bytes(task_config)) if type(task_config) is Raw else ()
        _decode(event, message_flow.LOAD_NESTED_READS)
        _decode(event, reads)
    elif command == "createNextEvent":
        _decode(event, message_flow.CREATE_NEXT_READS)
        reads, reads_response = message_flow.create_next_reads(event, parsed.message_config)
        _decode(event, reads)
        if reads_response:
            request["handler_response"] = decode_raw(parsed.handler_response)
    return request


def decode_raw(value: Any) -> Any:
    """``value`` itself, or its decoded JSON when it is still raw text."""
    return loads(value) if type(value) is Raw else value


def _decode(event: dict, keys: Any) -> None:
    """Decode ``keys`` of ``event`` in place (every key when ``keys`` is ``None``)."""
    for key in list(event.keys() if keys is None else keys):
        value = event.get(key)
        if type(value) is Raw:
            event[key] = loads(value)


@lru_cache(maxsize=256)
def _template_reads(task_config_json: bytes) -> Any:
    """``load_nested_reads`` of a task config, cached by its text: configs repeat."""
    reads = message_flow.load_nested_reads(loads(task_config_json))
    return None if reads is None else frozenset(reads)


def _parse_whole(command: str, body: bytes) -> Any:
    """Everything decoded; the command checks the request's shape as for any caller."""
    try:
        return loads(body)
    except ValueError as error:
        raise ProtocolError(f"{command}: the request is not valid JSON ({error})") from None
