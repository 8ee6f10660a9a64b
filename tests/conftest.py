"""Shared fixtures: an offline AWS environment and a real S3 endpoint on loopback.

Every test runs with fake credentials, no AWS profile or config file, and
``AWS_ENDPOINT_URL`` pointing at a closed loopback port, so nothing can reach real AWS.
Tests that use S3 ask for ``s3_env``: a moto server (started once per session, stopped at
the end) becomes the endpoint, for in-process calls and for subprocesses alike.
``flaky_s3`` puts a small proxy in front of it that can fail chosen requests once.
Tests that need another endpoint (LocalStack in e2e tests) set it with ``monkeypatch``.
"""

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from message_adapter.jsonio import dumps, loads
from tests.ports import free_port

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
DEAD_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, refused at once

# Settings that could lead boto3 to real AWS or to the developer's own credentials.
_AWS_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_REGION",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "CUMULUS_ENV",
    "LOCALSTACK_HOST",
)
_AWS_SET = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
}


@pytest.fixture(scope="session", autouse=True)
def offline_aws() -> Iterator[None]:
    """No test, and no subprocess a test starts, can reach real AWS."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_UNSET:
            patch.delenv(name, raising=False)
        for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
            patch.delenv(name)
        for name, value in _AWS_SET.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(autouse=True)
def fresh_shared_s3_store() -> Iterator[None]:
    """Adapters share one S3 client per process; tests change the AWS settings it reads."""
    from message_adapter.stores import reset_shared_s3_store

    reset_shared_s3_store()
    yield
    reset_shared_s3_store()


# ---- moto server ----------------------------------------------------------------------


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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The session's S3 endpoint: a moto server on a free loopback port."""
    server = MotoServer(free_port())
    yield server
    server.stop()


@pytest.fixture
def s3_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test (and its subprocesses) at the moto server; returns the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    return dict(os.environ)


@pytest.fixture(scope="session")
def s3(moto_server: MotoServer) -> Any:
    """A boto3 S3 client on the moto server, for setting up and inspecting buckets."""
    import boto3

    assert boto3.client("s3").meta.endpoint_url == os.environ["AWS_ENDPOINT_URL"], (
        "this botocore ignores AWS_ENDPOINT_URL, so tests could reach real AWS"
    )
    return boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    """A new, empty bucket for this test only."""
    name = f"cma-test-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


def keys_in(s3: Any, bucket: str) -> list[str]:
    """Every key in the bucket."""
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    """Store a JSON document the way a previous task would have."""
    s3.put_object(Bucket=bucket, Key=key, Body=dumps(value))


def get_json(s3: Any, bucket: str, key: str) -> Any:
    """Read back a stored JSON document."""
    return loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


# ---- a proxy that fails chosen requests ---------------------------------------------------


@dataclass
class Fault:
    """What the proxy does instead of (or after) forwarding one matching request.

    ``kind``: ``status`` answers ``status``/``code`` without forwarding; ``lose`` forwards,
    then answers ``status``/``code`` as if the reply was lost; ``truncate`` forwards and
    sends only half of the body before closing the connection.
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


@pytest.fixture
def flaky_s3(
    moto_server: MotoServer, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlakyProxy]:
    """The test's S3 endpoint is a proxy to moto that fails the requests it is told to."""
    proxy = FlakyProxy(moto_server.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    yield proxy
    proxy.stop()


# ---- running the adapter in a subprocess --------------------------------------------------


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


# ---- restricted credentials ------------------------------------------------------------------


@pytest.fixture
def restricted_credentials(
    moto_server: MotoServer, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., None]]:
    """``use(allow=[...])``: switch to a new IAM user allowed only those S3 statements.

    Creates the user while moto lets anyone in, then turns moto's IAM checks on for the
    rest of the test, so S3 answers with a real ``AccessDenied`` to whatever is not allowed.
    """
    import boto3

    iam = boto3.session.Session().client(
        "iam", endpoint_url=moto_server.endpoint, region_name="us-east-1"
    )

    def use(allow: list[dict[str, Any]] = ()) -> None:
        user = f"cma-{uuid.uuid4().hex[:12]}"
        iam.create_user(UserName=user)
        if allow:
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", **statement} for statement in allow],
            }
            document = dumps(policy).decode()
            iam.put_user_policy(UserName=user, PolicyName="only", PolicyDocument=document)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        # boto3's default session keeps the credentials it first found: start a new one.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        moto_server.require_auth(True)

    try:
        yield use
    finally:
        moto_server.require_auth(False)
