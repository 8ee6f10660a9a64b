"""A Step Functions activity worker: poll, run each task through the adapter, answer.

Threads, not processes: ``concurrency`` slots each long-poll ``GetActivityTask`` and run
the task they receive; a heartbeat thread beats for every running task; ``run()`` waits
for a stop request and then for the slots to drain. Every task a slot receives is
answered exactly once (``Job.claim``): by its slot, or with a failure by the shutdown
deadline, whichever comes first. Several processes on one activity never see the same
task token, since Step Functions hands each task to one poll.

Starting is the slow part (botocore, the task's own imports): ``stop_signals`` takes
SIGTERM and SIGINT before it, and ``aws_session`` checks the region and the credentials
before any task is polled for.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from message_adapter.aws import FATAL_POLL, backoff_delay, error_code, is_transient
from message_adapter.errors import ConfigurationError, MessageError
from message_adapter.jsonio import loads
from message_adapter.logs import Logger, message_fields
from message_adapter.tasks.runner import Answer, RunResult, answer_for, answer_for_error, failure
from message_adapter.tasks.worker_log import activity_name, default_worker_name, log_event

Handler = Callable[[Any], RunResult]


def token_digest(token: str) -> str:
    """A short, stable name for a task token, safe to log (the token itself is a secret)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def arn_region(activity_arn: str) -> str | None:
    """The region an ARN names (``arn:aws:states:REGION:ACCOUNT:activity:NAME``), or None."""
    parts = activity_arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" and parts[3] else None


@dataclass
class Job:
    """One received task; ``claim()`` returns True to exactly one would-be answerer."""

    token: str
    started: float
    last_beat: float
    answered: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        with self.lock:
            if self.answered:
                return False
            self.answered = True
            return True


class ActivityWorker:
    """Serves one activity until ``stop()``; see the module docstring."""

    def __init__(
        self,
        sfn: Any,
        activity_arn: str,
        handle: Handler,
        *,
        worker_name: str | None = None,
        concurrency: int = 1,
        heartbeat: float | None = None,
        grace: float = 30.0,
        on_deadline: Callable[[], None] | None = None,
        log: TextIO | None = None,
        answer_attempts: int = 8,
        sleep: Callable[[float], None] | None = None,
        poller: Any = None,
        log_fields: dict[str, Any] | None = None,
        region: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.sfn = sfn
        self.poller = poller or sfn
        self.region = region
        self.activity_arn = activity_arn
        self.activity = activity_name(activity_arn)
        self.handle = handle
        self.worker_name = worker_name or default_worker_name()
        self.concurrency = concurrency
        self.heartbeat = heartbeat
        self.grace = grace
        self.on_deadline = on_deadline
        self.log_stream = log
        self.logger = Logger(log, {"sender": self.activity, **(log_fields or {})})
        self.answer_attempts = answer_attempts
        self._sleep = sleep
        self._stopping = threading.Event()
        self._deadline: float | None = None
        self._deadline_passed = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._polling = 0
        self._fatal: str | None = None
        self._done = threading.Event()
        self.counts: dict[str, Any] = {
            "succeeded": 0,
            "workflow_error": 0,
            "failed": 0,
            "late": 0,
            "unanswered": 0,
        }

    # ---- control -------------------------------------------------------------------

    def stop(self, now: bool = False) -> None:
        """Stop starting polls; in-flight tasks get ``grace`` seconds (none if ``now``)."""
        with self._lock:
            deadline = time.monotonic() + (0.0 if now else self.grace)
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
        self._stopping.set()

    def run(self) -> int:
        """Serve until stopped and drained; 0 after a clean stop, 1 if polling was impossible."""
        if self._stopping.is_set():  # stopped before it began: nothing to drain
            self._done.set()
            self._log("worker_stopped", **self.counts)
            return 0
        where: dict[str, Any] = {"region": self.region} if self.region else {}
        self._log(
            "worker_started",
            **where,
            concurrency=self.concurrency,
            heartbeat=self.heartbeat,
            grace=self.grace,
        )
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in slots:
            thread.start()
        beats = None
        if self.heartbeat:
            beats = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            beats.start()
        while not self._stopping.wait(0.2):
            pass
        self._log("worker_stopping", in_flight=len(self._jobs), polls_in_flight=self._polling)
        while True:
            with self._lock:
                idle = self._polling == 0 and not any(
                    not job.answered for job in self._jobs.values()
                )
                slots_done = not any(thread.is_alive() for thread in slots)
            if idle and (slots_done or self._deadline_passed.is_set()):
                break
            if not self._deadline_passed.is_set() and time.monotonic() >= (self._deadline or 0):
                self._expire()
            time.sleep(0.05)
        self._done.set()
        self._log("worker_stopped", **self.counts)
        return 1 if self._fatal else 0

    # ---- slots ---------------------------------------------------------------------

    def _slot(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            with self._lock:
                self._polling += 1
            try:
                response = self.poller.get_activity_task(
                    activityArn=self.activity_arn, workerName=self.worker_name
                )
            except Exception as error:  # noqa: BLE001 - every poll error is logged and handled
                with self._lock:
                    self._polling -= 1
                if error_code(error) in FATAL_POLL:
                    self._fatal = f"{error_code(error)}: {error}"
                    self._log("poll_failed", level="error", error=self._fatal, fatal=True)
                    self.stop()  # running tasks still get the grace period
                    return
                self._log(
                    "poll_failed",
                    level="warning",
                    error=f"{type(error).__name__}: {error}",
                    transient=is_transient(error),
                )
                self._pause(backoff_delay(failures))
                failures += 1
                continue
            failures = 0
            token = response.get("taskToken") if isinstance(response, dict) else None
            if not token:
                with self._lock:
                    self._polling -= 1
                continue
            now = time.monotonic()
            job = Job(token, now, now)
            with self._lock:  # registered before the poll counts as finished: never unseen
                self._jobs[token] = job
                self._polling -= 1
            try:
                self._work(job, response.get("input"))
            finally:
                with self._lock:
                    self._jobs.pop(token, None)

    def _work(self, job: Job, raw_input: Any) -> None:
        outcome, error, fields = "succeeded", None, None
        if self._deadline_passed.is_set():
            answer = failure(
                "WorkerShutdownError",
                "the activity worker was shutting down when this task arrived; it was not run",
            )
        else:
            try:
                message = _decode_input(raw_input)
                fields = message_fields(message)
                result = self.handle(message)
                answer = answer_for(result)
                if result.workflow_error and answer.succeeded:
                    outcome, error = "workflow_error", result.workflow_error
            except BaseException as failure_error:  # noqa: BLE001 - sys.exit() too is an answer
                answer = answer_for_error(failure_error)
        if not answer.succeeded:
            outcome, error = "failed", answer.error
        if not job.claim():
            self._log_task(
                job,
                "late",
                answered=False,
                note="finished after the shutdown deadline had answered it",
                fields=fields,
            )
            return
        answered = self._answer(job, answer)
        self._log_task(job, outcome, error=error, answered=answered, fields=fields)

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stopping.wait(seconds)

    # ---- answers -------------------------------------------------------------------

    def _answer(self, job: Job, answer: Answer) -> bool:
        for attempt in range(self.answer_attempts):
            try:
                if answer.succeeded:
                    self.sfn.send_task_success(taskToken=job.token, output=answer.output)
                else:
                    self.sfn.send_task_failure(
                        taskToken=job.token, error=answer.error, cause=answer.cause
                    )
                return True
            except Exception as error:  # noqa: BLE001
                if not is_transient(error) or attempt + 1 == self.answer_attempts:
                    self._log(
                        "answer_failed",
                        level="error",
                        token=token_digest(job.token),
                        error=f"{error_code(error) or type(error).__name__}: {error}",
                    )
                    return False
                delay = backoff_delay(attempt)
                if self._sleep is not None:
                    self._sleep(delay)
                else:
                    time.sleep(delay)
        return False

    def _expire(self) -> None:
        """The grace period is over: fail every unanswered task, kill task commands."""
        self._deadline_passed.set()
        with self._lock:
            jobs = [job for job in self._jobs.values() if not job.answered]
        for job in jobs:
            if job.claim():
                answer = failure(
                    "WorkerShutdownError",
                    f"the activity worker was stopped and "
                    f"the task did not finish within the {self.grace:g} s grace "
                    "period; run it again",
                )
                answered = self._answer(job, answer)
                self._log_task(job, "failed", error="WorkerShutdownError", answered=answered)
        if self.on_deadline is not None:
            self.on_deadline()

    # ---- heartbeats ----------------------------------------------------------------

    def _beat(self) -> None:
        interval = float(self.heartbeat or 0)
        tick = max(0.05, min(1.0, interval / 4))
        while not self._done.wait(tick):
            now = time.monotonic()
            with self._lock:
                due = [
                    job
                    for job in self._jobs.values()
                    if not job.answered and now - job.last_beat >= interval
                ]
            for job in due:
                job.last_beat = now
                try:
                    self.sfn.send_task_heartbeat(taskToken=job.token)
                except Exception as error:  # noqa: BLE001 - a missed beat is only logged
                    self._log(
                        "heartbeat_failed",
                        level="warning",
                        token=token_digest(job.token),
                        error=f"{error_code(error) or type(error).__name__}: {error}",
                    )

    # ---- logs ----------------------------------------------------------------------

    def _log_task(
        self, job: Job, outcome: str, fields: dict[str, str] | None = None, **extra: Any
    ) -> None:
        duration = round(time.monotonic() - job.started, 3)
        with self._lock:
            self.counts[outcome] += 1
            if extra.get("answered") is False and outcome != "late":
                self.counts["unanswered"] += 1
        self._log(
            "task",
            level="info" if outcome in ("succeeded", "workflow_error") else "error",
            fields=fields,
            token=token_digest(job.token),
            duration_s=duration,
            outcome=outcome,
            **{k: v for k, v in extra.items() if v is not None},
        )

    def _log(
        self,
        event: str,
        level: str = "info",
        fields: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        log_event(self.logger, event, self.activity, self.worker_name, level, fields, **extra)


def aws_session(activity_arn: str) -> tuple[Any, str]:
    """``(botocore session, region)`` for serving ``activity_arn``, or a ``ConfigurationError``.

    The region is the one the ARN names (an activity lives in one region), else
    ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or the profile's, as for the AWS CLI.
    Credentials are resolved once here, by botocore's usual chain (environment, profile,
    container or instance role), so a worker without them stops at start instead of
    failing every poll.
    """
    import botocore.session
    from botocore.exceptions import BotoCoreError

    session = botocore.session.get_session()
    try:
        region = (
            arn_region(activity_arn)
            or os.environ.get("AWS_REGION")
            or session.get_config_variable("region")  # AWS_DEFAULT_REGION, the profile's
        )
        credentials = session.get_credentials()
    except BotoCoreError as error:  # an unknown AWS_PROFILE, a failing credential_process...
        raise ConfigurationError(f"the AWS settings cannot be read: {error}") from None
    if not region:
        raise ConfigurationError(
            f"no AWS region: the activity ARN {activity_arn!r} names none and none is "
            "configured; give the full ARN (arn:aws:states:REGION:ACCOUNT:activity:NAME) "
            "or set AWS_REGION"
        )
    if credentials is None:
        raise ConfigurationError(
            "no AWS credentials found (environment, AWS_PROFILE, shared credentials file, "
            "container or instance role); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE, or run with a role"
        )
    return session, region


def make_sfn_clients(
    concurrency: int, session: Any = None, region: str | None = None
) -> tuple[Any, Any]:
    """``(poller, answerer)``: Step Functions clients of ``session`` in ``region`` (by
    default, a new botocore session with the standard AWS settings, and its region).

    The poller never retries inside botocore: a retried GetActivityTask could hide a
    task delivered on a connection that then broke, so every poll error reaches the
    worker, which logs it and backs off. Its read timeout outlasts the 60 s long poll.
    The answerer (answers, heartbeats) retries throttling and transient errors itself.
    """
    from botocore.config import Config

    if session is None:
        import botocore.session

        session = botocore.session.get_session()
    poller = session.create_client(
        "stepfunctions",
        region_name=region,
        config=Config(
            read_timeout=70,
            connect_timeout=10,
            max_pool_connections=concurrency + 2,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )
    answerer = session.create_client(
        "stepfunctions",
        region_name=region,
        config=Config(
            connect_timeout=10,
            read_timeout=30,
            max_pool_connections=concurrency + 4,
            retries={"mode": "standard", "max_attempts": 5},
        ),
    )
    return poller, answerer


def _decode_input(raw_input: Any) -> Any:
    """The task's input (the Cumulus message); input that is not JSON is a MessageError."""
    try:
        return loads(raw_input if raw_input is not None else "null")
    except ValueError as error:
        raise MessageError(
            f"the activity task's input is not JSON ({error}); the state machine must pass "
            "the Cumulus message as the activity's input"
        ) from None
