"""One version everywhere: ``message_adapter.__version__`` is the single source.

The adapter's pyproject reads it (``dynamic = ["version"]``); the Python client, its
pyproject and the Node client's package.json must carry the same number, since the
clients are released with the adapter they drive.
"""

import importlib.metadata
import json
from pathlib import Path

import pytest

import message_adapter

REPO = Path(__file__).resolve().parents[2]
VERSION = message_adapter.__version__
REINSTALL = "installed metadata is from the last install: run scripts/setup again"


def test_python_client_carries_the_adapters_version() -> None:
    import run_cumulus_task

    assert run_cumulus_task.__version__ == VERSION


def test_node_client_package_and_lock_carry_the_adapters_version() -> None:
    package = json.loads((REPO / "clients/node/package.json").read_text())
    lock = json.loads((REPO / "clients/node/package-lock.json").read_text())
    assert package["version"] == VERSION
    assert lock["version"] == lock["packages"][""]["version"] == VERSION


@pytest.mark.parametrize(
    "distribution", ["cumulus-message-adapter", "cumulus-message-adapter-python"]
)
def test_built_distributions_carry_the_adapters_version(distribution: str) -> None:
    assert importlib.metadata.version(distribution) == VERSION, REINSTALL
