"""Parse a command's request only as deep as the command needs.

A Cumulus message can be 17 MB, and most of it (the granules in ``payload``) passes
through the adapter untouched. Here the request is parsed with every top-level value of
``event`` (and ``handler_response``) left as raw JSON text; a command then decodes just the
keys its rules read, and the untouched parts are written back out byte for byte. This
takes parsing, encoding and freeing of the bulk of a message off the sidecar's hands.
Small requests (below ``LAZY_FROM`` bytes, where decoding piecemeal costs more than it
saves) and requests msgspec cannot read this way (escaped lone surrogates) are parsed
whole. Raw text is still checked: msgspec checks its JSON syntax, and a request that is
not all ASCII is checked to be UTF-8 in one pass, so what is accepted does not depend on
size. A request written over several lines has the line breaks in its raw parts turned
into spaces (outside strings they are mere whitespace), so the answer stays on one line.

msgspec is loaded by the first request that needs it (a large one, or one the standard
library's ``json`` cannot read exactly: see ``jsonio.loads_light``), so a sidecar answers
its first small requests without waiting for that import.
"""

import codecs
from functools import lru_cache
from typing import Any

from message_adapter import jsonio
from message_adapter.errors import ProtocolError
from message_adapter.jsonio import loads, utf8_problem
from message_adapter.rules import message_flow


class _NotLoaded:
    """Stands for ``msgspec.Raw`` until msgspec is loaded: no value is of this type."""


Raw: Any = _NotLoaded
_DecodeError: Any = _NotLoaded
_ValidationError: Any = _NotLoaded


def _decode_request(body: bytes) -> Any:  # rebound by load_lazy_parser
    load_lazy_parser()
    return _decode_request(body)


def _decode_completion(body: bytes) -> Any:  # rebound by load_lazy_parser
    load_lazy_parser()
    return _decode_completion(body)


def _decode_parts(body: bytes) -> Any:  # rebound by load_lazy_parser
    load_lazy_parser()
    return _decode_parts(body)


def load_lazy_parser() -> None:
    """Load msgspec and define the structures of the lazy parse (once; idempotent)."""
    global Raw, _DecodeError, _ValidationError, _decode_request, _decode_parts, _decode_completion
    msgspec = jsonio.msgspec_module()
    if Raw is msgspec.Raw:
        return
    raw = msgspec.Raw

    class _Request(msgspec.Struct):
        event: dict[str, raw]
        context: Any = None
        schemas: Any = None
        handler_response: raw = raw(b"null")
        message_config: Any = None
        referToPayload: Any = None  # noqa: N815 - the protocol's name (beginTask)

    class _Completion(msgspec.Struct):
        handle: Any = None
        handler_response: raw = raw(b"null")
        message_config: Any = None
        schemas: Any = None
        referToResponse: Any = None  # noqa: N815 - the protocol's name

    class _Parts(msgspec.Struct):
        """Every part of a request as raw text: to find which one holds a bad byte."""

        event: dict[str, raw] = {}
        context: raw = raw(b"null")
        schemas: raw = raw(b"null")
        handler_response: raw = raw(b"null")
        message_config: raw = raw(b"null")

    Raw, _DecodeError, _ValidationError = raw, msgspec.DecodeError, msgspec.ValidationError
    _decode_request = msgspec.json.Decoder(_Request).decode
    _decode_parts = msgspec.json.Decoder(_Parts).decode
    _decode_completion = msgspec.json.Decoder(_Completion).decode


def raw_available() -> bool:
    """Whether msgspec is loaded, so ``Raw`` can wrap JSON text that is already written."""
    return Raw is not _NotLoaded


LAZY_FROM = 32 * 1024
MAX_NESTING = 990
"""About how deep objects and lists may nest in a request: msgspec's limit is Python's
recursion limit (1000) less the frames below the parser (measured on CPython 3.11)."""
_UTF8_CHUNK = 1 << 20
_LINE_BREAKS_TO_SPACES = bytes.maketrans(b"\r\n", b"  ")


def parse_request(command: str, body: bytes) -> Any:
    """The request as a dict, with the parts ``command`` reads decoded and the rest raw.

    What each command reads is declared beside its rule in ``message_flow``. Raises
    ``ProtocolError`` for a request that is not UTF-8 JSON or nests too deeply to parse.
    """
    try:
        request, lazy = _parse(command, body, lambda data: _decode_request(data))
        if lazy:
            decode_reads(command, request)
        return request
    except RecursionError:
        raise _too_deep(command) from None


def parse_completion(command: str, body: bytes) -> Any:
    """A v2 ``completeTask`` request (``{"handle", "handler_response", "message_config",
    "schemas", "referToResponse"}``) as a dict, ``handler_response`` left raw when the
    request is large: what ``createNextEvent`` takes besides the event, checked as
    ``parse_request`` checks."""
    try:
        return _parse(command, body, lambda data: _decode_completion(data))[0]
    except RecursionError:
        raise _too_deep(command) from None


def _parse(command: str, body: bytes, decode_lazily: Any) -> tuple[Any, bool]:
    """``(request, whether it was parsed lazily)``: a large request through
    ``decode_lazily`` (a structure of raw parts) as a dict of its members, anything else
    (small, or what the structure cannot read) decoded whole. UTF-8 is checked either way.
    The callers pass their decoder in a lambda: it is rebound when msgspec loads.
    """
    if len(body) < LAZY_FROM:
        return _parse_whole(command, body), False
    if not body.isascii() and not _is_utf8(body):
        raise _not_utf8(command, body)
    try:
        parsed = decode_lazily(body)
    except (_ValidationError, _DecodeError):
        return _parse_whole(command, body), False
    if _has_inner_line_break(body):
        parsed = decode_lazily(_flattened(body))
    return {name: getattr(parsed, name) for name in parsed.__struct_fields__}, True


def _too_deep(command: str) -> ProtocolError:
    return ProtocolError(
        f"{command}: the request nests objects and lists more deeply than the JSON "
        f"parser allows (about {MAX_NESTING} levels); flatten the structure"
    )


def decode_reads(command: str, request: dict) -> None:
    """Decode in place the raw parts of ``request`` (``event`` and ``handler_response``)
    that ``command`` reads; the rest stays raw text, to be written back as it came."""
    event = request["event"]
    if command == "loadAndUpdateRemoteEvent":
        _decode(event, message_flow.load_and_update_reads(event))
    elif command == "loadNestedEvent":
        task_config = event.get("task_config")
        raw_whole = not _validates_nested(request.get("schemas"))
        if type(task_config) is Raw:
            reads = _template_reads(bytes(task_config), raw_whole)
        elif any(type(value) is Raw for value in event.values()):  # decoded by an earlier step
            reads = message_flow.load_nested_reads(task_config, whole_may_stay_raw=raw_whole)
        else:
            reads = ()
        _decode(event, message_flow.LOAD_NESTED_READS)
        _decode(event, reads)
    elif command == "createNextEvent":
        _decode(event, message_flow.CREATE_NEXT_READS)
        reads, reads_response = message_flow.create_next_reads(event, request.get("message_config"))
        _decode(event, reads)
        if reads_response:
            request["handler_response"] = decode_raw(request.get("handler_response"))


def decode_raw(value: Any) -> Any:
    """``value`` itself, or its decoded JSON when it is still raw text."""
    return loads(value) if type(value) is Raw else value


def _decode(event: dict, keys: Any) -> None:
    """Decode ``keys`` of ``event`` in place (every key when ``keys`` is ``None``)."""
    for key in list(event.keys() if keys is None else keys):
        value = event.get(key)
        if type(value) is Raw:
            event[key] = loads(value)


def _validates_nested(schemas: Any) -> bool:
    """Whether ``schemas`` may check the nested event's config, which then must be decoded
    all through, values taken whole included. (An input schema decodes a raw input by
    itself: ``commands._validator``.)"""
    if not schemas:
        return False
    if not isinstance(schemas, dict):
        return True  # the command explains the bad shape; decode as before meanwhile
    return bool(schemas.get("config"))


@lru_cache(maxsize=256)
def _template_reads(task_config_json: bytes, whole_may_stay_raw: bool) -> Any:
    """``load_nested_reads`` of a task config, cached by its text: configs repeat."""
    reads = message_flow.load_nested_reads(
        loads(task_config_json), whole_may_stay_raw=whole_may_stay_raw
    )
    return None if reads is None else frozenset(reads)


def _has_inner_line_break(body: bytes) -> bool:
    """Whether ``body`` has a line break before its last byte (a request over several lines)."""
    first_newline = body.find(b"\n")
    return (first_newline != -1 and first_newline != len(body) - 1) or b"\r" in body


def _flattened(body: bytes) -> bytes:
    """``body`` with its line breaks turned into spaces, so raw parts answer on one line.

    Called once msgspec has parsed ``body`` as it came, which rejects a line break inside
    a string: only whitespace between tokens changes. One copy of the whole body, not a
    copy of each raw part and of its translation (peak memory stays near twice a one-line
    request's).
    """
    return body.translate(_LINE_BREAKS_TO_SPACES)


def _is_utf8(body: bytes) -> bool:
    """Whether ``body`` is UTF-8, checked piecewise so no big ``str`` is ever made."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    try:
        for start in range(0, len(view), _UTF8_CHUNK):
            decoder.decode(view[start : start + _UTF8_CHUNK])
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return False
    return True


def _not_utf8(command: str, body: bytes) -> ProtocolError:
    """The error for a request that is not UTF-8, naming the offset and the part."""
    try:
        bytes(body).decode("utf-8")
        reason = "it is not valid UTF-8"
    except UnicodeDecodeError as error:
        reason = utf8_problem(error)
    where = ""
    try:
        parts = _decode_parts(body)
    except (_DecodeError, UnicodeDecodeError):
        parts = None
    if parts is not None:
        named = [(f"event.{key}", value) for key, value in parts.event.items()] + [
            (name, getattr(parts, name))
            for name in ("context", "schemas", "handler_response", "message_config")
        ]
        for name, raw in named:
            try:
                codecs.decode(raw, "utf-8")
            except UnicodeDecodeError:
                where = f" in {name}"
                break
    return ProtocolError(
        f"{command}: the request{where} is not valid JSON text: {reason}; the protocol is "
        "UTF-8, so encode the request as UTF-8 (and binary data as base64 text)"
    )


def _parse_whole(command: str, body: bytes) -> Any:
    """Everything decoded; the command checks the request's shape as for any caller.

    In light mode (a sidecar before msgspec is needed) the standard library reads it;
    whatever it cannot read exactly goes to ``loads`` as before.
    """
    if jsonio.is_light():
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(command, body) from None
        try:
            return jsonio.loads_light(text)
        except jsonio.NeedsMsgspec:
            pass
    try:
        return loads(body)
    except ValueError as error:
        if not body.isascii() and not _is_utf8(body):
            raise _not_utf8(command, body) from None
        raise ProtocolError(f"{command}: the request is not valid JSON ({error})") from None
