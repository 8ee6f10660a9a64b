"""A warm adapter sidecar: one ``stream --structured-errors`` child per Python process.

The child is started on first use and kept for every later invocation (a warm Lambda
reuses it), commands are serialized with a lock, a dead child is replaced on the next
call, and the child is ended when the interpreter exits. Failed commands come back as
``<ERROR>`` frames (protocol.md) and are raised as ``MessageAdapterError``.

With a Lambda context, each command must be answered before the invocation's deadline
(``get_remaining_time_in_millis()`` less a margin, ``CUMULUS_MESSAGE_ADAPTER_DEADLINE_MARGIN_MS``,
default 500, but never more than half the time left): a child that misses it is killed,
the command raises ``AdapterTimeoutError``, and the next call starts a new child.

Which adapter is started (``adapter_command``):

1. ``CUMULUS_MESSAGE_ADAPTER_DIR`` set (a bundle, e.g. a Lambda layer at ``/opt``):
   ``python -I -S DIR stream`` with this interpreter when the bundle was built for this
   Python version (its ``cma-bundle.json`` says which), else ``DIR/cma_bin/cma stream``.
   A directory without ``cma-bundle.json`` is the historic adapter: ``python DIR stream``
   (or its ``cma_bin/cma``), without structured errors.
2. Else the ``cumulus-message-adapter`` console script beside this interpreter or on PATH.
3. Else ``python -m message_adapter`` when the package is importable here.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import gc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None

from run_cumulus_task.errors import (
    AdapterProcessError,
    AdapterTimeoutError,
    MessageAdapterError,
    adapter_error,
)

STREAM_ARGS = ("stream", "--structured-errors")
LARGE_DOCUMENT = 64 * 1024
PIPE_CAPACITY = 1 << 20
"""Bytes the pipes to and from the child hold (and our buffers on them): a 1.7 MB message
crosses in two hand-overs instead of 27 (Linux's default pipe holds 64 KiB)."""
SCRIPT = "cumulus-message-adapter"
DEADLINE_MARGIN_MS = 500
MARGIN_VARIABLE = "CUMULUS_MESSAGE_ADAPTER_DEADLINE_MARGIN_MS"
PROTOCOL_VARIABLE = "CUMULUS_MESSAGE_ADAPTER_PROTOCOL"
"""``1`` keeps the client on protocol v1 (three commands) even with a sidecar that speaks v2."""

# ---- JSON: msgspec when installed (several times faster), else the standard library ------

try:
    import msgspec

    _encoder = msgspec.json.Encoder(decimal_format="number")  # as the adapter
    _fast_encode = _encoder.encode
    _fast_encode_into = _encoder.encode_into
    _fast_decode = msgspec.json.Decoder().decode
except ImportError:  # pragma: no cover - depends on the environment
    _fast_encode = _fast_encode_into = _fast_decode = None

KEPT_BUFFER_BYTES = 32 * 1024 * 1024
"""Largest request-building buffer a thread keeps for its next invocation."""
_buffers = threading.local()


def encode(value: Any) -> bytes:
    """Compact JSON bytes on one line; ``TypeError`` for values JSON cannot hold."""
    if _fast_encode is not None:
        try:
            return _fast_encode(value)
        except (TypeError, UnicodeEncodeError, OverflowError):
            pass  # the standard library decides (and explains) the hard cases
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_number).encode(
            "utf-8"
        )
    except UnicodeEncodeError:  # lone surrogates: escape them
        return json.dumps(value, separators=(",", ":"), default=_number).encode("ascii")


def encode_reusing(value: Any, slot: int) -> bytes | memoryview:
    """``encode(value)``, written into this thread's buffer number ``slot`` (0 to 2), kept
    from one invocation to the next: a message-sized buffer made afresh each time costs a
    page fault every 4 KiB, about 1 ms a megabyte. The view is good until the thread's next
    call with the same slot."""
    if _fast_encode_into is None:
        return encode(value)
    kept = getattr(_buffers, "kept", None)
    if kept is None:
        kept = _buffers.kept = [bytearray(), bytearray(), bytearray()]
    buffer = kept[slot]
    try:
        try:
            _fast_encode_into(value, buffer)
        except BufferError:  # a view of the last request lives on (in an error's traceback)
            buffer = kept[slot] = bytearray()
            _fast_encode_into(value, buffer)
    except (TypeError, UnicodeEncodeError, OverflowError):
        return encode(value)
    if len(buffer) > KEPT_BUFFER_BYTES:
        kept[slot] = bytearray()  # this one goes once the view is done with
    return memoryview(buffer)


def encode_message(message: Any) -> tuple[tuple[bytes | memoryview, ...], Any]:
    """``encode(message)`` in pieces, and the piece that is its ``payload`` (``None`` when
    it is not an object with one): the JSON a sidecar may answer ``inputIsPayload`` for,
    to be decoded here instead of crossing the pipe again."""
    if _fast_encode_into is None or type(message) is not dict or "payload" not in message:
        return (encode_reusing(message, 0),), None
    keys = list(message)
    at = keys.index("payload")
    try:
        head = _fast_encode({key: message[key] for key in keys[:at]})
        tail = _fast_encode({key: message[key] for key in keys[at + 1 :]})
    except (TypeError, UnicodeEncodeError, OverflowError):
        return (encode_reusing(message, 0),), None
    payload = encode_reusing(message["payload"], 2)
    return (
        head[:-1] + (b',"payload":' if at else b'"payload":'),
        payload,
        b"}" if len(tail) == 2 else b"," + tail[1:],
    ), payload


def _number(value: Any) -> Any:
    """A finite ``Decimal`` for the standard library: exact when whole, else a float."""
    import decimal

    if isinstance(value, decimal.Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def decode(data: bytes | memoryview) -> Any:
    """Parse one JSON document (lone-surrogate escapes included).

    A large document makes many containers at once, which would trigger the cyclic
    garbage collector again and again (doubling the parse time); it is paused meanwhile.
    """
    if len(data) < LARGE_DOCUMENT:
        return _decode(data)
    paused = gc.isenabled()
    gc.disable()
    try:
        return _decode(data)
    finally:
        if paused:
            gc.enable()


def _decode(data: bytes | memoryview) -> Any:
    if _fast_decode is not None:
        try:
            return _fast_decode(data)
        except msgspec.DecodeError:
            pass
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)


# ---- finding the adapter ------------------------------------------------------------------


def adapter_command(environ: os._Environ | dict | None = None) -> list[str]:
    """The command line of the sidecar to start, per the rules in the module docstring."""
    env = os.environ if environ is None else environ
    directory = env.get("CUMULUS_MESSAGE_ADAPTER_DIR")
    if directory:
        return list(_bundle_command(directory, sys.executable))
    beside = Path(sys.executable).parent / SCRIPT
    script = str(beside) if os.access(beside, os.X_OK) else shutil.which(SCRIPT)
    if script:
        return [script, *STREAM_ARGS]
    if importlib.util.find_spec("message_adapter") is not None:
        return [sys.executable, "-m", "message_adapter", *STREAM_ARGS]
    raise AdapterProcessError(
        "no Cumulus Message Adapter found: set CUMULUS_MESSAGE_ADAPTER_DIR to a bundle "
        "directory (e.g. /opt for the layer), or install the cumulus-message-adapter "
        "package so its console script is on PATH",
        "AdapterNotFound",
    )


@lru_cache(maxsize=8)
def _bundle_command(directory: str, python: str) -> tuple[str, ...]:
    root = Path(directory)
    manifest = _manifest(root)
    # Without cma-bundle.json this is the historic adapter: it knows no --structured-errors
    # (its errors end the process, raised as AdapterProcessError) and may rely on the
    # runtime's site-packages.
    ours = manifest is not None
    args = STREAM_ARGS if ours else ("stream",)
    built_for = manifest.get("python") if ours else None
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if (root / "__main__.py").is_file() and built_for in (None, here):
        # -I -S: the bundle is self-contained; nothing from this interpreter's site-packages
        # or PYTHON* variables may shadow what it vendors.
        return (python, *(("-I", "-S") if ours else ()), str(root), *args)
    executable = root / "cma_bin" / "cma"
    if os.access(executable, os.X_OK):
        return (str(executable), *args)
    if not root.is_dir():
        problem = "does not exist"
    elif built_for not in (None, here):
        problem = (
            f"was built for Python {built_for} (this is {here}) and has no cma_bin/cma executable"
        )
    else:
        problem = "holds neither __main__.py nor cma_bin/cma"
    raise AdapterProcessError(
        f"CUMULUS_MESSAGE_ADAPTER_DIR={directory} {problem}; point it at a directory made "
        "by `cumulus-message-adapter bundle`",
        "AdapterNotFound",
    )


def _manifest(root: Path) -> dict | None:
    try:
        manifest = json.loads((root / "cma-bundle.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


# ---- the sidecar ----------------------------------------------------------------------------


class Sidecar:
    """One adapter child process, answering one command at a time."""

    def __init__(self, command: list[str]) -> None:
        self.command = list(command)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._stderr_thread: threading.Thread | None = None
        self._watchdog = _Watchdog()
        self._reader: _FrameReader | None = None
        self._protocol: int | None = None
        self._features: frozenset[str] = frozenset()
        self._in_session = False

    @property
    def pid(self) -> int | None:
        """The child's process id, or ``None`` when none is running."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def protocol(self) -> int | None:
        """The protocol version the running child speaks, once asked (``None`` before)."""
        return self._protocol

    @property
    def features(self) -> frozenset[str]:
        """The optional v2 members the running child understands (its ``hello`` says)."""
        return self._features

    def start(self) -> None:
        """Start the child now (to keep the spawn out of the first invocation)."""
        with self._lock:
            self._ensure()

    def call(
        self,
        command: str,
        request: bytes | tuple[bytes | memoryview, ...],
        timeout: float | None = None,
        borrow: bool = False,
    ) -> Any:
        """Send one request (compact JSON bytes, or a tuple of the pieces that make it up,
        written one after the other so a large message is never copied into a bigger
        buffer); return the answer's JSON bytes. With ``borrow``, a view of them in the
        reader's buffer instead, good until the next call (no copy of a large answer).

        With ``timeout`` (seconds), a child that has not answered by then is killed and
        ``AdapterTimeoutError`` is raised; the next call starts a new child.
        """
        with self._lock:
            process = self._ensure()
            if timeout is not None:
                self._watchdog.arm(process, time.monotonic() + timeout)
            try:
                stdin = process.stdin
                stdin.write(command.encode() + b"\n")
                for piece in (request,) if isinstance(request, bytes) else request:
                    stdin.write(piece)  # a large one goes straight to the pipe
                stdin.write(b"\n<EOC>\n")
                stdin.flush()
                reader = self._reader
                if reader is None or reader.process is not process:
                    reader = self._reader = _FrameReader(process)
                reader.next_frame()
                line = reader.readline()
                failed = len(line) < 10 and bytes(line).rstrip(b"\r\n") == b"<ERROR>"
                if failed:
                    line = reader.readline()
                end = reader.readline()
            except OSError:
                end = b""  # a broken pipe: the child is gone; explained below
            except BaseException:
                # Interrupted mid-frame: the stream is out of step, the child cannot be reused.
                self._watchdog.disarm()
                self._process = None
                process.kill()
                self._reap(process)
                raise
            if timeout is not None and self._watchdog.disarm():
                raise self._timed_out(command, timeout)
            if bytes(end).strip() != b"<EOC>":
                raise self._died(command)
            if failed:
                raise self._frame_error(bytes(line), command)
            return line if borrow else bytes(line)

    def open_session(self, call: Callable[[str, Any], bytes]) -> bool:
        """Whether this invocation may use the v2 session commands (then call
        ``close_session`` when done): the child speaks v2 and no other thread holds the
        one session it keeps. ``call`` (``call`` or ``call_within``'s) asks it on first use.
        """
        if os.environ.get(PROTOCOL_VARIABLE, "").strip() == "1":
            return False
        if self._protocol is None:
            self._protocol = self._ask_protocol(call)
        with self._lock:
            if self._protocol < 2 or self._in_session:
                return False
            self._in_session = True
            return True

    def close_session(self) -> None:
        """The invocation that opened a session is done with it."""
        self._in_session = False

    def _ask_protocol(self, call: Callable[[str, Any], bytes]) -> int:
        """1 or 2: a ``hello`` answer, or 1 when the child does not know the command.

        Only a child started with ``--structured-errors`` (ours) is asked: the historic
        adapter ends its process on an unknown command.
        """
        if "--structured-errors" not in self.command:
            return 1
        try:
            answer = decode(call("hello", b"{}"))
        except MessageAdapterError as error:
            if isinstance(error, AdapterTimeoutError):
                raise
            return 1
        if not isinstance(answer, dict):
            return 1
        features = answer.get("features")
        if isinstance(features, list):
            self._features = frozenset(name for name in features if isinstance(name, str))
        version = answer.get("protocol")
        return version if isinstance(version, int) and version >= 1 else 1

    def call_within(self, context: Any) -> Callable[..., Any]:
        """``call`` bounded by the invocation's deadline that ``context`` tells, if any.

        The time left is read from ``context.get_remaining_time_in_millis()`` at each call
        (as the Lambda runtime's context offers); without it, calls have no deadline.
        """
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if not callable(remaining):
            return self.call
        call = self.call

        def bounded(command: str, request: Any, borrow: bool = False) -> Any:
            return call(command, request, command_timeout(remaining()), borrow)

        return bounded

    def close(self) -> None:
        """End the child: ``<EXIT>``, then SIGTERM, then SIGKILL if it lingers."""
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            try:
                process.stdin.write(b"<EXIT>\n")
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()

    def forget(self) -> None:
        """Drop the child without touching it (in a forked child process)."""
        self._lock = threading.Lock()
        self._process = None
        self._watchdog = _Watchdog()

    def _ensure(self) -> subprocess.Popen:
        process = self._process
        if process is not None and process.poll() is None:
            return process
        if process is not None:
            self._reap(process)
        self._stderr_tail.clear()
        self._protocol = None  # a new child: ask again
        self._features = frozenset()
        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                bufsize=PIPE_CAPACITY,
            )
        except OSError as error:
            raise AdapterProcessError(
                f"cannot start the message adapter {' '.join(self.command)!r}: {error}",
                "AdapterNotFound",
            ) from None
        self._process = process
        _enlarge_pipes(process)
        self._stderr_thread = threading.Thread(
            target=_relay_stderr,
            args=(process.stderr, self._stderr_tail),
            name="cma-sidecar-stderr",
            daemon=True,
        )
        self._stderr_thread.start()
        return process

    def _frame_error(self, detail: bytes, command: str) -> MessageAdapterError:
        try:
            info = decode(detail)
            step = info.get("step")
            command = step if isinstance(step, str) else _v1_name(command)
            return adapter_error(str(info.get("name")), str(info.get("message")), command)
        except (ValueError, AttributeError):
            return MessageAdapterError(detail.decode(errors="replace").strip(), command=command)

    def _died(self, command: str) -> AdapterProcessError:
        command = _v1_name(command)
        process, self._process = self._process, None
        status = self._reap(process) if process is not None else None
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=1)
        tail = " | ".join(line.strip() for line in self._stderr_tail if line.strip())
        return AdapterProcessError(
            f"the message adapter ({' '.join(self.command)}) stopped while answering "
            f"{command} (exit status {status})"
            + (f": {tail}" if tail else "; it wrote nothing on stderr"),
            "AdapterDied",
            command,
        )

    def _timed_out(self, command: str, timeout: float) -> AdapterTimeoutError:
        command = _v1_name(command)
        process, self._process = self._process, None
        if process is not None:
            self._reap(process)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=1)
        tail = " | ".join(line.strip() for line in self._stderr_tail if line.strip())
        return AdapterTimeoutError(
            f"the message adapter ({' '.join(self.command)}) did not answer {command} within "
            f"{timeout:.3g} s (the invocation's remaining time less {MARGIN_VARIABLE}); it "
            "was killed and the next call starts a new one"
            + (f"; its stderr: {tail}" if tail else ""),
            "AdapterTimeout",
            command,
        )

    @staticmethod
    def _reap(process: subprocess.Popen) -> int | None:
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            return process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


class _FrameReader:
    """Reads the child's answer frames from its stdout into one buffer kept from call to
    call, as lines (``bytes`` views). A message-sized answer read through a fresh buffer
    each time (as ``readline`` does) costs a page fault every 4 KiB and a copy; here the
    kernel writes into pages already in use."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self._fd = process.stdout.fileno()  # type: ignore[union-attr]
        self._buffer = bytearray(PIPE_CAPACITY)
        self._start = self._end = 0

    def next_frame(self) -> None:
        """Start a new frame: what is left of the last one moves to the front (views of
        the last frame's lines are overwritten from here on)."""
        left = self._end - self._start
        if left and self._start:
            self._buffer[:left] = self._buffer[self._start : self._end]
        elif not left and len(self._buffer) > KEPT_BUFFER_BYTES:
            self._buffer = bytearray(PIPE_CAPACITY)  # the last answer was a rare giant
        self._start, self._end = 0, left

    def readline(self) -> memoryview:
        """The next line, its line break included; what is left at end of output."""
        searched = self._start
        while True:
            found = self._buffer.find(b"\n", searched, self._end)
            if found != -1:
                return self._take(found + 1)
            searched = self._end
            if self._end == len(self._buffer):
                grown = bytearray(2 * len(self._buffer))
                grown[: self._end] = self._buffer[: self._end]
                self._buffer = grown  # views already handed out keep the old one alive
            with memoryview(self._buffer) as view:
                count = os.readv(self._fd, [view[self._end :]])
            if count == 0:
                return self._take(self._end)
            self._end += count

    def _take(self, end: int) -> memoryview:
        line = memoryview(self._buffer)[self._start : end]
        self._start = end
        return line


def _enlarge_pipes(process: subprocess.Popen) -> None:
    """Give the child's stdin and stdout pipes ``PIPE_CAPACITY`` where Linux allows it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(stream.fileno(), set_size, PIPE_CAPACITY)


_V1_NAMES = {"beginTask": "loadAndUpdateRemoteEvent", "completeTask": "createNextEvent"}


def _v1_name(command: str) -> str:
    """The v1 command an error names (as the published client's errors do)."""
    return _V1_NAMES.get(command, command)


def command_timeout(remaining_ms: Any, environ: Any = None) -> float | None:
    """Seconds a command may take when ``remaining_ms`` are left in the invocation.

    The margin (``CUMULUS_MESSAGE_ADAPTER_DEADLINE_MARGIN_MS``, default 500) leaves time to
    report the failure before Lambda ends the invocation, but never takes more than half of
    what is left. ``None`` (no deadline) when the time left is unknown or not positive.
    """
    try:
        remaining = float(remaining_ms)
    except (TypeError, ValueError):
        return None
    if not 0 < remaining < float("inf"):
        return None
    env = os.environ if environ is None else environ
    text = env.get(MARGIN_VARIABLE)
    try:
        margin = float(text) if text else DEADLINE_MARGIN_MS
    except ValueError:
        raise ValueError(
            f"{MARGIN_VARIABLE}={text!r} is not a number of milliseconds; unset it for the "
            f"default ({DEADLINE_MARGIN_MS})"
        ) from None
    return max(remaining - margin, remaining / 2) / 1000


class _Watchdog:
    """Kills a child that has not answered by its deadline: one thread per sidecar.

    ``arm`` and ``disarm`` cost a lock each; the thread sleeps until the earliest deadline
    it knows of and is woken only when an earlier one is armed, so a warm invocation
    rarely wakes it.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._process: subprocess.Popen | None = None
        self._deadline: float | None = None
        self._waking_at = float("inf")
        self._fired = False
        self._thread: threading.Thread | None = None

    def arm(self, process: subprocess.Popen, deadline: float) -> None:
        """Kill ``process`` at ``deadline`` (``time.monotonic()``) unless disarmed first."""
        with self._condition:
            self._process, self._deadline, self._fired = process, deadline, False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="cma-sidecar-deadline", daemon=True
                )
                self._thread.start()
            elif deadline < self._waking_at:
                self._condition.notify()

    def disarm(self) -> bool:
        """Stop watching; True when the deadline had passed and the child was killed."""
        with self._condition:
            self._process = self._deadline = None
            return self._fired

    def _watch(self) -> None:
        with self._condition:
            while True:
                deadline = self._deadline
                if deadline is None:
                    self._waking_at = float("inf")
                    self._condition.wait()
                    continue
                left = deadline - time.monotonic()
                if left > 0:
                    self._waking_at = deadline
                    self._condition.wait(left)
                    continue
                self._fired = True
                self._deadline = None
                with contextlib.suppress(OSError):
                    self._process.kill()  # SIGKILL: a stopped or hung child ignores less


def _relay_stderr(stream: IO[bytes], tail: collections.deque[str]) -> None:
    """Copy the child's stderr to ours (Lambda logs) and keep the last lines for errors."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        tail.append(line)
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    stream.close()


# ---- the process-wide sidecar ---------------------------------------------------------------

_current: Sidecar | None = None
_current_lock = threading.Lock()


def get_sidecar() -> Sidecar:
    """The process's sidecar for the current configuration (started on first call)."""
    global _current
    command = adapter_command()
    sidecar = _current
    if sidecar is not None and sidecar.command == command:
        return sidecar
    with _current_lock:
        if _current is not None and _current.command != command:
            _current.close()  # the configuration changed: CUMULUS_MESSAGE_ADAPTER_DIR
            _current = None
        if _current is None:
            _current = Sidecar(command)
        return _current


def stop_sidecar() -> None:
    """End the process's sidecar, if one runs (also done at interpreter exit)."""
    global _current
    with _current_lock:
        sidecar, _current = _current, None
    if sidecar is not None:
        sidecar.close()


def _after_fork_in_child() -> None:
    global _current, _current_lock
    _current_lock = threading.Lock()
    if _current is not None:
        _current.forget()
        _current = None


atexit.register(stop_sidecar)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
