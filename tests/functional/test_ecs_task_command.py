"""The `ecs-task` command as a process: signals at its first moment, AWS settings at start.

Nothing is reached: the endpoints are a dead loopback port, and these tests end before
the function would be fetched.
"""

import os
import signal
import sys

from tests.helpers import DEAD_ENDPOINT, LoggingProcess

ACTIVITY = "arn:aws:states:us-east-1:000000000000:activity:ingest"
FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:ingest"
NO_AWS = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
}


def ecs_task(tmp_path, env: dict[str, str], block_sigterm: bool = False) -> LoggingProcess:
    base = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    command = [
        sys.executable, "-m", "message_adapter", "ecs-task", "--activityArn", ACTIVITY,
        "--lambdaArn", FUNCTION, "-d", str(tmp_path / "task"), "-w", str(tmp_path / "work"),
        "--layersDirectory", str(tmp_path / "opt"),
    ]  # fmt: skip
    return LoggingProcess(command, env={**base, **NO_AWS, **env}, block_sigterm=block_sigterm)


def test_sigterm_right_after_spawn_exits_0_with_the_stop_logged(tmp_path) -> None:
    credentials = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    worker = ecs_task(tmp_path, credentials, block_sigterm=True)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish() == 0, "".join(worker.lines)
    [record] = worker.records()
    assert (record["event"], record["signal"]) == ("worker_stopped", "SIGTERM")


def test_missing_credentials_is_one_line_and_exit_2_before_any_download(tmp_path) -> None:
    worker = ecs_task(tmp_path, {})
    assert worker.finish() == 2
    [record] = worker.records()
    assert record["level"] == "fatal" and "no AWS credentials found" in record["message"]
    assert not (tmp_path / "work").exists()
