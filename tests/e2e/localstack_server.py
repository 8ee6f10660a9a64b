"""LocalStack (S3 and Step Functions) for the end-to-end tests: installed, started, stopped.

moto has no ``GetActivityTask``; LocalStack's Step Functions interprets ASL with real
activities. ``localstack-core`` needs Python 3.13 and a few pins, so it gets its own
virtual environment under ``.localstack/venv`` (reused while the pins are unchanged),
never the project's. The server listens on a loopback port only, keeps its files under
``.localstack/``, and is told not to reach the internet.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from message_adapter.jsonio import loads
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CMA_LOCALSTACK_CACHE", REPO / ".localstack"))
PINS = (
    "localstack-core[runtime]==2026.3.0",
    # Measured: the newest releases of these break localstack-core 2026.3.0's start-up.
    "cbor2<5.7",
    "cryptography<44",
    "pyopenssl<24.3",
    "joserfc<1.1",
    "service_identity",
)


def find_python313() -> str | None:
    """A Python 3.13 interpreter: $LOCALSTACK_PYTHON, python3.13 on PATH, or pyenv's."""
    candidates = [os.environ.get("LOCALSTACK_PYTHON")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    candidates += [shutil.which("python3.13")]  # may be a pyenv shim that refuses to run
    return next((path for path in candidates if path and _is_python313(path)), None)


def _is_python313(path: str) -> bool:
    try:
        done = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, timeout=30
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == b"(3, 13)"


def ensure_installed(python: str, log: Path) -> Path:
    """The venv's python, installing LocalStack into it unless the same pins are there."""
    venv = CACHE / "venv"
    marker = venv / ".cma-pins"
    wanted = "\n".join(PINS)
    venv_python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == wanted and venv_python.exists():
        return venv_python
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        subprocess.run(
            [python, "-m", "venv", "--clear", str(venv)],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        done = subprocess.run(
            [
                str(venv_python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PINS,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"pip could not install LocalStack (see {log}):\n{tail}")
    marker.write_text(wanted)
    return venv_python


class LocalStack:
    """One LocalStack process serving S3, Step Functions and Lambda on 127.0.0.1:<port>."""

    def __init__(self, venv_python: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        root = CACHE / "run"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.log_path = CACHE / "localstack.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "LOCALSTACK_"))
        }
        env.update(
            {
                # lambda: ecs-task's GetFunction/GetLayerVersionByArn and code downloads (the
                # control plane works without Docker; functions only fail to *run* there,
                # and Code.Location URLs point at LOCALSTACK_HOST, i.e. loopback)
                "SERVICES": "s3,stepfunctions,lambda",
                "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
                "OVERRIDE_IN_DOCKER": "0",  # host mode: files under FILESYSTEM_ROOT
                "FILESYSTEM_ROOT": str(root),
                "PERSISTENCE": "0",
                "DISABLE_EVENTS": "1",  # no analytics
                "SKIP_SSL_CERT_DOWNLOAD": "1",  # no certificate download
                "DNS_ADDRESS": "0",  # no DNS server (it looks for upstream DNS)
                "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            }
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [str(venv_python), "-m", "localstack.runtime.main"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends all of it
        )

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds until S3 and Step Functions answer; raises with the log tail if not."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"LocalStack exited ({self.process.returncode}):\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            if "CannotListenError" in self.log_path.read_text(errors="replace"):
                # LocalStack keeps running without its gateway rather than exiting.
                self.stop()
                raise RuntimeError(
                    f"LocalStack could not listen on port {self.port}, which "
                    "another process took; run the tests again"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.endpoint}/_localstack/health", timeout=2
                ) as reply:
                    services = loads(reply.read()).get("services", {})
                if all(
                    services.get(name) in ("available", "running")
                    for name in ("s3", "stepfunctions", "lambda")
                ):
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"LocalStack not ready after {timeout} s:\n"
            + self.log_path.read_text(errors="replace")[-3000:]
        )

    def stop(self) -> None:
        """End the whole process group: politely, then for sure."""
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Anything left in the group (LocalStack may start helpers) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()

    def aws_env(self) -> dict[str, str]:
        """Environment for a process that should use this LocalStack as AWS."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        return env

    def client(self, service: str) -> object:
        """A boto3 client on this LocalStack."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
