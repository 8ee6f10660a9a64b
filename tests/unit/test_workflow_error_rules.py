"""The adapter's WorkflowError rule for Python tasks is the Python client's own rule.

``run`` and ``activity`` decide with ``message_adapter.tasks.workflow_errors`` whether a
task's exception continues the workflow; a task deployed with the Python client
(clients/python, ``run_cumulus_task``) gets the client's decision. Both must agree on
every kind of exception, or a task would pass locally and fail on Lambda (or the reverse).
The Node rule is checked against the Node client in tests/node.
"""

from typing import Any

import pytest

from message_adapter.tasks.workflow_errors import python_workflow_error, workflow_error_message


class NoGranulesWorkflowError(Exception):
    """A class named like a WorkflowError: the Python client looks at the message only."""


EXCEPTIONS = [
    Exception("NoGranulesWorkflowError"),
    Exception("NoGranulesWorkflowError: the search found no granules"),
    ValueError("a WorkflowError in the middle"),
    KeyError("WorkflowError"),
    Exception("WorkflowError", "a second argument"),
    Exception("workflowerror"),
    Exception("GranuleCorrupt: checksum mismatch"),
    NoGranulesWorkflowError("no granules"),
    NoGranulesWorkflowError(),
    Exception(),
    Exception(42),
    Exception(b"NoGranulesWorkflowError"),
    Exception(["NoGranulesWorkflowError"]),
]


def python_client_decision(error: Exception, message: Any) -> Any:
    """What the Python client returns for ``error``: a message, or ``None`` if it re-raises."""
    from run_cumulus_task import _workflow_error_message

    try:
        return _workflow_error_message(error, message)
    except Exception as raised:
        assert raised is error
        return None


@pytest.mark.parametrize("error", EXCEPTIONS, ids=repr)
def test_adapter_and_python_client_agree(error: Exception) -> None:
    message = {"cumulus_meta": {"execution_name": "e1"}, "payload": {"granules": []}}
    exception = python_workflow_error(error)
    expected = None if exception is None else workflow_error_message(message, exception)
    assert python_client_decision(error, message) == expected


def test_the_table_has_both_outcomes() -> None:
    outcomes = {python_workflow_error(error) is None for error in EXCEPTIONS}
    assert outcomes == {True, False}
