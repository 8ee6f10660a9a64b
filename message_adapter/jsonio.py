"""JSON in and out, fast, lossless and always strict.

msgspec parses and writes JSON several times faster than the standard library and keeps
integers of any size exact. A few documents it refuses are read by slower fallbacks, so
that what JavaScript or Python clients can emit still round-trips:

* escaped lone surrogates (``"\\ud800"``, which JavaScript emits) are read, and written back
  escaped;
* numbers beyond the range of a 64-bit float (``1e400``) are kept exactly, as
  ``decimal.Decimal``, and written back as numbers (``1E+400``);
* ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON, are read and written as
  ``null`` (as JavaScript's ``JSON.stringify`` does).

Every output is strict JSON in UTF-8 (RFC 8259): what ``json.loads`` reads with NaN
rejected. Input must be UTF-8.

msgspec is imported on first use, not with this module: importing it (with
``typing_extensions``, ``inspect``, ``uuid``, ``decimal``) costs a sidecar's cold start tens of
milliseconds. A sidecar calls ``start_light()`` so that its first small requests are read
with ``loads_light`` (the standard library's ``json``) and answered by ``dumps`` through
it too, with the same bytes msgspec would write; the first request that needs msgspec
loads it, and from then on everything goes through msgspec.
"""

import json
from typing import Any

_INFINITY = float("inf")
_light = False


def _float_or_decimal(text: str) -> Any:
    """A float, or the exact ``Decimal`` when the literal is beyond a float's range."""
    value = float(text)
    if value == _INFINITY or value == -_INFINITY:
        from decimal import Decimal

        return Decimal(text)
    return value


def _load_msgspec() -> None:
    """Bind the msgspec codecs (once) and leave light mode for good."""
    global _msgspec, _decode, _encode, _decode_big_numbers, _DecodeError, _light
    import msgspec

    _msgspec = msgspec
    _DecodeError = msgspec.DecodeError
    _decode = msgspec.json.Decoder().decode
    _encode = msgspec.json.Encoder(decimal_format="number").encode
    _decode_big_numbers = msgspec.json.Decoder(float_hook=_float_or_decimal).decode
    _light = False


def _decode(data: Any) -> Any:  # rebound to msgspec's decoder by _load_msgspec
    _load_msgspec()
    return _decode(data)


def _encode(value: Any) -> bytes:  # rebound to msgspec's encoder by _load_msgspec
    _load_msgspec()
    return _encode(value)


def _decode_big_numbers(data: Any) -> Any:  # rebound by _load_msgspec
    _load_msgspec()
    return _decode_big_numbers(data)


class _DecodeError(Exception):
    """Stands for ``msgspec.DecodeError`` until msgspec is loaded (never raised)."""


def msgspec_module() -> Any:
    """The msgspec module, loaded on first call."""
    if not _msgspec_loaded():
        _load_msgspec()
    return _msgspec


def _msgspec_loaded() -> bool:
    return "_msgspec" in globals()


def start_light() -> None:
    """Read and write small documents with the standard library until msgspec is needed.

    Only for a process whose every encoded value comes from ``loads_light`` or from
    msgspec-backed ``loads`` (which ends light mode): ``loads_light`` refuses floats, the
    one kind of value the two libraries write differently (``1e-07`` against ``1e-7``).
    """
    global _light
    _light = not _msgspec_loaded()


def is_light() -> bool:
    """Whether small documents still go through the standard library (see ``start_light``)."""
    return _light


class NeedsMsgspec(ValueError):
    """``loads_light`` cannot read this document exactly; use ``loads``."""


def _refuse(text: str) -> Any:
    raise NeedsMsgspec(text)


_json_decode = json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse).decode
_json_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def loads_light(text: str) -> Any:
    """Parse ``text`` with the standard library, as ``loads`` would parse it.

    Raises ``NeedsMsgspec`` for anything the two parsers might read or write differently
    (floats, ``NaN``, malformed JSON, integers too long for ``int()``), so the caller can
    ask ``loads`` instead and get the same value, or the same error, as ever.
    """
    try:
        return _json_decode(text)
    except NeedsMsgspec:
        raise
    except ValueError as error:  # malformed, or an integer beyond int()'s digit limit
        raise NeedsMsgspec(str(error)) from None


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raises ``ValueError`` with the parser's reason.

    The reason for bytes that are not UTF-8 says so and gives the byte offset.
    """
    try:
        return _decode(data)
    except _DecodeError as fast_error:
        return _loads_slowly(data, fast_error)
    except UnicodeDecodeError as error:
        raise ValueError(utf8_problem(_in_document(data, error))) from None


def _loads_slowly(data: bytes | str, fast_error: Exception) -> Any:
    if "out of range" in str(fast_error):
        try:
            return _decode_big_numbers(data)
        except _DecodeError:
            pass
    if not isinstance(data, str):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(utf8_problem(error)) from None
    try:
        return json.loads(data, parse_float=_float_or_decimal)
    except ValueError:
        raise ValueError(str(fast_error)) from None


def _in_document(data: Any, error: UnicodeDecodeError) -> UnicodeDecodeError:
    """msgspec's error counts from the start of the string: count from the document's."""
    if not isinstance(data, str):
        try:
            bytes(data).decode("utf-8")
        except UnicodeDecodeError as located:
            return located
    return error


def utf8_problem(error: UnicodeDecodeError) -> str:
    """``error`` as a sentence: which byte, where, and that the protocol is UTF-8."""
    bad = error.object[error.start : error.start + 1].hex()
    return f"it is not valid UTF-8 (byte 0x{bad} at offset {error.start}: {error.reason})"


def dumps(value: Any) -> bytes:
    """Serialize compactly as strict JSON in UTF-8 (lone surrogates escaped as ``\\udXXX``).

    A value nested more deeply than the writer can follow raises ``MessageError``.
    """
    if _light:
        light = dumps_light(value)
        if light is not None:
            return light
    try:
        return _encode(value)
    except UnicodeEncodeError:
        pass
    except RecursionError:
        raise _too_deep() from None
    try:
        return _dumps_escaping(value)
    except RecursionError:
        raise _too_deep() from None


def dumps_light(value: Any) -> bytes | None:
    """``dumps`` through the standard library, for values read by ``loads_light`` (no
    floats): the same bytes msgspec writes, or ``None`` where only msgspec decides (lone
    surrogates, ``Decimal``, nesting too deep)."""
    try:
        return _json_encode(value).encode("utf-8")
    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):
        return None


def _too_deep() -> Exception:
    from message_adapter.errors import MessageError

    return MessageError(
        "the result nests objects and lists too deeply to be written as JSON; flatten it "
        "(outputs destinations and the values put there add up their depths)"
    )


def _dumps_escaping(value: Any) -> bytes:
    """``dumps`` for values holding lone surrogates: each part msgspec can write is written
    by msgspec (same rules: NaN is ``null``), the strings it cannot by the standard library."""
    try:
        return _encode(value)
    except UnicodeEncodeError:
        pass
    if isinstance(value, str):
        return json.dumps(value).encode("ascii")
    if isinstance(value, dict):
        items = [
            _dumps_escaping(_key(key)) + b":" + _dumps_escaping(item) for key, item in value.items()
        ]
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(_dumps_escaping(item) for item in value) + b"]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _key(key: Any) -> str:
    return key if isinstance(key, str) else _encode(key).decode("utf-8").strip('"')


def dumps_text(value: Any) -> str:
    """Compact JSON as ``str``: how templates render non-string values inline."""
    return dumps(value).decode("utf-8")


def dumps_pretty(value: Any) -> bytes:
    """``dumps`` indented by two spaces, for people to read (same rules, same values)."""
    compact = dumps(value)
    try:
        return msgspec_module().json.format(compact, indent=2)
    except _DecodeError:  # msgspec cannot read the escaped lone surrogates back
        out: list[bytes] = []
        _indent(value, b"\n", out)
        return b"".join(out)


def _indent(value: Any, newline: bytes, out: list[bytes]) -> None:
    inner = newline + b"  "
    if isinstance(value, dict) and value:
        out.append(b"{")
        for position, (key, item) in enumerate(value.items()):
            out.append((b"," if position else b"") + inner + dumps(_key(key)) + b": ")
            _indent(item, inner, out)
        out.append(newline + b"}")
    elif isinstance(value, (list, tuple)) and value:
        out.append(b"[")
        for position, item in enumerate(value):
            out.append((b"," if position else b"") + inner)
            _indent(item, inner, out)
        out.append(newline + b"]")
    else:
        out.append(dumps(value))
