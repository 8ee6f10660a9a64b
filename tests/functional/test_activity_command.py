"""The activity worker against an in-memory Step Functions (moto has no GetActivityTask)."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from botocore.exceptions import ClientError

from message_adapter.sidecar.commands import Adapter
from message_adapter.tasks.runner import run_message
from message_adapter.tasks.worker import (
    ActivityWorker,
)

ARN = "arn:aws:states:us-east-1:000000000000:activity:ingest"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


class FakeStepFunctions:
    """Tasks go in with ``add``; polls wait up to ``poll_wait`` s; answers are recorded."""

    def __init__(self, poll_wait: float = 0.05) -> None:
        self.poll_wait = poll_wait
        self.cond = threading.Condition()
        self.queue: list[tuple[str, str]] = []
        self.answers: list[tuple[str, str, Any]] = []  # (kind, token, output or (error, cause))
        self.heartbeats: list[str] = []
        self.errors: dict[str, list[Exception]] = {}  # operation -> errors to raise first
        self.polls = 0

    def add(self, token: str, message: Any) -> None:
        with self.cond:
            self.queue.append((token, json.dumps(message)))
            self.cond.notify_all()

    def fail_next(self, operation: str, *errors: Exception) -> None:
        self.errors.setdefault(operation, []).extend(errors)

    def _raise_queued(self, operation: str) -> None:
        queued = self.errors.get(operation)
        if queued:
            raise queued.pop(0)

    def get_activity_task(self, activityArn: str, workerName: str) -> dict:
        assert activityArn == ARN and workerName
        with self.cond:
            self.polls += 1
        self._raise_queued("get_activity_task")
        with self.cond:
            self.cond.wait_for(lambda: self.queue, timeout=self.poll_wait)
            if not self.queue:
                return {}
            token, raw = self.queue.pop(0)
        return {"taskToken": token, "input": raw}

    def send_task_success(self, taskToken: str, output: str) -> None:
        self._raise_queued("send_task_success")
        with self.cond:
            self.answers.append(("success", taskToken, json.loads(output)))
            self.cond.notify_all()

    def send_task_failure(self, taskToken: str, error: str, cause: str) -> None:
        self._raise_queued("send_task_failure")
        with self.cond:
            self.answers.append(("failure", taskToken, (error, cause)))
            self.cond.notify_all()

    def send_task_heartbeat(self, taskToken: str) -> None:
        with self.cond:
            self.heartbeats.append(taskToken)

    def wait_answers(self, count: int, timeout: float = 5.0) -> list:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.answers) >= count, timeout), self.answers
            return list(self.answers)


class Store:
    def get_json(self, bucket: str, key: str) -> Any:
        raise AssertionError("no store access expected")

    put_json = get_json


def handler_for(task):
    adapter = Adapter(Store())
    return lambda message: run_message(adapter, task, message)


def start(
    sfn: FakeStepFunctions, task, **options: Any
) -> tuple[ActivityWorker, threading.Thread, io.StringIO]:
    log = io.StringIO()
    worker = ActivityWorker(
        sfn,
        ARN,
        handler_for(task),
        worker_name="test-worker",
        log=log,
        sleep=lambda seconds: None,
        **options,
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()), daemon=True)
    thread.start()
    thread.result = result  # type: ignore[attr-defined]
    return worker, thread, log


def stop(worker: ActivityWorker, thread: threading.Thread, timeout: float = 5.0) -> int:
    worker.stop()
    thread.join(timeout)
    assert not thread.is_alive(), "worker did not stop"
    return thread.result[0]  # type: ignore[attr-defined]


def task_lines(log: io.StringIO) -> list[dict]:
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    return [record for record in records if record["event"] == "task"]


# ---- answers ----------------------------------------------------------------------------


# ---- the `activity` command -------------------------------------------------------------


def test_activity_command_exits_0_on_sigterm() -> None:
    # The endpoint refuses connections, so the worker backs off between polls.
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "message_adapter",
            "activity",
            "--activity-arn",
            ARN,
            "--exec",
            "cat",
        ],
        stderr=subprocess.PIPE,
        env=env,
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.decode().splitlines()]
    assert events[0] == "worker_started" and events[-1] == "worker_stopped"
