"""Helpers the tests share: servers on loopback (moto, a fault-injecting proxy), running the
adapter as a subprocess, and waiting for a condition instead of sleeping.

Test modules and conftest files import from here; nothing imports from a test module
or from a conftest."""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from message_adapter.jsonio import dumps, loads

PYTHON = sys.executable


REPO = Path(__file__).resolve().parent.parent


DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once


def wait_until(
    condition: Callable[[], object],
    timeout: float = 5.0,
    step: float = 0.01,
    what: str = "condition",
) -> None:
    """Poll ``condition`` every ``step`` s until it holds; fail if not within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(step)


class MotoServer:
    """``python -m moto.server`` on a loopback port, in its own process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        # moto logs every request: a file, not a pipe nobody reads, so it never blocks.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                error = self.log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"moto server on port {self.port} exited: {error}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"moto server on port {self.port} not ready after {timeout} s")

    def require_auth(self, enabled: bool) -> None:
        """Turn moto's IAM checks on (every request needs allowed credentials) or off."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0" if enabled else b"inf",
            headers={"Content-Type": "text/plain"},  # a form type would hide the body
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        """Stop the server and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def keys_in(s3: Any, bucket: str) -> list[str]:
    """Every key in the bucket."""
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    """Store a JSON document the way a previous task would have."""
    s3.put_object(Bucket=bucket, Key=key, Body=dumps(value))


def get_json(s3: Any, bucket: str, key: str) -> Any:
    """Read back a stored JSON document."""
    return loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@dataclass
class Fault:
    """What the proxy does instead of (or after) forwarding one matching request.

    ``kind``: ``status`` answers ``status``/``code`` without forwarding; ``lose`` forwards,
    then answers ``status``/``code`` as if the reply was lost; ``truncate`` forwards and
    sends only half of the body before closing the connection; ``hang`` reads the request
    and never answers (a black hole: the connection stays open until the proxy stops).
    """

    method: str
    kind: str = "status"
    status: int = 503
    code: str = "SlowDown"
    times: int = 1
    when: Callable[[dict[str, str]], bool] = field(default=lambda headers: True)


class FlakyProxy:
    """A loopback HTTP proxy in front of moto that injects the queued faults.

    The port is bound at once; with ``listening=False`` connections to it are refused
    until ``listen()``, which stands in for an endpoint that comes up late without
    letting any other socket take the port meanwhile.
    """

    def __init__(self, upstream_port: int, listening: bool = True) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.server_bind()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        if listening:
            self.listen()

    def listen(self) -> None:
        """Start accepting connections."""
        self.server.server_activate()
        self.thread.start()

    def fail(self, method: str, **options: Any) -> None:
        """Queue a fault for the next request(s) with this HTTP method."""
        self.faults.append(Fault(method, **options))

    def count(self, method: str) -> int:
        """How many requests with this method reached the proxy."""
        return sum(1 for seen, _ in self.requests if seen == method)

    def _take_fault(self, method: str, headers: dict[str, str]) -> Fault | None:
        with self.lock:
            self.requests.append((method, headers.get("Host", "")))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.when(headers):
                    fault.times -= 1
                    return fault
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = dict(handler.headers.items())
        body = _read_body(handler)
        fault = self._take_fault(handler.command, headers)
        if fault is not None and fault.kind == "status":
            _send_error(handler, fault.status, fault.code)
            return
        if fault is not None and fault.kind == "hang":
            self.stopping.wait()
            handler.close_connection = True
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=10)
        forwarded = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("transfer-encoding", "expect", "connection")
        }
        forwarded["Content-Length"] = str(len(body))
        upstream.request(handler.command, handler.path, body=body, headers=forwarded)
        response = upstream.getresponse()
        payload = response.read()
        upstream.close()
        if fault is not None and fault.kind == "lose":
            _send_error(handler, fault.status, fault.code)
            return
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in (
                "transfer-encoding",
                "connection",
                "content-length",
                "date",
                "server",
            ):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        if fault is not None and fault.kind == "truncate":
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    def stop(self) -> None:
        """Stop serving (if it ever started), free the port and join the thread."""
        self.stopping.set()
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _send_error(handler: BaseHTTPRequestHandler, status: int, code: str) -> None:
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>injected by the test proxy</Message></Error>"
    ).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@dataclass
class Run:
    """A finished adapter process."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def json(self) -> Any:
        """The one JSON answer of a single-command run."""
        assert self.stdout.endswith(b"\n") and self.stdout.count(b"\n") == 1, self.stdout
        return loads(self.stdout)

    def answers(self) -> list[Any]:
        """The JSON answers of a stream run, in order."""
        frames = self.stdout.split(b"\n<EOC>\n")
        assert frames[-1] == b"", f"output does not end with <EOC>: {self.stdout[-200:]!r}"
        return [loads(frame) for frame in frames[:-1]]


def run_adapter(*args: str, stdin: bytes, python_flags: tuple[str, ...] = ()) -> Run:
    """``python -m message_adapter ARGS < stdin`` in the current (test) environment."""
    done = subprocess.run(
        [PYTHON, *python_flags, "-m", "message_adapter", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env=dict(os.environ),
    )
    return Run(done.returncode, done.stdout, done.stderr)


def stream_input(*frames: tuple[str, Any]) -> bytes:
    """Stream protocol input: one frame per ``(command, request)``, then ``<EXIT>``."""
    parts = [f"{command}\n".encode() + dumps(request) + b"\n<EOC>\n" for command, request in frames]
    return b"".join(parts) + b"<EXIT>\n"


# ---- loopback ports -------------------------------------------------------------------
# Loopback ports for the servers the tests start (moto, LocalStack).
#
# A port found free and then bound by another process a moment later can be taken in
# between. The kernel hands out ports only from its ephemeral range (to ``bind(0)`` and
# to outgoing connections), so picking below that range leaves only servers that choose
# their port explicitly to collide with, and the probe rules out those already running.


_FALLBACK_EPHEMERAL_LOW = 32768
_SPAN = 10000


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port now.

    The probe sets SO_REUSEADDR, as the servers the tests start do (moto's werkzeug, the
    proxy's http.server, LocalStack): without it, the connections a previous run left in
    TIME_WAIT for a minute would make a free port look taken.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A free loopback port that the kernel will not hand to anybody else meanwhile."""
    low = _ephemeral_low()
    if low - _SPAN >= 1024:
        for _ in range(50):
            port = random.randrange(low - _SPAN, low)
            if port_is_free(port):
                return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as limits:
            return int(limits.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_LOW


# ---- a long-running sidecar ------------------------------------------------------------


DOCUMENTED_NAMES = frozenset(
    {"ProtocolError", "MessageError", "TemplateError", "ValidationError", "RemoteStoreError"}
)
"""The error names protocol.md's table promises a sidecar client."""


def strict_json(data: bytes) -> Any:
    """Parse ``data`` as RFC 8259 JSON in UTF-8: NaN and Infinity are refused, as Step
    Functions and strict parsers refuse them."""
    import json

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON: {data[:200]!r}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def unreachable_s3_env(**extra: str) -> dict[str, str]:
    """This environment with S3 at a port nobody listens on, tried once: a message that
    needs S3 fails at once with a RemoteStoreError instead of reaching out."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=DEAD_ENDPOINT,
        AWS_MAX_ATTEMPTS="1",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
        **extra,
    )
    return env


class StreamSidecar:
    """``stream --structured-errors`` kept running, answering one frame at a time."""

    def __init__(self, cwd: Path = REPO, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "message_adapter", "stream", "--structured-errors"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env if env is not None else dict(os.environ),
        )

    def send(self, data: bytes) -> None:
        """Write raw protocol bytes (a frame, or anything else)."""
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def receive(self) -> tuple[str, Any]:
        """``("answer", json)`` or ``("error", {"name", "message", "command"})``, read as
        strict JSON; fails if the frame is not well formed."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        kind = "answer"
        if line == b"<ERROR>\n":
            kind, line = "error", self.process.stdout.readline()
        assert line.endswith(b"\n"), f"no answer (exit {self.process.poll()}): {line[:200]!r}"
        closing = self.process.stdout.readline()
        assert closing == b"<EOC>\n", f"answer not followed by <EOC>: {closing[:200]!r}"
        return kind, strict_json(line[:-1])

    def request(self, command: str, body: bytes) -> tuple[str, Any]:
        """Send one frame and read its answer."""
        self.send(command.encode() + b"\n" + body + b"\n<EOC>\n")
        return self.receive()

    def close(self) -> int:
        """Send ``<EXIT>`` and return the exit status."""
        try:
            self.send(b"<EXIT>\n")
            assert self.process.stdin is not None
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        code = self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


class LoggingProcess:
    """A worker command in a child process, its stderr JSON lines collected as they come."""

    def __init__(self, command: list[str], env: dict[str, str], block_sigterm: bool = False):
        # A SIGTERM blocked here stays blocked in the child until it unblocks it: the
        # way to send one "at once" without racing the interpreter's own start.
        mask = {signal.SIGTERM} if block_sigterm else set()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.decode())

    def records(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def events(self) -> list[str]:
        return [record["event"] for record in self.records()]

    def wait_for(self, event: str, timeout: float = 60.0) -> dict:
        wait_until(
            lambda: event in self.events() or self.process.poll() is not None,
            timeout=timeout,
            what=f"log line {event}",
        )
        assert event in self.events(), "".join(self.lines)
        return next(record for record in self.records() if record["event"] == event)

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit status and for the last stderr line."""
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout)
        return code
