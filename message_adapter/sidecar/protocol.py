"""The stream protocol: framing and dispatch, nothing about Cumulus messages.

Requests are ``COMMAND\\n<JSON, may span lines>\\n<EOC>\\n``; each is answered with
``<JSON on one line>\\n<EOC>\\n``; ``<EXIT>`` ends the stream. With structured errors on,
a failed command is answered with ``<ERROR>\\n<JSON>\\n<EOC>\\n`` and the stream goes on;
otherwise the error is written to stderr and the process exits 1, as the historic adapter
does. See protocol.md.
"""

import io
import re
from collections.abc import Callable
from typing import Any, BinaryIO

from message_adapter.errors import ProtocolError
from message_adapter.jsonio import dumps

END_OF_COMMAND = b"<EOC>"
EXIT = b"<EXIT>"
ERROR = b"<ERROR>"
_SPACE = b" \t\n\r\x0b\x0c"
_END_LINE = re.compile(rb"[ \t\n\r\x0b\x0c]*<EOC>[ \t\n\r\x0b\x0c]*\Z")
_STARTS_END_LINE = frozenset(_SPACE + b"<")

Runner = Callable[[str, bytes], Any]
Describe = Callable[[BaseException], dict]


def read_frame(stdin: BinaryIO) -> tuple[str, bytes] | None:
    """The next ``(command, body)``, or ``None`` at ``<EXIT>`` or end of input between frames."""
    while True:
        line = stdin.readline()
        if not line:
            return None
        command = line.strip()
        if command:
            break
    if command == EXIT:
        return None
    try:
        return command.decode("utf-8", errors="replace"), _read_body(stdin)
    except _EndOfInput:
        raise ProtocolError(
            f"input ended inside a {command.decode(errors='replace')!r} frame: "
            "every request must end with a line '<EOC>'"
        ) from None


def _read_body(stdin: BinaryIO) -> bytes:
    first = stdin.readline()
    if _is_end(first):
        return b""
    line = stdin.readline()
    if _is_end(line):
        return first
    # Several lines: gather them in one growing buffer, whose bytes getvalue() hands over
    # without a copy (a list of a million short lines would cost several times the body).
    buffer = io.BytesIO()
    buffer.write(first)
    del first
    while not _is_end(line):
        buffer.write(line)
        line = stdin.readline()
    return buffer.getvalue()


def _is_end(line: bytes) -> bool:
    """Whether ``line`` is ``<EOC>`` with any whitespace around it; raises at end of input.

    A short line is simply stripped; a long one is looked at only when it starts with
    whitespace or ``<``, which a one-line JSON request never does, so the hot path pays
    one length check and one byte test per line.
    """
    if not line:
        raise _EndOfInput
    if len(line) < 16:
        return line.strip() == END_OF_COMMAND
    return line[0] in _STARTS_END_LINE and _END_LINE.match(line) is not None


class _EndOfInput(Exception):
    """Input ended inside a frame."""


def serve(
    stdin: BinaryIO,
    stdout: BinaryIO,
    run: Runner,
    describe: Describe,
    structured_errors: bool = False,
) -> None:
    """Answer frames until ``<EXIT>`` or end of input.

    ``run(command, body)`` parses the request and does the work; ``describe(error)`` turns
    a failure into ``{"name", "message"}``. Without ``structured_errors`` a failure
    propagates (the caller reports it and exits 1); with it, the failure is answered as an
    error frame.
    """
    write = stdout.write
    flush = stdout.flush
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        command, body = frame
        frame = None
        try:
            answer = dumps(run(command, body))
        except Exception as error:
            if not structured_errors:
                raise
            write(ERROR + b"\n" + dumps({**describe(error), "command": command}) + b"\n<EOC>\n")
        else:
            write(answer)
            del answer
            write(b"\n<EOC>\n")
        flush()
        # Freeing a large request takes a while; doing it after the answer is sent lets the
        # client work meanwhile.
        del body
