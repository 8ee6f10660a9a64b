"""JSON in and out, fast and lossless.

msgspec parses and writes JSON several times faster than the standard library and keeps
integers of any size exact. It rejects escaped lone surrogates (``"\\ud800"``, which
JavaScript emits) and cannot encode them back, so those rare documents fall back to the
standard library, which handles both.
"""

from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def loads(data: bytes | str) -> Any:
    """Parse one JSON document; raises ``ValueError`` with the parser's reason."""
    try:
        return _decode(data)
    except msgspec.DecodeError as fast_error:
        import json

        try:
            return json.loads(data)
        except ValueError:
            raise ValueError(str(fast_error)) from None


def dumps(value: Any) -> bytes:
    """Serialize compactly as UTF-8 (lone surrogates escaped as ``\\udXXX``)."""
    try:
        return _encode(value)
    except UnicodeEncodeError:
        import json

        return json.dumps(value, separators=(",", ":")).encode("ascii")


def dumps_text(value: Any) -> str:
    """Compact JSON as ``str``: how templates render non-string values inline."""
    return dumps(value).decode("utf-8")
