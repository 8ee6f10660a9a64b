"""Workflows on LocalStack's Step Functions whose Task states are served by the worker."""

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    TASKS,
    activity_state,
    create_state_machine,
    cumulus_message,
    history,
    start_execution,
    unique,
    wait_execution,
)
from tests.e2e.localstack_server import CACHE
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

COUNT_TASK = Path(__file__).resolve().parent / "count_task.py"


def new_activity(sfn: Any) -> str:
    return sfn.create_activity(name=unique("act"))["activityArn"]


def test_three_steps_offload_and_reload_the_payload(sfn, s3, bucket, workers) -> None:
    make, count, report = (new_activity(sfn) for _ in range(3))
    workers(make, f"{TASKS}:make_granules")
    workers(count, "--exec", f"{sys.executable} {COUNT_TASK}")
    workers(report, f"{TASKS}:report")
    machine = create_state_machine(
        sfn,
        {
            "Make": activity_state(
                make,
                {"count": "{$.meta.count}"},
                "Count",
                ReplaceConfig={"Path": "$.payload", "MaxSize": 1000},
            ),
            "Count": activity_state(count, {}, "Report"),
            "Report": activity_state(report, {"collection": "{$.meta.collection}"}),
        },
        "Make",
    )
    execution = start_execution(
        sfn, machine, cumulus_message(bucket, count=50, collection="MOD09GQ")
    )
    done = wait_execution(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["payload"] == {"count": 50, "first": "g0", "collection": "MOD09GQ"}
    assert "replace" not in output
    assert [task["arn"] for task in output["meta"]["workflow_tasks"].values()] == [
        make,
        count,
        report,
    ]
    stored = s3.list_objects_v2(Bucket=bucket, Prefix="events/").get("Contents", [])
    assert len(stored) == 1, "step 1 offloaded its payload to S3"


def test_failing_task_fails_the_execution_with_its_error_name(sfn, bucket, workers) -> None:
    activity = new_activity(sfn)
    workers(activity, f"{TASKS}:corrupt")
    machine = create_state_machine(sfn, {"Check": activity_state(activity, {})}, "Check")
    done = wait_execution(sfn, start_execution(sfn, machine, cumulus_message(bucket)))
    assert done["status"] == "FAILED"
    failed = [
        event for event in history(sfn, done["executionArn"]) if event["type"] == "ActivityFailed"
    ]
    assert failed[0]["activityFailedEventDetails"]["error"] == "GranuleCorrupt"
    assert "checksum mismatch" in failed[0]["activityFailedEventDetails"]["cause"]


def test_workflow_error_continues_the_workflow_with_exception(sfn, bucket, workers) -> None:
    activity = new_activity(sfn)
    workers(activity, f"{TASKS}:no_granules")
    machine = create_state_machine(
        sfn,
        {
            "Discover": activity_state(activity, {}, "Next"),
            "Next": {"Type": "Pass", "End": True},
        },
        "Discover",
    )
    done = wait_execution(sfn, start_execution(sfn, machine, cumulus_message(bucket)))
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert (output["payload"], output["exception"]) == (None, "NoGranulesWorkflowError")


def test_sigterm_during_a_task_still_answers_it(sfn, bucket, workers) -> None:
    activity = new_activity(sfn)
    worker = workers(activity, f"{TASKS}:slow", concurrency=1, grace=30, heartbeat=0.5)
    # The task takes 3 s, longer than HeartbeatSeconds: only heartbeats keep it alive.
    state = activity_state(activity, {"seconds": 3}, heartbeat_seconds=2)
    machine = create_state_machine(sfn, {"Slow": state}, "Slow")
    execution = start_execution(sfn, machine, cumulus_message(bucket))
    wait_until(
        lambda: any(event["type"] == "ActivityStarted" for event in history(sfn, execution)),
        timeout=30,
        step=0.1,
        what="the worker taking the task",
    )
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0
    done = wait_execution(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["payload"] == {"slept": True}
    assert [task["outcome"] for task in worker.tasks()] == ["succeeded"]


def test_two_workers_drain_200_executions_exactly_once(sfn, bucket, workers) -> None:
    total = 200
    activity = new_activity(sfn)
    pool = [workers(activity, f"{TASKS}:tag", concurrency=4, name=f"scale-{n}") for n in range(2)]
    machine = create_state_machine(sfn, {"Tag": activity_state(activity, {})}, "Tag")
    wait_until(
        lambda: all(
            any(record.get("event") == "worker_started" for record in worker.records())
            for worker in pool
        ),
        timeout=60,
        what="both workers started",
    )
    started = time.monotonic()
    executions = []
    for n in range(total):
        message = cumulus_message(bucket)
        message["payload"] = {"n": n}
        executions.append(start_execution(sfn, machine, message))
    results = [wait_execution(sfn, arn, timeout=300) for arn in executions]
    elapsed = time.monotonic() - started
    failed = [result["executionArn"] for result in results if result["status"] != "SUCCEEDED"]
    problems = [
        record
        for worker in pool
        for record in worker.records()
        if record.get("level") != "info" or record.get("outcome") not in (None, "succeeded")
    ]
    assert not failed, (
        f"{len(failed)} failed, in {elapsed:.1f} s; first: "
        f"{history(sfn, failed[0])[-3:]}; worker problems: {problems[:5]}"
    )
    assert [json.loads(result["output"])["payload"]["n"] for result in results] == list(
        range(total)
    )
    tasks = [task for worker in pool for task in worker.tasks()]
    assert len(tasks) == total and {task["outcome"] for task in tasks} == {"succeeded"}
    assert len({task["token"] for task in tasks}) == total, "no task answered twice"
    assert all(worker.tasks() for worker in pool), "both processes took tasks"
    for arn in executions[:20]:  # each execution: one task scheduled, started, succeeded
        kinds = [event["type"] for event in history(sfn, arn)]
        assert [
            kinds.count(kind)
            for kind in ("ActivityScheduled", "ActivityStarted", "ActivitySucceeded")
        ] == [1, 1, 1]
    rate = total / elapsed
    sys.stderr.write(
        f"\nthroughput: {total} executions in {elapsed:.1f} s = "
        f"{rate:.1f} executions/s (2 workers x concurrency 4)\n"
    )
    report = CACHE / "throughput.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(f"{total} executions in {elapsed:.1f} s = {rate:.1f} executions/s\n")
