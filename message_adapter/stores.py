"""Where offloaded message parts live: the ``RemoteStore`` interface and its three stores.

``S3Store`` is production; ``LocalDirStore`` is a folder standing in for S3 (``run
--store``); ``MemoryStore`` is a dict, shipped for tests and for users' own tests. Each has
the two calls the message rules need (``get_json`` and ``put_json``) and the same promise:
a stored part is never overwritten. boto3 is imported only when a message first touches
S3, so messages that never do pay nothing for it. Errors name the bucket and key and say
what to check.

S3 is reached as the standard AWS settings say (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_S3``, region, credentials, ``AWS_RETRY_MODE``, ``AWS_MAX_ATTEMPTS``), or,
with ``CUMULUS_ENV=testing``, at ``http://$LOCALSTACK_HOST:4566`` as the historic adapter
did. Transient failures are retried: requests by botocore's standard retry mode, a body
cut off while being read by ``get_json`` itself.

Every S3 read or write is bounded in time (``S3Timeouts``): each attempt has connect and
read timeouts, and the whole call, retries included, a deadline after which it fails, so
an endpoint that accepts connections and never answers costs a task seconds, not minutes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from message_adapter.aws import (
    ACCESS_DENIED,
    ALREADY_EXISTS,
    BAD_CREDENTIALS,
    NO_SUCH_BUCKET,
    NO_SUCH_KEY,
    NOT_IMPLEMENTED,
    error_code,
)
from message_adapter.errors import RemoteStoreError
from message_adapter.jsonio import dumps, loads

if TYPE_CHECKING:
    from pathlib import Path

# pathlib and datetime are imported where used: the sidecar's cold start needs neither.

EXPIRES_AFTER_DAYS = 7
TOTAL_ATTEMPTS = 5
"""Attempts per S3 request (first try included) unless ``AWS_MAX_ATTEMPTS`` says otherwise."""
READ_ATTEMPTS = 3
"""Attempts at reading an object whose body is cut off in transit."""

CONNECT_TIMEOUT_VAR = "CUMULUS_MESSAGE_ADAPTER_S3_CONNECT_TIMEOUT"
READ_TIMEOUT_VAR = "CUMULUS_MESSAGE_ADAPTER_S3_READ_TIMEOUT"
TIMEOUT_VAR = "CUMULUS_MESSAGE_ADAPTER_S3_TIMEOUT"

T = TypeVar("T")


class S3Timeouts:
    """Seconds an S3 call may take: to connect, to wait for an answer, in all.

    ``connect`` and ``read`` bound each attempt (botocore's own defaults are 60 s each);
    ``total`` bounds one read or write of a message part, retries and their pauses
    included. The defaults leave a task minutes of its Lambda timeout when S3 hangs, and
    are far above what a healthy S3 needs (tens of milliseconds per request). (A plain
    class: the sidecar imports this module at start, and a NamedTuple costs 55 us more.)
    """

    __slots__ = ("connect", "read", "total")

    def __init__(self, connect: float = 5.0, read: float = 10.0, total: float = 30.0) -> None:
        self.connect = connect
        self.read = read
        self.total = total

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, S3Timeouts):
            return NotImplemented
        return (self.connect, self.read, self.total) == (other.connect, other.read, other.total)

    def __repr__(self) -> str:
        return f"S3Timeouts(connect={self.connect}, read={self.read}, total={self.total})"

    @classmethod
    def from_environment(cls, environ: Any = None) -> S3Timeouts:
        """The timeouts the ``CUMULUS_MESSAGE_ADAPTER_S3_*`` variables set, else the defaults."""
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            _seconds(env, CONNECT_TIMEOUT_VAR, default.connect),
            _seconds(env, READ_TIMEOUT_VAR, default.read),
            _seconds(env, TIMEOUT_VAR, default.total),
        )


def _seconds(env: Any, name: str, default: float) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise RemoteStoreError(
            f"{name}={text!r} is not a number of seconds greater than 0; unset it for the "
            f"default ({default:g} s)"
        )
    return value


class RemoteStore(Protocol):
    """Where large message parts live: S3, or a stand-in with the same two calls."""

    def get_json(self, bucket: str, key: str) -> Any:
        """Return the parsed JSON stored at bucket/key."""

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        """Store JSON text at bucket/key; never overwrite an existing object."""


class S3Store:
    """S3 as configured by the standard AWS settings (or ``CUMULUS_ENV=testing``)."""

    def __init__(self, client: Any = None, timeouts: S3Timeouts | None = None) -> None:
        self._client = client
        self._timeouts = timeouts
        self._conditional_writes: bool | None = None

    @property
    def timeouts(self) -> S3Timeouts:
        """The time bounds of every call (from the environment unless given)."""
        if self._timeouts is None:
            self._timeouts = S3Timeouts.from_environment()
        return self._timeouts

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made (and boto3 imported) on first use."""
        if self._client is None:
            self._client = make_s3_client(self.timeouts)
        return self._client

    def get_json(self, bucket: str, key: str) -> Any:
        """The parsed JSON value at s3://bucket/key."""
        body = self._bounded("read", bucket, key, lambda: self._read(bucket, key))
        try:
            return loads(body)
        except ValueError as error:
            raise RemoteStoreError(
                f"s3://{bucket}/{key} does not hold JSON ({error}); a replace must point at "
                "a message part written by the adapter"
            ) from None

    def _read(self, bucket: str, key: str) -> bytes:
        attempt = 1
        while True:
            try:
                response = self.client.get_object(Bucket=bucket, Key=key)
            except Exception as error:
                raise _explain(error, "read", bucket, key, self.timeouts) from None
            try:
                return response["Body"].read()
            except Exception as error:
                # botocore retries requests, not a body that breaks off while streaming.
                if attempt >= READ_ATTEMPTS or not _is_broken_stream(error):
                    raise _explain(error, "read", bucket, key, self.timeouts) from None
            time.sleep(0.05 * attempt)
            attempt += 1

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        """Store ``body`` at s3://bucket/key, expiring in 7 days; never overwrites.

        The write is conditional (``If-None-Match: *``). When it is refused because the
        object exists, it succeeds only if that object already holds exactly ``body`` (a
        retried request whose first attempt landed); an endpoint without conditional
        writes gets a plain write (keys are random, so nothing is overwritten in practice).
        """
        self._bounded("write", bucket, key, lambda: self._write(bucket, key, body))

    def _bounded(self, action: str, bucket: str, key: str, work: Callable[[], T]) -> T:
        """``work()``, or a ``RemoteStoreError`` once ``timeouts.total`` seconds have passed.

        The work runs in a helper thread so the caller is answered at the deadline even
        while an attempt is still waiting on a silent endpoint; from then on that thread
        starts no new attempt (see ``_refuse_late_attempts``), so it ends within one
        attempt's timeouts.
        """
        import threading

        try:
            client = self.client  # made here: creating boto3 clients is not thread-safe
        except Exception as error:
            raise _explain(error, action, bucket, key, self.timeouts) from None
        total = self.timeouts.total
        call = _Call(time.monotonic() + total, threading.Event())
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as error:  # handed to the caller's thread
                outcome.append((False, error))
            finally:
                call.done.set()

        helper = threading.Thread(target=run, name="cma-s3", daemon=True)
        helper.s3_call = call  # type: ignore[attr-defined]
        helper.start()
        if not call.done.wait(total):
            call.late = True
            raise _no_answer(action, bucket, key, client, call, total)
        succeeded, value = outcome[0]
        if succeeded:
            return value
        if call.refused:  # the deadline passed between two attempts, just before the wait
            raise _no_answer(action, bucket, key, client, call, total)
        raise value

    def _write(self, bucket: str, key: str, body: bytes) -> None:
        from datetime import datetime, timedelta, timezone

        try:
            client = self.client
            request = {
                "Bucket": bucket,
                "Key": key,
                "Body": body,
                "ContentType": "application/json",
                "Expires": datetime.now(timezone.utc) + timedelta(days=EXPIRES_AFTER_DAYS),
            }
            if self._conditional_writes is None:
                self._conditional_writes = _supports_if_none_match(client)
            if self._conditional_writes:
                request["IfNoneMatch"] = "*"
            try:
                client.put_object(**request)
            except Exception as error:
                code = error_code(error)
                if code in NOT_IMPLEMENTED and "IfNoneMatch" in request:
                    self._conditional_writes = False
                    del request["IfNoneMatch"]
                    client.put_object(**request)
                elif code in ALREADY_EXISTS and self._holds(bucket, key, body):
                    return
                else:
                    raise
        except Exception as error:
            raise _explain(error, "write", bucket, key, self.timeouts) from None

    def _holds(self, bucket: str, key: str, body: bytes) -> bool:
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        except Exception:
            return False


_shared_s3: S3Store | None = None


def shared_s3_store() -> S3Store:
    """One ``S3Store`` per process: adapters made per invocation share its boto3 client."""
    global _shared_s3
    if _shared_s3 is None:
        _shared_s3 = S3Store()
    return _shared_s3


def reset_shared_s3_store() -> None:
    """Forget the shared store, so the next one reads the AWS settings again (for tests)."""
    global _shared_s3
    _shared_s3 = None


def make_s3_client(timeouts: S3Timeouts | None = None) -> Any:
    """An S3 client honouring AWS_* settings and the timeouts, retrying transient errors.

    Within ``S3Store`` calls, it starts no attempt after the call's deadline.
    """
    import boto3
    from botocore.config import Config

    if timeouts is None:
        timeouts = S3Timeouts.from_environment()
    retries: dict[str, Any] = {}
    if not os.environ.get("AWS_RETRY_MODE"):
        retries["mode"] = "standard"
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["total_max_attempts"] = TOTAL_ATTEMPTS
    config = Config(retries=retries, connect_timeout=timeouts.connect, read_timeout=timeouts.read)
    if os.environ.get("CUMULUS_ENV") == "testing":
        host = os.environ.get("LOCALSTACK_HOST") or "localhost"
        client = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:4566",
            aws_access_key_id="my-id",
            aws_secret_access_key="my-secret",
            region_name="us-east-1",
            config=config,
        )
    else:
        client = boto3.client("s3", config=config)
    client.meta.events.register("before-send.s3", _refuse_late_attempts)
    client.meta.events.register("needs-retry.s3", _note_failed_attempt)
    return client


def _no_answer(
    action: str, bucket: str, key: str, client: Any, call: _Call, total: float
) -> RemoteStoreError:
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None) or "its endpoint"
    tried = [f"{call.attempts} attempt{'' if call.attempts == 1 else 's'}"] if call.attempts else []
    if call.last_problem:
        tried.append(f"last failure: {call.last_problem}")
    detail = f" ({'; '.join(tried)})" if tried else ""
    return RemoteStoreError(
        f"cannot {action} s3://{bucket}/{key}: S3 at {endpoint} did not answer within "
        f"{total:g} s{detail}; check the network and "
        f"AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, or allow more time with {TIMEOUT_VAR} "
        f"(seconds, default {S3Timeouts().total:g})"
    )


class _Call:
    """One bounded ``S3Store`` call, as its helper thread's S3 attempts see it."""

    def __init__(self, deadline: float, done: Any) -> None:
        self.deadline = deadline
        self.done = done  # a threading.Event, set when the call has finished
        self.attempts = 0
        self.last_problem = ""
        self.late = False  # the caller has given up
        self.refused = False  # an attempt was refused for being after the deadline


def _current_call() -> _Call | None:
    """The ``_Call`` this thread runs, if it is an ``S3Store`` helper thread."""
    import threading  # imported by boto3 long before: the sidecar's cold start needs neither

    return getattr(threading.current_thread(), "s3_call", None)


class _DeadlinePassed(Exception):
    """Raised inside botocore to stop a call that its caller has already given up on."""


def _refuse_late_attempts(**kwargs: Any) -> None:
    call = _current_call()
    if call is None:
        return
    if call.late or time.monotonic() >= call.deadline:
        call.refused = True
        raise _DeadlinePassed("the call's deadline has passed")
    call.attempts += 1


def _note_failed_attempt(response: Any = None, caught_exception: Any = None, **kwargs: Any) -> None:
    call = _current_call()
    if call is None:
        return
    if caught_exception is not None:
        call.last_problem = type(caught_exception).__name__
    elif response is not None:
        status = response[0].status_code
        if status >= 400:
            code = response[1].get("Error", {}).get("Code", "")
            call.last_problem = f"HTTP {status} {code}".rstrip()


def _supports_if_none_match(client: Any) -> bool:
    # botocore learnt conditional writes in 1.35; older ones reject the parameter.
    try:
        shape = client.meta.service_model.operation_model("PutObject").input_shape
        return "IfNoneMatch" in shape.members
    except Exception:
        return False


def _is_broken_stream(error: Exception) -> bool:
    from botocore import exceptions

    names = ("IncompleteReadError", "ReadTimeoutError", "ResponseStreamingError")
    kinds = tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))
    return isinstance(error, kinds)


def _explain(
    error: Exception, action: str, bucket: str, key: str, timeouts: S3Timeouts
) -> RemoteStoreError:
    if isinstance(error, RemoteStoreError):
        return error
    where = f"s3://{bucket}/{key}"
    code = error_code(error)
    if code in NO_SUCH_KEY and action == "read":
        return RemoteStoreError(
            f"cannot read {where}: no such object; it may have expired (offloaded parts "
            "live 7 days) or the replace.Key is wrong"
        )
    if code in NO_SUCH_BUCKET:
        return RemoteStoreError(
            f"cannot {action} {where}: bucket {bucket!r} does not exist; check the "
            "bucket name (cumulus_meta.system_bucket for offloads)"
        )
    if code in ACCESS_DENIED:
        return RemoteStoreError(
            f"cannot {action} {where}: access denied; the task's role needs "
            f"s3:{'GetObject' if action == 'read' else 'PutObject'} on that bucket"
        )
    if code in BAD_CREDENTIALS:
        return RemoteStoreError(
            f"cannot {action} {where}: the AWS credentials were rejected ({code}); check "
            "the task's role or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN"
        )
    if code in ALREADY_EXISTS and action == "write":
        return RemoteStoreError(
            f"cannot write {where}: an object already exists there and offloaded parts are "
            "never overwritten"
        )
    name = type(error).__name__
    if name == "ParamValidationError":
        # botocore lists each problem on its own line, bucket ones followed by long regexes.
        problems = [line.split(": Bucket name must")[0] for line in str(error).splitlines()[1:]]
        return RemoteStoreError(
            f"cannot {action} {where}: S3 does not accept this bucket or key "
            f"({'; '.join(problems) or error})"
        )
    if name == "NoCredentialsError":
        return RemoteStoreError(
            f"cannot {action} {where}: no AWS credentials found; give the task a role or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        return RemoteStoreError(
            f"cannot {action} {where}: S3 could not be reached, even after retries ({error}); "
            "check the network and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3"
            + (
                f" ({CONNECT_TIMEOUT_VAR} allows {timeouts.connect:g} s to connect)"
                if name == "ConnectTimeoutError"
                else ""
            )
        )
    if name == "ReadTimeoutError":
        return RemoteStoreError(
            f"cannot {action} {where}: S3 did not answer within {timeouts.read:g} s, even "
            f"after retries ({error}); check the network and AWS_ENDPOINT_URL / "
            f"AWS_ENDPOINT_URL_S3, or allow more time with {READ_TIMEOUT_VAR} (seconds, "
            f"default {S3Timeouts().read:g})"
        )
    detail = f"{code}: {error}" if code else f"{name}: {error}"
    return RemoteStoreError(f"cannot {action} {where} ({detail})")


class LocalDirStore:
    """A folder standing in for S3: ``DIR/<bucket>/<key>``, never reaching outside DIR.

    Every failure is a ``RemoteStoreError`` naming the bucket and key (cut to a readable
    length) and the reason, as S3's would be.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        from pathlib import Path

        self.root = Path(root).resolve()

    def path_for(self, bucket: str, key: str) -> Path:
        """The file for bucket/key; rejects names that would leave the store folder."""
        for label, name in (("bucket", bucket), ("key", key)):
            parts = name.replace("\\", "/").split("/")
            if (
                not name
                or name.startswith("/")
                or "\0" in name
                or any(part in ("", ".", "..") for part in parts)
                or (label == "bucket" and len(parts) != 1)
            ):
                raise RemoteStoreError(
                    f"{label} {_short(name)} is not allowed in a local store: use plain names "
                    "without '..', empty parts or a leading '/'"
                )
            try:
                os.fsencode(name)
            except UnicodeEncodeError:
                raise RemoteStoreError(
                    f"{label} {_short(name)} cannot be a file name here: it holds characters "
                    "the file system cannot encode (such as a lone surrogate)"
                ) from None
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to(self.root / bucket):
            raise RemoteStoreError(
                f"{_short(bucket + '/' + key)} would leave the store folder {self.root}"
            )
        return path

    def get_json(self, bucket: str, key: str) -> Any:
        path = self.path_for(bucket, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RemoteStoreError(
                f"cannot read {_short(bucket + '/' + key)}: no such file in the local store "
                f"{self.root}"
            ) from None
        except OSError as error:
            raise _local_error("read", bucket, key, error) from None
        try:
            return loads(data)
        except ValueError as error:
            raise RemoteStoreError(
                f"{_short(bucket + '/' + key)} in the local store does not hold JSON ({error})"
            ) from None

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        path = self.path_for(bucket, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as handle:
                handle.write(body)
        except FileExistsError:
            raise RemoteStoreError(
                f"cannot write {_short(bucket + '/' + key)}: it already exists in the local "
                "store, and stored parts are never overwritten"
            ) from None
        except OSError as error:
            raise _local_error("write", bucket, key, error) from None


def _short(name: str, limit: int = 80) -> str:
    """``name`` quoted for a message, cut to about ``limit`` characters."""
    if len(name) <= limit:
        return repr(name)
    return repr(name[:limit]) + f"… ({len(name)} characters)"


def _local_error(action: str, bucket: str, key: str, error: OSError) -> RemoteStoreError:
    import errno

    reason = error.strerror or type(error).__name__
    hint = {
        errno.ENAMETOOLONG: "use a shorter key (each part of a path has a length limit)",
        errno.EISDIR: "the key names a folder; use the key of a file",
        errno.ENOTDIR: "a part of the key names a file, not a folder",
        errno.EACCES: "check the store folder's permissions",
        errno.ENOSPC: "free some disk space",
    }.get(error.errno or 0, "check the store folder")
    return RemoteStoreError(
        f"cannot {action} {_short(bucket + '/' + key)} in the local store: {reason}; {hint}"
    )


class MemoryStore:
    """A dict standing in for S3, ``{(bucket, key): bytes}``: for tests, yours and ours."""

    def __init__(self, objects: dict[tuple[str, str], Any] | None = None) -> None:
        self.objects: dict[tuple[str, str], bytes] = {
            key: dumps(value) for key, value in (objects or {}).items()
        }

    def get_json(self, bucket: str, key: str) -> Any:
        try:
            return loads(self.objects[(bucket, key)])
        except KeyError:
            raise RemoteStoreError(f"cannot read {bucket}/{key}: no such object") from None

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        if (bucket, key) in self.objects:
            raise RemoteStoreError(f"cannot write {bucket}/{key}: it already exists")
        self.objects[(bucket, key)] = bytes(body)
