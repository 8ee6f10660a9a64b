"""The `activity` command as a process: signals at any moment, and AWS settings at start.

Step Functions is never reached: the endpoint is a dead loopback port, so a started
worker keeps polling (and backing off) until it is stopped.
"""

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.helpers import DEAD_ENDPOINT, LoggingProcess, wait_until

ARN = "arn:aws:states:us-east-1:000000000000:activity:ingest"
NO_AWS_FILES = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role lookup: loopback only
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}


def aws_env(**settings: str) -> dict[str, str]:
    """This environment without any AWS setting, then ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {**env, **NO_AWS_FILES, "AWS_ENDPOINT_URL": DEAD_ENDPOINT, **settings}


def activity_worker(*args: str, env: dict[str, str], arn: str = ARN, block_sigterm=False):
    """``activity`` serving ``arn`` in a child process (see ``LoggingProcess``)."""
    command = [sys.executable, "-m", "message_adapter", "activity", "--activity-arn", arn]
    return LoggingProcess([*command, *args], env=env, block_sigterm=block_sigterm)


def test_sigterm_once_polling_exits_0_with_the_stop_logged() -> None:
    worker = activity_worker(
        "--exec", "cat", env=aws_env(AWS_DEFAULT_REGION="us-east-1", **CREDENTIALS)
    )
    worker.wait_for("worker_started")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish() == 0, "".join(worker.lines)
    events = worker.events()
    assert events[0] == "worker_started" and events[-1] == "worker_stopped"


def test_sigterm_right_after_spawn_exits_0_with_the_stop_logged() -> None:
    worker = activity_worker("--exec", "cat", env=aws_env(**CREDENTIALS), block_sigterm=True)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish() == 0, "".join(worker.lines)
    [record] = worker.records()
    assert (record["event"], record["signal"]) == ("worker_stopped", "SIGTERM")


def test_sigterm_while_the_task_is_still_importing_exits_0_at_once(tmp_path: Path) -> None:
    importing = tmp_path / "importing"
    task = tmp_path / "slow_task.py"
    task.write_text(
        "import pathlib, time\n"
        f"pathlib.Path({str(importing)!r}).touch()\n"
        "time.sleep(600)  # an import that takes its time: the worker must not wait for it\n"
        "def handler(event, context):\n"
        "    return event\n"
    )
    worker = activity_worker(f"{task}:handler", env=aws_env(**CREDENTIALS))
    wait_until(importing.exists, timeout=60, what="the task's import to begin")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish(timeout=30) == 0, "".join(worker.lines)
    assert worker.events() == ["worker_stopped"]


def test_region_comes_from_the_activity_arn() -> None:
    arn = "arn:aws:states:eu-west-3:000000000000:activity:ingest"
    worker = activity_worker("--exec", "cat", env=aws_env(**CREDENTIALS), arn=arn)
    assert worker.wait_for("worker_started")["region"] == "eu-west-3"
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish() == 0


@pytest.mark.parametrize(
    ("arn", "env", "error"),
    [
        ("ingest", CREDENTIALS, "activity: no AWS region: the activity ARN 'ingest' names none"),
        (ARN, {}, "activity: no AWS credentials found"),
    ],
    ids=["no-region", "no-credentials"],
)
def test_missing_aws_setting_is_one_line_and_exit_2(arn: str, env: dict, error: str) -> None:
    worker = activity_worker("--exec", "cat", env=aws_env(**env), arn=arn)
    assert worker.finish() == 2
    [line] = worker.lines
    assert line.startswith(error), line
