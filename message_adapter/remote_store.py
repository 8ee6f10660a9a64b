"""Where offloaded message parts live: S3, or a local folder standing in for it.

Both stores have the two calls ``message_flow`` needs (``get_json`` and ``put_json``).
boto3 is imported only when a message first touches S3, so messages that never do pay
nothing for it. Errors name the bucket and key and say what to check.
"""

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from message_adapter.errors import RemoteStoreError
from message_adapter.jsonio import loads

EXPIRES_AFTER = timedelta(days=7)


class S3Store:
    """S3 as configured by the standard AWS settings (or ``CUMULUS_ENV=testing``)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_s3_client()
        return self._client

    def get_json(self, bucket: str, key: str) -> Any:
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:
            raise _explain(error, "read", bucket, key) from None
        try:
            return loads(body)
        except ValueError as error:
            raise RemoteStoreError(
                f"s3://{bucket}/{key} does not hold JSON ({error}); a replace must point at "
                "a message part written by the adapter"
            ) from None

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                Expires=datetime.now(timezone.utc) + EXPIRES_AFTER,
                IfNoneMatch="*",
            )
        except Exception as error:
            raise _explain(error, "write", bucket, key) from None


def make_s3_client() -> Any:
    """An S3 client honouring AWS_* settings, retrying transient errors."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    if os.environ.get("CUMULUS_ENV") == "testing":
        host = os.environ.get("LOCALSTACK_HOST", "localhost")
        return boto3.client(
            "s3",
            endpoint_url=f"http://{host}:4566",
            aws_access_key_id="my-id",
            aws_secret_access_key="my-secret",
            region_name="us-east-1",
            config=config,
        )
    return boto3.client("s3", config=config)


def _explain(error: Exception, action: str, bucket: str, key: str) -> RemoteStoreError:
    where = f"s3://{bucket}/{key}"
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchKey", "404") and action == "read":
        return RemoteStoreError(
            f"cannot read {where}: no such object; it may have expired (offloaded parts "
            "live 7 days) or the replace.Key is wrong"
        )
    if code == "NoSuchBucket":
        return RemoteStoreError(
            f"cannot {action} {where}: bucket {bucket!r} does not exist; check the "
            "bucket name (cumulus_meta.system_bucket for offloads)"
        )
    if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId",
                "SignatureDoesNotMatch"):
        return RemoteStoreError(
            f"cannot {action} {where}: access denied; the task's role needs "
            f"s3:{'GetObject' if action == 'read' else 'PutObject'} on that bucket"
        )
    if code in ("PreconditionFailed", "412"):
        return RemoteStoreError(f"cannot write {where}: an object already exists there")
    detail = f"{code}: {error}" if code else f"{type(error).__name__}: {error}"
    return RemoteStoreError(f"cannot {action} {where} ({detail})")


class LocalDirStore:
    """A folder standing in for S3: ``DIR/<bucket>/<key>``, never reaching outside DIR."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()

    def path_for(self, bucket: str, key: str) -> Path:
        """The file for bucket/key; rejects names that would leave the store folder."""
        for label, name in (("bucket", bucket), ("key", key)):
            parts = name.replace("\\", "/").split("/")
            if (not name or name.startswith("/") or "\0" in name
                    or any(part in ("", ".", "..") for part in parts)
                    or (label == "bucket" and len(parts) != 1)):
                raise RemoteStoreError(
                    f"{label} {name!r} is not allowed in a local store: use plain names "
                    "without '..', empty parts or a leading '/'"
                )
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to(self.root / bucket):
            raise RemoteStoreError(f"{bucket}/{key} would leave the store folder {self.root}")
        return path

    def get_json(self, bucket: str, key: str) -> Any:
        path = self.path_for(bucket, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RemoteStoreError(
                f"cannot read {bucket}/{key}: no such file {path} in the local store"
            ) from None
        try:
            return loads(data)
        except ValueError as error:
            raise RemoteStoreError(f"{path} does not hold JSON ({error})") from None

    def put_json(self, bucket: str, key: str, body: bytes) -> None:
        path = self.path_for(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "xb") as handle:
                handle.write(body)
        except FileExistsError:
            raise RemoteStoreError(f"cannot write {bucket}/{key}: {path} already exists") from None
