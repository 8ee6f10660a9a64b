"""Helpers of the ``ecs-task`` end-to-end tests: Lambda functions and layers on LocalStack
made from small visible sources, the published ``@cumulus/hello-world`` package from npm,
and ``cumulus-ecs-task`` processes run as the Dockerfile runs them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tests.e2e.helpers import ROLE, unique
from tests.e2e.localstack_server import LocalStack

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CMA_E2E_CACHE", REPO / ".e2e-cache"))
HELLO_WORLD = "@cumulus/hello-world@1.24.0"
# hello-world 1.24.0's webpack bundle leaves aws-sdk v2 out, as Lambda's nodejs12 provided it.
AWS_SDK_V2 = "aws-sdk@2.1693.0"


def zip_tree(root: Path, prefix: str = "") -> bytes:
    """A zip of everything under ``root`` (below ``prefix`` in the archive), modes kept."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(prefix + str(path.relative_to(root)))
                info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def publish_layer(lambda_client: Any, name: str, content: bytes) -> str:
    return lambda_client.publish_layer_version(
        LayerName=unique(name), Content={"ZipFile": content}
    )["LayerVersionArn"]


def create_function(
    lambda_client: Any,
    code: bytes,
    runtime: str,
    handler: str,
    layers: list[str] = (),
    environment: dict[str, str] | None = None,
    timeout: int = 60,
) -> str:
    """A new function (LocalStack without Docker cannot run it; ecs-task only reads it).

    Every test makes its own: a function that cannot start is left in state Failed, and
    updating or deleting one is not worth the wait."""
    return lambda_client.create_function(
        FunctionName=unique("fn"),
        Runtime=runtime,
        Handler=handler,
        Role=ROLE,
        Code={"ZipFile": code},
        Layers=list(layers),
        Timeout=timeout,
        Environment={"Variables": environment or {}},
    )["FunctionArn"]


def npm_hello_world() -> Path:
    """``@cumulus/hello-world``'s own Lambda (its dist/lambda.zip) with aws-sdk v2 beside
    it, unpacked in the cache; npm runs only the first time."""
    root = CACHE / "hello-world-1.24.0"
    done = root / ".complete"
    if done.exists():
        return root / "lambda"
    shutil.rmtree(root, ignore_errors=True)
    (root / "deps").mkdir(parents=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the hello-world test needs npm on PATH")
    _npm([npm, "pack", HELLO_WORLD, "--silent"], root)
    (tarball,) = root.glob("cumulus-hello-world-*.tgz")
    shutil.unpack_archive(tarball, root / "pack")
    (root / "deps" / "package.json").write_text('{"private": true}')
    _npm([npm, "install", "--omit=dev", "--no-audit", "--no-fund", AWS_SDK_V2], root / "deps")
    lambda_dir = root / "lambda"
    with zipfile.ZipFile(root / "pack" / "package" / "dist" / "lambda.zip") as archive:
        archive.extractall(lambda_dir)
    shutil.copytree(root / "deps" / "node_modules", lambda_dir / "node_modules")
    done.write_text(HELLO_WORLD)
    return lambda_dir


def _npm(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


def build_bundle(out: Path) -> Path:
    """``cumulus-message-adapter bundle OUT --no-exe``: the adapter layer of a Lambda."""
    done = subprocess.run(
        [sys.executable, "-m", "message_adapter", "bundle", str(out), "--no-exe"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bundle failed:\n{done.stdout}\n{done.stderr}")
    return out


def python_on_path(directory: Path) -> str:
    """A PATH whose ``python`` is this interpreter (the clients start the adapter with
    ``python``, as in a Lambda image), followed by the current PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "python"
    if not link.exists():
        link.symlink_to(sys.executable)
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def ecs_task_command() -> list[str]:
    """The Dockerfile's entrypoint: the ``cumulus-ecs-task`` console script."""
    script = Path(sys.executable).parent / "cumulus-ecs-task"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from message_adapter.cli.ecs_task import main; main()"]


class EcsTask:
    """A ``cumulus-ecs-task`` process, run in its own folder as in the image (WORKDIR with
    ``task/`` and ``.tmp-work/`` under it); the layers go to ``layers/`` instead of /opt.
    Its stderr and stdout (the log) go to a file."""

    def __init__(
        self,
        localstack: LocalStack,
        *args: str,
        path: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="ecs-task-"))
        self.log_path = self.home / "log"
        self.layers = self.home / "layers"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in close)
        environment = localstack.aws_env()
        if path:
            environment["PATH"] = path
        environment.update(env or {})
        self.process = subprocess.Popen(
            [*ecs_task_command(), *args, "--layersDirectory", str(self.layers)],
            cwd=self.home,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict]:
        """Every line that is a JSON object (handlers may print other lines)."""
        records = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def events(self, name: str) -> list[dict]:
        return [record for record in self.records() if record.get("event") == name]

    def close(self) -> None:
        if self.process.poll() is None:
            import signal

            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)
