"""The WorkflowError rules: which task failures continue the workflow instead of failing it.

A task that fails with a "WorkflowError" does not fail its step: the client returns the
incoming message with ``payload: null`` and ``exception`` set, and the workflow's Choice
states decide what follows. Each published client has its own test for such an error,
and ``run`` and ``activity`` apply the rule of the client the task would use on Lambda:

- Python tasks (nasa/cumulus-message-adapter-python): the exception's first argument is a
  string containing ``WorkflowError``; ``exception`` is that whole string.
- Node tasks (@cumulus/cumulus-message-adapter-js): the error's ``name`` contains
  ``WorkflowError``; ``exception`` is that name.
- ``--exec`` tasks (the task protocol): the name in the task's last stderr line contains
  ``WorkflowError``, as for Node; ``exception`` is that name.
"""

from typing import Any

MARKER = "WorkflowError"


def python_workflow_error(error: BaseException) -> str | None:
    """The ``exception`` value the Python client records for ``error``, or ``None``."""
    first = error.args[0] if error.args else None
    return first if isinstance(first, str) and MARKER in first else None


def named_workflow_error(name: Any) -> str | None:
    """The ``exception`` value for an error called ``name`` (Node and ``--exec``), or ``None``."""
    return name if isinstance(name, str) and MARKER in name else None


def workflow_error_message(incoming: Any, exception: str) -> dict:
    """The incoming message with ``payload: null`` and ``exception`` set, as clients return it."""
    base = incoming if isinstance(incoming, dict) else {}
    return {**base, "payload": None, "exception": exception}
