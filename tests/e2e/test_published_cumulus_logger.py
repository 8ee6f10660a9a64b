"""The published Python client's own ``cumulus_logger`` tests, run against ours.

The test module comes from the PyPI sdist of ``cumulus-message-adapter-python`` (pip
download, cached in .e2e-cache/). The sdist does not ship the ``helpers`` module those tests
import, so ``HELPERS`` below provides it: the fixtures the tests read, as documented by
their assertions (a message with ``cumulus_meta``, ``meta.stack`` and
``meta.input_granules``, the same message under ``cma.event`` with ``payload.granules``,
and a Lambda context with a function name and version).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.e2e.ecs_helpers import CACHE

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = "cumulus-message-adapter-python==2.3.0"

HELPERS = """\
def create_event():
    return {
        "cumulus_meta": {
            "execution_name": "execution-7",
            "asyncOperationId": "async-7",
            "parentExecutionArn": "arn:aws:states:us-east-1:1:execution:parent:7",
        },
        "meta": {
            "stack": "test-stack",
            "input_granules": [{"granuleId": "in-1"}, {"granuleId": "in-2"}],
        },
        "payload": {"other": "value"},
    }


def create_parameter_event():
    event = create_event()
    event["payload"] = {"granules": [{"granuleId": "p-1"}, {"granuleId": "p-2"}]}
    return {"cma": {"event": event}}


class LambdaContextMock:
    function_name = "test-function"
    function_version = 3
"""


def published_test_module() -> Path:
    """``tests/test_logger.py`` of the published sdist, downloaded once."""
    root = CACHE / "cumulus-message-adapter-python-2.3.0"
    target = root / "test_logger.py"
    if target.exists():
        return target
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "--dest", str(root), PUBLISHED],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"pip download failed:\n{done.stdout}\n{done.stderr}"
    (sdist,) = root.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("tests/test_logger.py"))
        target.write_bytes(archive.extractfile(member).read())
    return target


def test_published_cumulus_logger_tests_pass_against_ours(tmp_path: Path) -> None:
    shutil.copy(published_test_module(), tmp_path / "test_logger.py")
    (tmp_path / "helpers.py").write_text(HELPERS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_logger.py"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "clients" / "python"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "13 passed" in done.stdout, done.stdout
