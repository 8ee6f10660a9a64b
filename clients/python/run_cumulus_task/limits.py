"""Step Functions' limit on what a task returns, checked before Lambda returns it.

A next message over 256 KiB makes the execution fail later with an opaque
``States.DataLimitExceeded``; the client fails the invocation instead, naming the size,
the limit and the fix (``ReplaceConfig``), as the adapter's activity worker does.
"""

from __future__ import annotations

import os
from typing import Any

from run_cumulus_task.errors import MessageTooLargeError
from run_cumulus_task.sidecar import encode

STEP_FUNCTIONS_LIMIT = 256 * 1024
"""Bytes of UTF-8 JSON a state's output may hold."""
LIMIT_VARIABLE = "CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES"


def output_limit(environ: Any = None) -> int:
    """The largest next message allowed, in bytes; 0 means no check.

    Step Functions' limit unless ``CUMULUS_MESSAGE_ADAPTER_MAX_OUTPUT_BYTES`` says otherwise
    (for tasks run outside Step Functions).
    """
    env = os.environ if environ is None else environ
    text = env.get(LIMIT_VARIABLE)
    if not text:
        return STEP_FUNCTIONS_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(
            f"{LIMIT_VARIABLE}={text!r} is not a number of bytes (0 for no limit); unset it "
            f"for Step Functions' limit ({STEP_FUNCTIONS_LIMIT})"
        )
    return limit


def check_output_size(size: int, limit: int) -> None:
    """Raise ``MessageTooLargeError`` when ``size`` bytes of JSON exceed ``limit`` (not 0)."""
    if limit and size > limit:
        raise MessageTooLargeError(
            f"the next message is {size} bytes of JSON, over Step Functions' limit of "
            f"{limit} bytes for a state's output ({LIMIT_VARIABLE}); set ReplaceConfig in the "
            'task\'s parameters (e.g. "ReplaceConfig": {"Path": "$.payload", "TargetPath": '
            '"$.payload", "MaxSize": 100000}) so the adapter stores the large part in S3 '
            "and passes a reference",
            "MessageTooLargeError",
            "createNextEvent",
        )


def check_message_size(message: Any, limit: int) -> None:
    """``check_output_size`` for a message not yet encoded (in-process mode).

    Encoding costs about 0.4 ns a byte with msgspec; a value JSON cannot hold is left to
    the checks of the task's output.
    """
    if not limit:
        return
    try:
        size = len(encode(message))
    except (TypeError, ValueError, OverflowError):
        return
    check_output_size(size, limit)
