"""Fixtures for the end-to-end group: LocalStack for the session, workers per test.

Workers are real ``cumulus-message-adapter activity`` processes pointed at LocalStack;
each test makes its own activities and state machines, so tests never share tasks."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import Worker
from tests.e2e.localstack_server import CACHE, LocalStack, ensure_installed, find_python313


@pytest.fixture(scope="session")
def localstack() -> Iterator[LocalStack]:
    """LocalStack serving S3 and Step Functions on loopback, for the whole session."""
    python = find_python313()
    if python is None:
        message = (
            "the e2e tests need Python 3.13 for LocalStack: set LOCALSTACK_PYTHON or "
            "put python3.13 on PATH"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    venv_python = ensure_installed(python, CACHE / "install.log")
    installed = time.monotonic() - started
    server = LocalStack(venv_python)
    try:
        ready = server.wait_ready()
        sys.stderr.write(
            f"\nLocalStack: install {installed:.1f} s, ready in {ready:.1f} s "
            f"on {server.endpoint}\n"
        )
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sfn(localstack: LocalStack) -> Any:
    return localstack.client("stepfunctions")


@pytest.fixture(scope="session")
def s3(localstack: LocalStack) -> Any:
    return localstack.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"cma-e2e-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def workers(localstack: LocalStack) -> Iterator[Any]:
    """``start(activity_arn, *task_args, **options)`` starts a worker; all end with the test."""
    started: list[Worker] = []

    def start(activity_arn: str, *task_args: str, **options: Any) -> Worker:
        worker = Worker(localstack, activity_arn, *task_args, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
