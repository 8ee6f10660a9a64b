"""The `activity` command as a process: signals at any moment, and AWS settings at start.

Step Functions is never reached: the endpoint is a dead loopback port, so a started
worker keeps polling (and backing off) until it is stopped.
"""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import DEAD_ENDPOINT, wait_until

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


class Worker:
    """``activity`` in a child process, its stderr JSON lines collected as they come."""

    def __init__(self, *args: str, env: dict[str, str], arn: str = ARN, block_sigterm=False):
        command = [sys.executable, "-m", "message_adapter", "activity", "--activity-arn", arn]
        # A SIGTERM blocked here stays blocked in the child until it unblocks it: the
        # way to send one "at once" without racing the interpreter's own start.
        mask = {signal.SIGTERM} if block_sigterm else set()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
        try:
            self.process = subprocess.Popen(
                [*command, *args], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.decode())

    def records(self) -> list[dict]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def events(self) -> list[str]:
        return [record["event"] for record in self.records()]

    def wait_for(self, event: str, timeout: float = 60.0) -> dict:
        wait_until(
            lambda: event in self.events() or self.process.poll() is not None,
            timeout=timeout,
            what=f"log line {event}",
        )
        assert event in self.events(), "".join(self.lines)
        return next(record for record in self.records() if record["event"] == event)

    def finish(self, timeout: float = 30.0) -> int:
        """Wait for the exit status and for the last stderr line."""
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout)
        return code


def test_sigterm_once_polling_exits_0_with_the_stop_logged() -> None:
    worker = Worker("--exec", "cat", env=aws_env(AWS_DEFAULT_REGION="us-east-1", **CREDENTIALS))
    worker.wait_for("worker_started")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish() == 0, "".join(worker.lines)
    events = worker.events()
    assert events[0] == "worker_started" and events[-1] == "worker_stopped"


def test_sigterm_right_after_spawn_exits_0_with_the_stop_logged() -> None:
    worker = Worker("--exec", "cat", env=aws_env(**CREDENTIALS), block_sigterm=True)
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
    worker = Worker(f"{task}:handler", env=aws_env(**CREDENTIALS))
    wait_until(importing.exists, timeout=60, what="the task's import to begin")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.finish(timeout=30) == 0, "".join(worker.lines)
    assert worker.events() == ["worker_stopped"]


def test_region_comes_from_the_activity_arn() -> None:
    arn = "arn:aws:states:eu-west-3:000000000000:activity:ingest"
    worker = Worker("--exec", "cat", env=aws_env(**CREDENTIALS), arn=arn)
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
    worker = Worker("--exec", "cat", env=aws_env(**env), arn=arn)
    assert worker.finish() == 2
    [line] = worker.lines
    assert line.startswith(error), line
