"""Helpers of the end-to-end tests: workers as subprocesses, and Step Functions state
machines, executions and their histories on LocalStack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.localstack_server import LocalStack

REPO = Path(__file__).resolve().parents[2]


TASKS = Path(__file__).resolve().parent / "tasks.py"


ROLE = "arn:aws:iam::000000000000:role/cumulus-e2e"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Worker:
    """A ``cumulus-message-adapter activity`` process; its stderr (the log) goes to a file."""

    def __init__(
        self,
        localstack: LocalStack,
        activity_arn: str,
        *task_args: str,
        concurrency: int = 1,
        heartbeat: float | None = None,
        grace: float = 30,
        name: str | None = None,
    ) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="worker-", suffix=".log", delete=False
        )
        args = [
            sys.executable,
            "-m",
            "message_adapter",
            "activity",
            "--activity-arn",
            activity_arn,
            "--concurrency",
            str(concurrency),
            "--grace",
            str(grace),
            *task_args,
        ]
        if heartbeat:
            args += ["--heartbeat", str(heartbeat)]
        if name:
            args += ["--worker-name", name]
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env=localstack.aws_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )

    def records(self) -> list[dict]:
        lines = Path(self.log.name).read_text(errors="replace").splitlines()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"event": "text", "text": line})
        return records

    def tasks(self) -> list[dict]:
        return [record for record in self.records() if record.get("event") == "task"]

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def close(self) -> None:
        self.kill()
        self.log.close()
        os.unlink(self.log.name)


def activity_state(
    activity_arn: str,
    task_config: dict,
    next_state: str | None = None,
    heartbeat_seconds: int | None = None,
    **cma: Any,
) -> dict:
    """A Cumulus Task state: the message goes in as ``cma.event`` (Step Functions
    parameters), with task_config and any ReplaceConfig beside it.

    HeartbeatSeconds is set only for slow tasks: LocalStack 2026.3.0 accepts heartbeats
    only when it is set, but then loses an answer that arrives before its interpreter
    has recorded ActivityStarted (it waits for a heartbeat that never comes and times
    the state out), which a fast task under load does.
    """
    state = {
        "Type": "Task",
        "Resource": activity_arn,
        "Parameters": {"cma": {"event.$": "$", "task_config": task_config, **cma}},
        "TimeoutSeconds": 120,
    }
    if heartbeat_seconds is not None:
        state["HeartbeatSeconds"] = heartbeat_seconds
    if next_state:
        state["Next"] = next_state
    else:
        state["End"] = True
    return state


def create_state_machine(sfn: Any, states: dict, start_at: str) -> str:
    definition = {"StartAt": start_at, "States": states}
    return sfn.create_state_machine(
        name=unique("sm"), definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]


def cumulus_message(bucket: str, **meta: Any) -> dict:
    return {
        "cumulus_meta": {
            "system_bucket": bucket,
            "execution_name": unique("ex"),
            "state_machine": "e2e",
        },
        "meta": meta,
        "payload": {},
        "exception": "None",
    }


def start_execution(sfn: Any, state_machine: str, message: dict) -> str:
    return sfn.start_execution(
        stateMachineArn=state_machine, name=unique("ex"), input=json.dumps(message)
    )["executionArn"]


def wait_execution(sfn: Any, execution_arn: str, timeout: float = 60) -> dict:
    """describe_execution once the execution has left RUNNING."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.2)
    raise AssertionError(f"{execution_arn} still RUNNING after {timeout} s")


def history(sfn: Any, execution_arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events
