"""The sidecar process: its set-up, and serving the stream or one command on stdin/stdout.

This is the imperative shell around ``protocol.serve`` and ``commands.Adapter``: signals,
garbage collection, pipe buffers, exit codes. Errors are reported with
``errors.describe`` as everywhere else.
"""

import contextlib
import gc
import os
import signal
import sys
import time
from typing import Any, NoReturn

from message_adapter.errors import describe

PROG = "cumulus-message-adapter"
_PIPE_BUFFER = 1 << 20


def _fail(prefix: str, error: BaseException) -> NoReturn:
    info = describe(error)
    sys.stderr.write(f"{prefix}: {info['name']}: {info['message']}\n")
    sys.stderr.flush()
    os._exit(1)


def _prepare_process() -> None:
    """Exit 1 on SIGTERM/SIGINT, and switch off the cyclic garbage collector.

    Parsed JSON holds no reference cycles, so reference counting frees everything; the
    collector would only rescan the millions of objects of a large message (it costs more
    than the JSON parsing itself at 20000 granules).
    """
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    gc.disable()


def _exit_on_signal(signum: int, frame: Any) -> None:
    sys.stderr.flush()
    os._exit(1)


def _runner(verbose: bool, stream: bool = False) -> Any:
    from message_adapter.sidecar.commands import Adapter

    adapter = Adapter()
    run_command = adapter.run_stream_command if stream else adapter.run_json
    if stream:
        run_command = _warming_up(run_command)
    if not verbose:
        return run_command

    def run(command: str, body: bytes) -> Any:
        started = time.perf_counter()
        try:
            return run_command(command, body)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{PROG}: {command} took {elapsed:.2f} ms\n")

    return run


_LIGHT_REQUESTS = 3
"""Requests answered before msgspec is loaded in the background: one task's first cycle."""
_LARGE_REQUEST = 64 * 1024
"""A request this large tunes the process for large messages at once (``_tune_for_large``)."""
_PIPE_CAPACITY = 1 << 20
_MMAP_THRESHOLD = 16 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h


def _warming_up(run: Any) -> Any:
    """``run``, which after the first few requests loads msgspec on a background thread.

    The standard library answers the first small requests without waiting for msgspec's
    import (the cold start); later ones go through msgspec, which is several times faster
    on warm cycles. The import runs while the stream waits for its next request. The
    process is tuned for large messages then too (``_tune_for_large``), or at once by a
    large request.
    """
    from message_adapter import jsonio

    count = 0
    tune = _Once(_tune_for_large)

    def counted(command: str, body: bytes) -> Any:
        nonlocal count
        count += 1
        if len(body) >= _LARGE_REQUEST:
            tune()
        try:
            return run(command, body)
        finally:
            if count == _LIGHT_REQUESTS and (jsonio.is_light() or not tune.done):
                # Started once the answer is ready: the import takes the interpreter while
                # the answer goes out and the client works, not while the request is served.
                import threading

                threading.Thread(
                    target=_warm_up, args=(tune,), name="cma-warm-up", daemon=True
                ).start()

    return counted


class _Once:
    """Calls ``action`` the first time it is called, and never again."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.action()


def _tune_for_large() -> None:
    enlarge_pipes()
    keep_large_buffers()


def keep_large_buffers() -> None:
    """Have glibc's malloc reuse freed memory for buffers up to 16 MiB, not map and unmap
    each one (a no-op elsewhere).

    Each cycle reads and writes several buffers of a message's size (1.7 MB at 2000
    granules). By default glibc serves those with fresh mappings whose every page faults
    on first touch, unless an earlier free happened to raise its adaptive threshold; so
    the speed of warm cycles depended on the allocation history (which modules were
    imported when): 3-20% at 2000 granules. With fixed thresholds, freed memory up to
    32 MiB stays in the heap for the next cycle. (32 MiB, glibc's largest, would also
    serve 20000 granules, but made the peak of a request over a million lines 2.3x.)
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD)
    except (ImportError, OSError, AttributeError):
        return


def enlarge_pipes(fds: tuple[int, ...] = (0, 1), capacity: int = _PIPE_CAPACITY) -> None:
    """Give the pipes on ``fds`` a 1 MiB capacity (Linux; anything else is left alone).

    A pipe holds 64 KiB by default, so a 1.7 MB message takes 27 hand-overs between the
    writer and the reader, each a context switch when both share a CPU; with 1 MiB it
    takes two. The capacity is capped by /proc/sys/fs/pipe-max-size (1 MiB by default);
    a refusal, or an fd that is not a pipe, is harmless.
    """
    try:
        import fcntl
    except ImportError:
        return
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if set_size is None:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, capacity)


def _warm_up(tune: "_Once") -> None:
    tune()
    from message_adapter.sidecar.request_parsing import load_lazy_parser

    load_lazy_parser()


def run_stream(structured_errors: bool = False, verbose: bool = False) -> NoReturn:
    """Serve the stream protocol on stdin/stdout until ``<EXIT>`` or end of input."""
    from message_adapter.jsonio import start_light
    from message_adapter.sidecar.protocol import serve

    start_light()
    _prepare_process()
    # Our own 1 MiB buffers: a 17 MB request then takes a few dozen reads, not thousands,
    # and an answer goes out in one write even when PYTHONUNBUFFERED is set.
    stdin = open(0, "rb", buffering=_PIPE_BUFFER, closefd=False)  # noqa: SIM115
    stdout = open(1, "wb", buffering=_PIPE_BUFFER, closefd=False)  # noqa: SIM115
    try:
        serve(stdin, stdout, _runner(verbose, stream=True), describe, structured_errors)
        stdout.flush()
    except Exception as error:
        _fail("stream", error)
    os._exit(0)


def run_single(command: str, verbose: bool = False) -> NoReturn:
    """Read one request from stdin, write the answer to stdout."""
    from message_adapter.jsonio import dumps

    _prepare_process()
    try:
        answer = dumps(_runner(verbose)(command, sys.stdin.buffer.read()))
        sys.stdout.buffer.write(answer + b"\n")
        sys.stdout.buffer.flush()
    except Exception as error:
        _fail(command, error)
    os._exit(0)
