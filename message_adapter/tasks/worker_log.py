"""The activity worker's log lines, and the names in them.

Apart from the worker, so the ``activity`` command can log a stop that comes while the
worker is still starting without importing anything then (an import cut short by the
signal may have left a module half made): this module and ``logs`` import only the
standard library.
"""

import os
import socket
from typing import Any

from message_adapter.logs import Logger


def activity_name(activity_arn: str) -> str:
    """The activity's name: the last part of its ARN."""
    return activity_arn.rsplit(":", 1)[-1]


def default_worker_name() -> str:
    """``<host>-<pid>``: unique per process, and recognisable in the activity's history."""
    return f"{socket.gethostname()}-{os.getpid()}"[:80]


def log_event(
    logger: Logger,
    event: str,
    activity: str,
    worker: str,
    level: str = "info",
    fields: dict[str, str] | None = None,
    **extra: Any,
) -> None:
    """One Cumulus-format line (see ``logs``) with the event and its details beside."""
    details = " ".join(f"{key}={value}" for key, value in extra.items() if key != "error")
    if extra.get("error"):
        details += f" error={extra['error']}"
    logger.log(
        level,
        f"{event}: {details}" if details else event,
        fields,
        event=event,
        activity=activity,
        worker=worker,
        **extra,
    )
