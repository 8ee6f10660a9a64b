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
"""

from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder(decimal_format="number").encode
_INFINITY = float("inf")


def _float_or_decimal(text: str) -> Any:
    """A float, or the exact ``Decimal`` when the literal is beyond a float's range."""
    value = float(text)
    if value == _INFINITY or value == -_INFINITY:
        from decimal import Decimal

        return Decimal(text)
    return value


_decode_big_numbers = msgspec.json.Decoder(float_hook=_float_or_decimal).decode


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raises ``ValueError`` with the parser's reason.

    The reason for bytes that are not UTF-8 says so and gives the byte offset.
    """
    try:
        return _decode(data)
    except msgspec.DecodeError as fast_error:
        return _loads_slowly(data, fast_error)
    except UnicodeDecodeError as error:
        raise ValueError(utf8_problem(_in_document(data, error))) from None


def _loads_slowly(data: bytes | str, fast_error: Exception) -> Any:
    if "out of range" in str(fast_error):
        try:
            return _decode_big_numbers(data)
        except msgspec.DecodeError:
            pass
    import json

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
        import json

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
        return msgspec.json.format(compact, indent=2)
    except msgspec.DecodeError:  # msgspec cannot read the escaped lone surrogates back
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
