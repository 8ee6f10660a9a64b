"""Protocol v2: a task's adapter work in two commands, the full message kept in between.

``beginTask`` does ``loadAndUpdateRemoteEvent`` and ``loadNestedEvent`` and answers only the
nested event and a handle; ``completeTask`` takes the handle and the task's response and
answers the next message. The full message never crosses the pipe, and the client never
parses it. Each step runs the v1 command on the very request a v1 client would send (the
full message spliced in as the JSON text v1 would have answered), so the answers are
byte for byte those of v1.

At most one session is kept, the client's in flight: a new ``beginTask`` replaces it, and
``completeTask`` and ``cancelTask`` with its handle free it, whether they succeed or fail.
A handle that is not the current one is a ``ProtocolError`` (and leaves the current one be).
"""

import contextlib
import os
from collections.abc import Callable
from typing import Any

from message_adapter import __version__, jsonio
from message_adapter.errors import MessageError, ProtocolError
from message_adapter.sidecar.request_parsing import parse_request

PROTOCOL_VERSION = 2
SESSION_COMMANDS = ("hello", "beginTask", "completeTask", "cancelTask")
_HANDLE_PREFIX = b'{"handle":"'

Run = Callable[[str, Any], Any]
RunJson = Callable[[str, bytes], Any]


class Sessions:
    """The v2 commands of one sidecar, over the v1 commands' ``run`` and ``run_json``."""

    def __init__(self, run: Run, run_json: RunJson) -> None:
        self._run = run
        self._run_json = run_json
        self._handle: str | None = None
        self._full: bytes | None = None
        self._count = 0
        self._token = os.urandom(4).hex()

    def run(self, command: str, body: bytes) -> Any:
        """Answer one v2 command (``command`` is one of ``SESSION_COMMANDS``)."""
        if command == "beginTask":
            return self.begin(body)
        if command == "completeTask":
            return self.complete(body)
        if command == "cancelTask":
            return self.cancel(body)
        return {"protocol": PROTOCOL_VERSION, "version": __version__}

    def begin(self, body: bytes) -> dict:
        """``{"handle", "nestedEvent"}`` for a ``loadAndUpdateRemoteEvent`` request."""
        self._handle = self._full = None
        with _step("loadAndUpdateRemoteEvent"):
            request = parse_request("loadAndUpdateRemoteEvent", body)
            full = jsonio.dumps(self._run("loadAndUpdateRemoteEvent", request))
        with _step("loadNestedEvent"):
            nested = self._run_json("loadNestedEvent", b'{"event":' + full + _tail(request) + b"}")
        self._count += 1
        self._handle, self._full = f"{self._count}-{self._token}", full
        return {"handle": self._handle, "nestedEvent": nested}

    def complete(self, body: bytes) -> Any:
        """The next message: ``createNextEvent`` on the session's full message."""
        handle, rest = _split_handle(body, "completeTask")
        full = self._take(handle, "completeTask")
        with _step("createNextEvent"):
            return self._run_json("createNextEvent", b'{"event":' + full + rest)

    def cancel(self, body: bytes) -> dict:
        """Free the session (the task failed, so there is no next message): ``{}``."""
        handle, _ = _split_handle(body, "cancelTask")
        self._take(handle, "cancelTask")
        return {}

    def _take(self, handle: str, command: str) -> bytes:
        current, full = self._handle, self._full
        if current is None or handle != current or full is None:
            raise ProtocolError(
                f"{command}: {handle!r} is not the handle of the task in flight "
                + (f"({current!r})" if current else "(there is none)")
                + "; a handle is good once, until the next beginTask: start again with beginTask"
            )
        self._handle = self._full = None
        return full


class _step:
    """Mark an error raised inside with the v1 command it came from (``describe`` sends it)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, Exception):
            with contextlib.suppress(AttributeError):  # an exception type without __dict__
                error.adapter_step = self.command  # type: ignore[attr-defined]


def _tail(request: dict) -> bytes:
    """The members after ``event`` of the loadNestedEvent request a v1 client sends: the
    same ``schemas`` and ``context`` (the size of the request decides how it is parsed)."""
    return b"".join(
        b',"' + key.encode() + b'":' + jsonio.dumps(request[key])
        for key in ("schemas", "context")
        if key in request
    )


def _split_handle(body: bytes, command: str) -> tuple[str, bytes]:
    """``(handle, the rest of the request after it)``, the rest starting with ``,`` or ``}``.

    Clients write the handle first (``{"handle":"...",...}``), which is split off without
    parsing the response that follows; any other order is parsed.
    """
    if body.startswith(_HANDLE_PREFIX):
        end = body.find(b'"', len(_HANDLE_PREFIX))
        if end != -1 and body[end + 1 : end + 2] in (b",", b"}"):
            handle = body[len(_HANDLE_PREFIX) : end]
            if b"\\" not in handle:
                return handle.decode("utf-8", errors="replace"), body[end + 1 :]
    try:
        request = jsonio.loads(body)
    except ValueError as error:
        raise ProtocolError(f"{command}: the request is not valid JSON ({error})") from None
    if not isinstance(request, dict) or not isinstance(request.get("handle"), str):
        raise MessageError(
            f'{command} expects a JSON object with the "handle" string that beginTask answered '
            '(e.g. {"handle": "1-0a1b2c3d", "handler_response": {...}})'
        )
    rest = b"".join(
        b"," + jsonio.dumps(key) + b":" + jsonio.dumps(value)
        for key, value in request.items()
        if key != "handle"
    )
    return request["handle"], rest + b"}"
