"""A Lambda function's code on local disk: what ``ecs-task`` runs instead of invoking Lambda.

``fetch_function`` does what the historic ``cumulus-ecs-task`` did at start: ``GetFunction``
on the ARN, download ``Code.Location`` and unzip it into the task directory, download each
of the function's layers (``GetLayerVersionByArn``) and unpack them, in order, into the
layers directory (``/opt`` in a Lambda image). ``LambdaFunction`` is what the rest needs
from the function's configuration. Downloads retry transient failures; archives are
unpacked only inside their destination.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from message_adapter.aws import backoff_delay, error_code
from message_adapter.errors import AdapterError

SUPPORTED_RUNTIMES = ("nodejs", "python")
DOWNLOAD_ATTEMPTS = 5


class LambdaCodeError(AdapterError):
    """The function cannot be fetched or unpacked; the message says why."""


class UnsupportedFunctionError(LambdaCodeError):
    """The function is of a kind ecs-task cannot host (runtime, container image)."""


@dataclass(frozen=True)
class LambdaFunction:
    """The parts of ``GetFunction``'s ``Configuration`` that ``ecs-task`` uses."""

    name: str
    arn: str
    runtime: str
    handler: str
    version: str = "$LATEST"
    timeout: int = 3
    memory: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    last_modified: str | None = None

    @property
    def kind(self) -> str:
        """``nodejs`` or ``python``: which host process runs the handler."""
        return runtime_kind(self.runtime)


def runtime_kind(runtime: str) -> str:
    """``nodejs`` or ``python`` for a supported Lambda ``Runtime``; LambdaCodeError otherwise."""
    for kind in SUPPORTED_RUNTIMES:
        if runtime.startswith(kind):
            return kind
    raise UnsupportedFunctionError(
        f"the function's runtime {runtime or '(none: a container image)'!r} is not supported "
        "by ecs-task, which hosts nodejs* and python* handlers; run other runtimes with "
        "'cumulus-message-adapter activity --exec COMMAND'"
    )


def describe_function(response: dict) -> LambdaFunction:
    """A ``LambdaFunction`` from a ``GetFunction`` response."""
    config = response.get("Configuration") or {}
    if config.get("PackageType") == "Image":
        raise UnsupportedFunctionError(
            f"{config.get('FunctionName')} is a container image function; ecs-task runs "
            "functions deployed as .zip archives (run the image itself instead)"
        )
    environment = (config.get("Environment") or {}).get("Variables") or {}
    return LambdaFunction(
        name=config.get("FunctionName", ""),
        arn=config.get("FunctionArn", ""),
        runtime=config.get("Runtime") or "",
        handler=config.get("Handler") or "",
        version=config.get("Version") or "$LATEST",
        timeout=int(config.get("Timeout") or 3),
        memory=int(config.get("MemorySize") or 128),
        environment={str(k): str(v) for k, v in environment.items()},
        layers=tuple(layer["Arn"] for layer in config.get("Layers") or []),
        last_modified=config.get("LastModified"),
    )


def adapter_dir(task_dir: str | os.PathLike, layers_dir: str | os.PathLike) -> str:
    """``CUMULUS_MESSAGE_ADAPTER_DIR`` as the historic worker sets it: the task's own
    ``cumulus-message-adapter`` folder if it has one, else the layers directory."""
    own = Path(task_dir) / "cumulus-message-adapter"
    return str(own if own.is_dir() else Path(layers_dir))


def fetch_function(
    lambda_client: Any,
    function_arn: str,
    task_dir: str | os.PathLike,
    layers_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    log: Callable[..., None] | None = None,
) -> LambdaFunction:
    """Download the function's code into ``task_dir`` and its layers into ``layers_dir``."""
    log = log or (lambda *args, **kwargs: None)
    try:
        response = lambda_client.get_function(FunctionName=function_arn)
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear message
        raise LambdaCodeError(
            f"GetFunction {function_arn} failed: {error_code(error) or type(error).__name__}: "
            f"{error}; check the ARN, the region (AWS_DEFAULT_REGION) and that the task role "
            "may call lambda:GetFunction"
        ) from None
    function = describe_function(response)
    function.kind  # noqa: B018 - an unsupported runtime fails before any download
    location = (response.get("Code") or {}).get("Location")
    if not location:
        raise LambdaCodeError(f"GetFunction {function_arn} returned no Code.Location to download")
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    download_and_unpack(location, task_dir, work_dir, f"the code of {function.name}")
    log(
        "info",
        f"unpacked {function.name} into {task_dir}",
        event="function_fetched",
        duration_s=round(time.monotonic() - started, 3),
    )
    for layer_arn in function.layers:
        try:
            layer = lambda_client.get_layer_version_by_arn(Arn=layer_arn)
        except Exception as error:  # noqa: BLE001
            raise LambdaCodeError(
                f"GetLayerVersionByArn {layer_arn} failed: "
                f"{error_code(error) or type(error).__name__}: {error}; the task role needs "
                "lambda:GetLayerVersion on the function's layers"
            ) from None
        layer_location = (layer.get("Content") or {}).get("Location")
        if not layer_location:
            raise LambdaCodeError(f"layer {layer_arn} has no Content.Location to download")
        started = time.monotonic()
        download_and_unpack(layer_location, layers_dir, work_dir, f"layer {layer_arn}")
        log(
            "info",
            f"unpacked layer {layer_arn} into {layers_dir}",
            event="layer_fetched",
            duration_s=round(time.monotonic() - started, 3),
        )
    return function


def download_and_unpack(
    url: str, dest: str | os.PathLike[str], work_dir: str | os.PathLike[str], what: str
) -> None:
    """Download the zip at ``url`` into ``work_dir`` and unpack it into ``dest``."""
    with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".zip", delete=False) as handle:
        archive = Path(handle.name)
    try:
        download(url, archive, what)
        try:
            safe_extract(archive, dest)
        except zipfile.BadZipFile as error:
            raise LambdaCodeError(f"{what} is not a valid zip archive: {error}") from None
    finally:
        archive.unlink(missing_ok=True)


def _is_transient_http(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    return isinstance(error, (urllib.error.URLError, OSError, TimeoutError))


def download(
    url: str,
    path: str | os.PathLike,
    what: str = "the archive",
    attempts: int = DOWNLOAD_ATTEMPTS,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Stream ``url`` (http or https, e.g. a presigned S3 URL) into ``path``, retrying
    5xx, throttling and dropped connections with backoff."""
    if not url.startswith(("https://", "http://")):
        raise LambdaCodeError(f"{what}: cannot download {url[:80]!r} (only http and https)")
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:  # noqa: S310
                shutil.copyfileobj(response, out, 1 << 20)
            return
        except Exception as error:  # noqa: BLE001
            if not _is_transient_http(error) or attempt + 1 == attempts:
                raise LambdaCodeError(
                    f"downloading {what} failed after {attempt + 1} attempt(s): "
                    f"{type(error).__name__}: {error}"
                ) from None
            sleep(backoff_delay(attempt))


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Unpack a zip into ``dest``, keeping executable bits and symlinks that stay inside it.

    Later archives overwrite earlier ones' files, as Lambda layers do. An entry whose path
    (or link target) would leave ``dest`` is refused.
    """
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            target = (root / info.filename).resolve()
            if target != root and root not in target.parents:
                raise LambdaCodeError(
                    f"the archive entry {info.filename!r} would be written outside {root}"
                )
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                link = zipped.read(info).decode("utf-8")
                resolved = (target.parent / link).resolve()
                if resolved != root and root not in resolved.parents:
                    raise LambdaCodeError(
                        f"the archive's symlink {info.filename!r} -> {link!r} points outside {root}"
                    )
                if target.is_symlink() or target.exists():
                    target.unlink()
                target.symlink_to(link)
                continue
            if target.is_symlink():
                target.unlink()
            with zipped.open(info) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if mode & 0o111:
                target.chmod(target.stat().st_mode | (mode & 0o755))
