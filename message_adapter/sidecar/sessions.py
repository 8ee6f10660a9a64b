"""Protocol v2: a task's adapter work in two commands, the full message kept in between.

``beginTask`` does ``loadAndUpdateRemoteEvent`` and ``loadNestedEvent`` and answers only the
nested event and a handle; ``completeTask`` takes the handle and the task's response and
answers the next message. The full message never crosses the pipe, and the client never
parses it. The sidecar keeps it as ``loadAndUpdateRemoteEvent`` left it (the parts no rule
read still raw JSON text) and hands it to the next step as the v1 request parser would
have after a round trip through JSON: each step decodes what it reads
(``request_parsing.decode_reads``), so the answers are byte for byte those of v1 without
writing the full message out and parsing it again.

At most one session is kept, the client's in flight: a new ``beginTask`` replaces it, and
``completeTask`` and ``cancelTask`` with its handle free it, whether they succeed or fail.
A handle that is not the current one is a ``ProtocolError`` (and leaves the current one be).

A client that keeps what it sends may ask that answers refer to it instead of writing it
back: with ``"referToPayload": true`` a nested event whose ``input`` is the ``payload`` of
the message sent, untouched, says so (the client decodes its own text of it); with
``"referToResponse": true`` a next message whose ``payload`` is the task's response says so
(the client puts in the response it kept).
"""

import contextlib
import os
from collections.abc import Callable
from typing import Any

from message_adapter import __version__
from message_adapter.errors import MessageError, ProtocolError
from message_adapter.jsonio import dumps
from message_adapter.sidecar import request_parsing
from message_adapter.sidecar.request_parsing import decode_reads, parse_completion, parse_request

PROTOCOL_VERSION = 2
SESSION_COMMANDS = ("hello", "beginTask", "completeTask", "cancelTask")
FEATURES = ("referToPayload", "referToResponse")
"""Optional members of v2 requests this sidecar understands, announced by ``hello``."""

Run = Callable[[str, Any], Any]


class Sessions:
    """The v2 commands of one sidecar, over the v1 commands' ``run`` (on request objects)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._handle: str | None = None
        self._full: dict | None = None
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
        return {"protocol": PROTOCOL_VERSION, "version": __version__, "features": list(FEATURES)}

    def begin(self, body: bytes) -> dict:
        """``{"handle", "nestedEvent"}`` for a ``loadAndUpdateRemoteEvent`` request (and
        ``inputIsPayload`` when the request asks ``referToPayload``)."""
        self._handle = self._full = None
        with _step("loadAndUpdateRemoteEvent"):
            request = parse_request("loadAndUpdateRemoteEvent", body)
            refer = _flag(request, "referToPayload", "beginTask")
            event = request.get("event")
            sent = event.get("payload", _NOTHING) if isinstance(event, dict) else _NOTHING
            full = self._run("loadAndUpdateRemoteEvent", request)
        with _step("loadNestedEvent"):
            nested_request = {"event": dict(full)}  # decoding its reads leaves ``full`` be
            for key in ("schemas", "context"):
                if key in request:
                    nested_request[key] = request[key]
            decode_reads("loadNestedEvent", nested_request)
            nested = self._run("loadNestedEvent", nested_request)
        self._count += 1
        self._handle, self._full = f"{self._count}-{self._token}", full
        if not refer:
            return {"handle": self._handle, "nestedEvent": nested}
        refers = sent is not _NOTHING and nested.get("input") is sent
        if refers:
            nested = {**nested, "input": None}
        return {"handle": self._handle, "nestedEvent": nested, "inputIsPayload": refers}

    def complete(self, body: bytes) -> Any:
        """The next message: ``createNextEvent`` on the session's full message (wrapped,
        its payload possibly referred to, when the request asks ``referToResponse``)."""
        request = _with_handle(parse_completion("completeTask", body), "completeTask")
        request["event"] = self._take(request.pop("handle"), "completeTask")
        refer = _flag(request, "referToResponse", "completeTask")
        response = request.get("handler_response")
        with _step("createNextEvent"):
            decode_reads("createNextEvent", request)
            message = self._run("createNextEvent", request)
        if not refer:
            return message
        return _referring(message, response)

    def cancel(self, body: bytes) -> dict:
        """Free the session (the task failed, so there is no next message): ``{}``."""
        request = _with_handle(parse_completion("cancelTask", body), "cancelTask")
        self._take(request["handle"], "cancelTask")
        return {}

    def _take(self, handle: str, command: str) -> dict:
        current, full = self._handle, self._full
        if current is None or handle != current or full is None:
            raise ProtocolError(
                f"{command}: {handle!r} is not the handle of the task in flight "
                + (f"({current!r})" if current else "(there is none)")
                + "; a handle is good once, until the next beginTask: start again with beginTask"
            )
        self._handle = self._full = None
        return full


_NOTHING = object()


def _flag(request: dict, name: str, command: str) -> bool:
    """Take the optional boolean member ``name`` out of ``request``."""
    value = request.pop(name, None)
    if value is not None and type(value) is not bool:  # 1 == True, but 1 is no flag
        raise MessageError(f"{command}: {name} must be true or false, got {value!r}")
    return bool(value)


def _referring(message: Any, response: Any) -> dict:
    """``{"nextEvent", "payloadIsResponse", "size"}``: the next message, with ``payload``
    written as ``null`` when it is the task's response as the client sent it (the client
    puts its own in), and the size in bytes of the message as v1 would write it."""
    refers = isinstance(message, dict) and "payload" in message and message["payload"] is response
    if refers:
        message = dict(message)
        message["payload"] = None
    encoded = dumps(message)
    size = len(encoded)
    if refers:
        raw = type(response) is request_parsing.Raw
        size += (len(response) if raw else len(dumps(response))) - len(b"null")
    next_event = request_parsing.Raw(encoded) if request_parsing.raw_available() else message
    return {"nextEvent": next_event, "payloadIsResponse": refers, "size": size}


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


def _with_handle(request: Any, command: str) -> dict:
    """``request`` when it is an object with a ``handle`` string, else a ``MessageError``."""
    if not isinstance(request, dict) or not isinstance(request.get("handle"), str):
        raise MessageError(
            f'{command} expects a JSON object with the "handle" string that beginTask answered '
            '(e.g. {"handle": "1-0a1b2c3d", "handler_response": {...}})'
        )
    return request
