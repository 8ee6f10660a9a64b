"""Run one Cumulus message through the adapter and a task: the core of ``run`` and ``activity``.

``run_message`` is the whole flow: loadAndUpdateRemoteEvent, loadNestedEvent, the task,
createNextEvent. A task failure that its client's WorkflowError rule accepts (see
``workflow_errors``) continues the workflow. The shaping of a Step Functions answer
(``answer_for``) is a pure function here, so ``run`` and the worker behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from message_adapter.errors import TaskOutputError, describe
from message_adapter.jsonio import dumps
from message_adapter.logs import task_environment
from message_adapter.sidecar.commands import Adapter
from message_adapter.tasks.loading import Task, call_task
from message_adapter.tasks.output import output_problem
from message_adapter.tasks.workflow_errors import python_workflow_error, workflow_error_message

# Step Functions' limits for SendTaskSuccess output and SendTaskFailure error/cause.
MAX_OUTPUT_BYTES = 256 * 1024
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32768


@dataclass(frozen=True)
class RunResult:
    """The next message, and the WorkflowError name when the task raised one."""

    message: Any
    workflow_error: str | None = None


@dataclass(frozen=True)
class Answer:
    """What to tell Step Functions about one task: output on success, else error and cause."""

    output: str | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.output is not None


def run_message(
    adapter: Adapter, task: Task, message: Any, context: Any = None, schemas: Any = None
) -> RunResult:
    """The next message for ``message``.

    Adapter errors propagate; so does a task's error, unless the task's WorkflowError rule
    (its ``workflow_error`` method, else the Python client's rule) accepts it. The task
    runs with ``EXECUTIONS``, ``GRANULES``, ... set from the message, as the Node client
    sets them for ``@cumulus/logger``. A result that is not JSON is a ``TaskOutputError``
    (see ``output``).
    """
    full = adapter.load_and_update_remote_event(event=message, context=context)
    nested = adapter.load_nested_event(event=full, schemas=schemas)
    message_config = nested.pop("messageConfig", None)
    try:
        response = call_task(task, nested, context, task_environment(full, context))
    except Exception as error:
        rule = getattr(task, "workflow_error", python_workflow_error)
        exception = rule(error)
        if exception is None:
            raise
        return RunResult(workflow_error_message(message, exception), exception)
    problem = output_problem(response)
    if problem is not None:
        raise TaskOutputError(problem)
    return RunResult(
        adapter.create_next_event(
            event=full, handler_response=response, message_config=message_config, schemas=schemas
        )
    )


def trim(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    marker = "… (trimmed)"
    return text[: limit - len(marker)] + marker


def failure(name: str, message: str) -> Answer:
    """A SendTaskFailure answer within Step Functions' limits."""
    return Answer(
        error=trim(name or "Error", MAX_ERROR_CHARS), cause=trim(message, MAX_CAUSE_CHARS)
    )


def answer_for(result: RunResult) -> Answer:
    """SendTaskSuccess with the next message, or a failure when it is over 256 KB."""
    output = dumps(result.message)
    if len(output) > MAX_OUTPUT_BYTES:
        return failure(
            "MessageTooLargeError",
            f"the next message is {len(output)} bytes of JSON, over Step Functions' limit of "
            f"{MAX_OUTPUT_BYTES} bytes; set ReplaceConfig in the task's parameters (e.g. "
            '"ReplaceConfig": {"Path": "$.payload", "TargetPath": "$.payload", "MaxSize": '
            "100000}) so the adapter stores the large part in S3 and passes a reference",
        )
    return Answer(output=output.decode("utf-8"))


def answer_for_error(error: BaseException) -> Answer:
    """SendTaskFailure with the error's name and message."""
    info = describe(error)
    return failure(info["name"], info["message"])
