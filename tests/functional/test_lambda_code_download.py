"""Downloading a task's Lambda code: retries over real (loopback) connections.

The rest of lambda_code (URL checks, safe unpacking) is tested in-process in
tests/unit/test_ecs_task.py.
"""

from pathlib import Path

import pytest

from message_adapter.tasks.lambda_code import LambdaCodeError, download


def test_download_retries_transient_failures_then_says_how_often(tmp_path: Path):
    pauses: list[float] = []
    url = "http://127.0.0.1:9/unreachable"  # the discard port: connection refused
    with pytest.raises(LambdaCodeError, match="after 3 attempt"):
        download(url, tmp_path / "x", attempts=3, timeout=1, sleep=pauses.append)
    assert len(pauses) == 2
