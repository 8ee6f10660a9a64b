"""The activity worker against an in-memory Step Functions (moto has no GetActivityTask)."""

import datetime
import io
import json
import sys
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from message_adapter.errors import ConfigurationError
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore
from message_adapter.tasks.runner import run_message
from message_adapter.tasks.worker import (
    ActivityWorker,
    activity_name,
    arn_region,
    aws_session,
    backoff_delay,
    is_transient,
    token_digest,
)
from tests.helpers import wait_until

ARN = "arn:aws:states:us-east-1:000000000000:activity:ingest"


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


class FakeStepFunctions:
    """Tasks go in with ``add``; polls wait up to ``poll_wait`` s; answers are recorded."""

    def __init__(self, poll_wait: float = 0.02) -> None:
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


def handler_for(task):
    adapter = Adapter(MemoryStore())
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


def test_task_success_sends_the_next_message() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: event["input"] * 2)
    sfn.add("t1", {"payload": 21})
    assert sfn.wait_answers(1) == [("success", "t1", {"payload": 42, "exception": "None"})]
    assert stop(worker, thread) == 0


def test_task_error_sends_failure_with_name_and_message() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: {}["granuleId"])
    sfn.add("t1", {"payload": 1})
    assert sfn.wait_answers(1) == [("failure", "t1", ("KeyError", "'granuleId'"))]
    stop(worker, thread)


def test_workflow_error_continues_the_workflow_with_exception_set() -> None:
    def task(event: Any, context: Any) -> Any:
        raise Exception("NoGranulesWorkflowError")

    sfn = FakeStepFunctions()
    worker, thread, log = start(sfn, task)
    sfn.add("t1", {"payload": 1})
    assert sfn.wait_answers(1) == [
        ("success", "t1", {"payload": None, "exception": "NoGranulesWorkflowError"})
    ]
    stop(worker, thread)
    assert task_lines(log)[0]["outcome"] == "workflow_error"


def test_result_that_is_not_json_fails_with_task_output_error() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: {"when": datetime.date(2020, 1, 1)})
    sfn.add("t1", {})
    [(kind, _, (error, cause))] = sfn.wait_answers(1)
    assert (kind, error) == ("failure", "TaskOutputError")
    assert cause.startswith("the task's result is not JSON: $.when is of type datetime.date")
    stop(worker, thread)


def test_output_over_the_limit_fails_pointing_at_replace_config() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: "x" * 300_000)
    sfn.add("t1", {})
    [(kind, _, (error, cause))] = sfn.wait_answers(1)
    assert (kind, error) == ("failure", "MessageTooLargeError") and "ReplaceConfig" in cause
    stop(worker, thread)


def test_input_that_is_not_json_is_answered_with_a_failure() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: 1)
    with sfn.cond:
        sfn.queue.append(("t1", "{not json"))
    [(kind, token, (error, cause))] = sfn.wait_answers(1)
    assert (kind, token, error) == ("failure", "t1", "MessageError")
    assert "the activity task's input is not JSON" in cause
    stop(worker, thread)


def test_task_calling_sys_exit_is_answered_with_a_failure() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: sys.exit(3))
    sfn.add("t1", {})
    assert sfn.wait_answers(1) == [("failure", "t1", ("SystemExit", "3"))]
    assert stop(worker, thread) == 0


def test_every_task_is_answered_exactly_once() -> None:
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: event["input"], concurrency=4)
    for n in range(50):
        sfn.add(f"t{n}", {"payload": n})
    answers = sfn.wait_answers(50)
    stop(worker, thread)
    assert sorted(token for _, token, _ in sfn.answers) == sorted(f"t{n}" for n in range(50))
    assert all(output["payload"] == int(token[1:]) for _, token, output in answers)


# ---- concurrency and heartbeats -----------------------------------------------------------


def test_concurrency_runs_that_many_tasks_at_once() -> None:
    barrier = threading.Barrier(3, timeout=5)
    sfn = FakeStepFunctions()
    worker, thread, _ = start(sfn, lambda event, context: barrier.wait() >= 0, concurrency=3)
    for n in range(3):
        sfn.add(f"t{n}", {})
    assert [kind for kind, _, _ in sfn.wait_answers(3)] == ["success"] * 3
    stop(worker, thread)


def test_heartbeats_are_sent_while_a_task_runs() -> None:
    sfn = FakeStepFunctions()
    ran_for: list[float] = []

    def task(event: Any, context: Any) -> None:
        started = time.monotonic()
        wait_until(lambda: len(sfn.heartbeats) >= 3)
        ran_for.append(time.monotonic() - started)

    others = set(threading.enumerate())
    worker, thread, _ = start(sfn, task, heartbeat=0.05)
    sfn.add("t1", {})
    sfn.wait_answers(1)
    beats = len(sfn.heartbeats)
    stop(worker, thread)
    wait_until(
        lambda: not [t for t in threading.enumerate() if t not in others and t.name == "heartbeat"],
        what="the heartbeat thread ending",
    )
    assert set(sfn.heartbeats) == {"t1"}
    assert beats <= ran_for[0] / 0.05 + 2, "no more than one heartbeat per interval"
    assert len(sfn.heartbeats) == beats, "no heartbeat after the answer"


# ---- stopping ---------------------------------------------------------------------------


def test_stop_lets_a_running_task_finish_and_answers_it() -> None:
    sfn = FakeStepFunctions()
    started, release = threading.Event(), threading.Event()
    worker, thread, _ = start(
        sfn, lambda e, c: started.set() or release.wait(5) and "done", grace=5
    )
    sfn.add("t1", {})
    assert started.wait(5)
    worker.stop()
    release.set()
    assert stop(worker, thread) == 0
    assert sfn.answers == [("success", "t1", {"payload": "done", "exception": "None"})]


def test_task_still_running_at_the_deadline_is_failed_once() -> None:
    sfn = FakeStepFunctions()
    release, started = threading.Event(), threading.Event()
    worker, thread, log = start(sfn, lambda e, c: started.set() or release.wait(10), grace=0.2)
    sfn.add("t1", {})
    started.wait(5)
    assert stop(worker, thread) == 0
    [(kind, token, (error, cause))] = sfn.answers
    assert (kind, token, error) == ("failure", "t1", "WorkerShutdownError")
    assert "0.2 s grace" in cause
    release.set()
    wait_until(lambda: [line for line in task_lines(log) if line["outcome"] == "late"])
    assert len(sfn.answers) == 1, "the late finish must not answer again"


def test_deadline_kills_task_commands() -> None:
    sfn, killed = FakeStepFunctions(), threading.Event()
    release, started = threading.Event(), threading.Event()
    worker, thread, _ = start(
        sfn, lambda e, c: started.set() or release.wait(10), grace=0.1, on_deadline=killed.set
    )
    sfn.add("t1", {})
    started.wait(5)
    stop(worker, thread)
    release.set()
    assert killed.is_set()


def test_task_delivered_by_a_poll_in_flight_at_stop_is_run() -> None:
    sfn = FakeStepFunctions(poll_wait=5.0)
    worker, thread, _ = start(sfn, lambda e, c: "ran", grace=5)
    wait_until(lambda: sfn.polls == 1)  # the poll is waiting now
    worker.stop()
    sfn.add("t1", {})
    thread.join(5)
    assert sfn.answers == [("success", "t1", {"payload": "ran", "exception": "None"})]


def test_task_delivered_after_the_deadline_is_failed_without_running() -> None:
    sfn = FakeStepFunctions(poll_wait=5.0)
    ran, deadline_passed = [], threading.Event()
    worker, thread, _ = start(
        sfn, lambda e, c: ran.append(1), grace=0, on_deadline=deadline_passed.set
    )
    wait_until(lambda: sfn.polls == 1)
    worker.stop()
    assert deadline_passed.wait(5), "the deadline passes while the poll still waits"
    sfn.add("t1", {})
    thread.join(5)
    assert not thread.is_alive() and ran == []
    assert [(kind, error) for kind, _, (error, _) in sfn.answers] == [
        ("failure", "WorkerShutdownError")
    ]


def test_no_poll_starts_after_stop() -> None:
    sfn = FakeStepFunctions()
    others = set(threading.enumerate())
    worker, thread, _ = start(sfn, lambda e, c: 1, concurrency=2)
    wait_until(lambda: sfn.polls >= 2)
    stop(worker, thread)
    polls = sfn.polls
    slots = [t for t in threading.enumerate() if t not in others and t.name.startswith("slot-")]
    assert slots == [], "a slot that is still alive could start another poll"
    assert sfn.polls == polls


# ---- retries and errors -----------------------------------------------------------------


def test_throttled_answer_is_retried() -> None:
    sfn = FakeStepFunctions()
    sfn.fail_next(
        "send_task_success",
        client_error("ThrottlingException"),
        client_error("ServiceUnavailable", 503),
    )
    worker, thread, log = start(sfn, lambda e, c: 1)
    sfn.add("t1", {})
    assert [kind for kind, _, _ in sfn.wait_answers(1)] == ["success"]
    stop(worker, thread)
    assert task_lines(log)[0]["answered"] is True


def test_rejected_answer_is_not_retried_and_is_logged() -> None:
    sfn = FakeStepFunctions()
    sfn.fail_next("send_task_success", client_error("TaskTimedOut"))
    worker, thread, log = start(sfn, lambda e, c: 1)
    sfn.add("t1", {})
    wait_until(lambda: task_lines(log))
    stop(worker, thread)
    assert sfn.answers == []
    assert task_lines(log)[0]["answered"] is False
    assert "TaskTimedOut" in log.getvalue()


def test_transient_poll_errors_back_off_and_polling_goes_on() -> None:
    sfn = FakeStepFunctions()
    sfn.fail_next(
        "get_activity_task",
        client_error("ThrottlingException"),
        EndpointConnectionError(endpoint_url="http://x"),
    )
    worker, thread, _ = start(sfn, lambda e, c: 1)
    sfn.add("t1", {})
    assert len(sfn.wait_answers(1)) == 1
    stop(worker, thread)


def test_missing_activity_stops_the_worker_with_status_1() -> None:
    sfn = FakeStepFunctions()
    sfn.fail_next("get_activity_task", client_error("ActivityDoesNotExist"))
    worker, thread, log = start(sfn, lambda e, c: 1)
    thread.join(5)
    assert thread.result == [1] and "ActivityDoesNotExist" in log.getvalue()


def test_worker_stopped_before_it_runs_never_polls_and_logs_only_its_stop() -> None:
    sfn = FakeStepFunctions()
    log = io.StringIO()
    worker = ActivityWorker(sfn, ARN, handler_for(lambda e, c: 1), worker_name="w", log=log)
    worker.stop()
    assert worker.run() == 0 and sfn.polls == 0
    assert [json.loads(line)["event"] for line in log.getvalue().splitlines()] == ["worker_stopped"]


# ---- AWS settings at start --------------------------------------------------------------


@pytest.fixture
def no_aws_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role lookup
    return monkeypatch


@pytest.mark.parametrize(
    ("arn", "region"),
    [
        ("arn:aws:states:eu-west-3:000000000000:activity:ingest", "eu-west-3"),
        ("arn:aws-us-gov:states:us-gov-west-1:000000000000:activity:a", "us-gov-west-1"),
        ("arn:aws:states::000000000000:activity:ingest", None),
        ("ingest", None),
    ],
)
def test_arn_region_is_the_fourth_part_of_an_arn(arn: str, region: str | None) -> None:
    assert arn_region(arn) == region


def test_session_region_is_the_arns_even_when_another_is_configured(no_aws_settings) -> None:
    no_aws_settings.setenv("AWS_REGION", "us-east-1")
    no_aws_settings.setenv("AWS_ACCESS_KEY_ID", "x")
    no_aws_settings.setenv("AWS_SECRET_ACCESS_KEY", "x")
    assert aws_session("arn:aws:states:eu-west-3:0:activity:a")[1] == "eu-west-3"
    assert aws_session("a")[1] == "us-east-1"


def test_session_without_a_region_is_a_configuration_error_saying_how(no_aws_settings) -> None:
    no_aws_settings.setenv("AWS_ACCESS_KEY_ID", "x")
    no_aws_settings.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with pytest.raises(ConfigurationError, match="no AWS region.*set AWS_REGION"):
        aws_session("ingest")


def test_session_without_credentials_is_a_configuration_error_saying_how(no_aws_settings) -> None:
    with pytest.raises(ConfigurationError, match="no AWS credentials.*AWS_ACCESS_KEY_ID"):
        aws_session(ARN)


def test_unknown_profile_is_a_configuration_error_naming_it(no_aws_settings) -> None:
    no_aws_settings.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(ConfigurationError, match=r"cannot be read: .*\(no-such-profile\)"):
        aws_session(ARN)


# ---- logs -------------------------------------------------------------------------------


def test_one_log_line_per_task_with_activity_digest_duration_and_outcome() -> None:
    sfn = FakeStepFunctions()
    worker, thread, log = start(sfn, lambda e, c: 1 / e["input"])
    sfn.add("secret-token-1", {"payload": 1})
    sfn.add("secret-token-2", {"payload": 0})
    sfn.wait_answers(2)
    stop(worker, thread)
    lines = task_lines(log)
    assert [line["outcome"] for line in lines] == ["succeeded", "failed"]
    assert lines[1]["error"] == "ZeroDivisionError"
    assert {line["activity"] for line in lines} == {"ingest"}
    assert [line["token"] for line in lines] == [
        token_digest("secret-token-1"),
        token_digest("secret-token-2"),
    ]
    assert all(line["duration_s"] >= 0 for line in lines)
    assert "secret-token" not in log.getvalue()


# ---- pure helpers -----------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    delays = [backoff_delay(attempt, base=0.5, cap=4, rand=lambda: 1.0) for attempt in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_is_jittered_below_the_exponential() -> None:
    assert backoff_delay(3, base=0.5, cap=20, rand=lambda: 0.25) == 1.0


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("ThrottlingException"), True),
        (client_error("InternalServerError", 500), True),
        (client_error("SomethingNew", 502), True),
        (client_error("TaskTimedOut"), False),
        (client_error("InvalidToken"), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ValueError("x"), False),
    ],
)
def test_transient_errors_are_throttling_5xx_and_connection_errors(error, transient) -> None:
    assert is_transient(error) is transient


def test_activity_name_is_the_last_part_of_the_arn() -> None:
    assert activity_name(ARN) == "ingest"


# ---- Cumulus-format lines -----------------------------------------------------------------


def test_task_line_is_cumulus_format_with_the_messages_fields() -> None:
    sfn = FakeStepFunctions()
    worker, thread, log = start(sfn, lambda event, context: {})
    sfn.add(
        "t1",
        {
            "cumulus_meta": {"execution_name": "ex-9", "parentExecutionArn": "arn:p"},
            "meta": {"stack": "prod"},
            "payload": {"granules": [{"granuleId": "g1"}]},
        },
    )
    sfn.wait_answers(1)
    stop(worker, thread)
    (line,) = task_lines(log)
    assert (line["level"], line["outcome"], line["sender"]) == (
        "info",
        "succeeded",
        worker.activity,
    )
    assert (line["executions"], line["stackName"], line["parentArn"]) == ("ex-9", "prod", "arn:p")
    assert json.loads(line["granules"]) == ["g1"]
    assert line["message"].startswith("task: ") and line["timestamp"].endswith("Z")


def test_a_failed_task_line_is_at_error_level() -> None:
    sfn = FakeStepFunctions()
    worker, thread, log = start(sfn, lambda event, context: {}["missing"])
    sfn.add("t1", {"payload": 1})
    sfn.wait_answers(1)
    stop(worker, thread)
    assert [(line["level"], line["error"]) for line in task_lines(log)] == [("error", "KeyError")]
