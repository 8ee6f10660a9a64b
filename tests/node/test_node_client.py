"""The Node client's own suite (clients/node, `node --test`), run from pytest.

Installs the client's dev dependencies with `npm ci` when they are missing or older than
package-lock.json, then runs every `clients/node/tests/*.test.js` with this interpreter as
the adapter's Python, and with a bucket on the session's moto server so the compatibility
tests cover messages stored in S3 too. Needs Node.js 18+ and npm on PATH.
"""

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.node

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


def _needs_install() -> bool:
    installed = CLIENT / "node_modules" / ".package-lock.json"
    lock = CLIENT / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


def test_node_client_suite(
    s3_env: dict[str, str], bucket: str, node_counts: Callable[[str], dict[str, str]]
) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("the Node client's tests need Node.js 18+ and npm on PATH")
    if _needs_install():
        install = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert install.returncode == 0, f"npm ci failed:\n{install.stdout}\n{install.stderr}"
    env = {**s3_env, "CMA_TEST_PYTHON": sys.executable, "CMA_TEST_S3_BUCKET": bucket}
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap"],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    counts = node_counts(result.stdout)
    assert result.returncode == 0, (
        f"node --test failed (exit {result.returncode}):\n{result.stdout[-20000:]}\n"
        f"{result.stderr[-5000:]}"
    )
    assert int(counts.get("tests", 0)) > 0, f"node --test ran no tests:\n{result.stdout}"
