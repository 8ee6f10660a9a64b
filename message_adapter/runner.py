"""Run one Cumulus message through the adapter and a task: the core of ``run`` and ``activity``.

``run_message`` is the whole flow: loadAndUpdateRemoteEvent, loadNestedEvent, the task,
createNextEvent. The rules around it are pure functions: the clients' WorkflowError rule
(``is_workflow_error`` / ``workflow_error_message``) and the shaping of a Step Functions
answer (``answer_for``), so both edges behave alike and the rules are tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from message_adapter.commands import Adapter
from message_adapter.jsonio import dumps
from message_adapter.task import Task, error_name

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


def is_workflow_error(name: str) -> bool:
    """The clients' rule: an error whose name contains ``WorkflowError`` continues the flow."""
    return "WorkflowError" in name


def workflow_error_message(incoming: Any, name: str) -> dict:
    """The incoming message with ``payload: null`` and ``exception: <name>``, as the Node
    client returns it when a task raises a WorkflowError."""
    base = incoming if isinstance(incoming, dict) else {}
    return {**base, "payload": None, "exception": name}


def run_message(
    adapter: Adapter, task: Task, message: Any, context: Any = None, schemas: Any = None
) -> RunResult:
    """The next message for ``message``; raises the task's or the adapter's error unless
    its name contains WorkflowError."""
    try:
        full = adapter.load_and_update_remote_event(message, context)
        nested = adapter.load_nested_event(full, schemas)
        message_config = nested.pop("messageConfig", None)
        response = task(nested, context)
        return RunResult(adapter.create_next_event(full, response, message_config, schemas))
    except Exception as error:
        name = error_name(error)
        if is_workflow_error(name):
            return RunResult(workflow_error_message(message, name), name)
        raise


def trim(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    marker = "… (trimmed)"
    return text[: limit - len(marker)] + marker


def failure(name: str, message: str) -> Answer:
    """A SendTaskFailure answer within Step Functions' limits."""
    return Answer(error=trim(name or "Error", MAX_ERROR_CHARS),
                  cause=trim(message, MAX_CAUSE_CHARS))


def describe_error(error: BaseException) -> tuple[str, str]:
    """``(name, message)`` of an error, the message on one line."""
    message = getattr(error, "message", None)
    if not isinstance(message, str) or not message:
        message = str(error) or type(error).__name__
    return error_name(error), " ".join(message.split())


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
    return failure(*describe_error(error))
