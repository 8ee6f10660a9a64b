"""SIGTERM and SIGINT for the activity worker, from its first moment to its last.

The worker spends its first seconds importing (botocore, the task's own modules) and
making clients; a signal then must not kill it mid-way with no word (exit -15, no log
line). ``StopSignals`` is made before any of that, and this module imports nothing
slow, so the handlers are in place within milliseconds of the process starting.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from message_adapter.tasks.worker import ActivityWorker


class StopRequested(BaseException):
    """SIGTERM or SIGINT came while the worker was starting. A ``BaseException``, like
    ``KeyboardInterrupt``, so the task's import code does not catch it by accident."""


class StopSignals:
    """SIGTERM and SIGINT for the worker's whole life; make it before anything slow.

    Until ``attach``, the first signal raises ``StopRequested`` wherever the main thread
    is (an import, a client being made). Once attached, a signal stops the worker, and a
    second one ends its grace period at once. The signals are unblocked too, in case the
    process inherited them blocked: the worker's contract is to stop on SIGTERM.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: list[int] = []
        self._worker: ActivityWorker | None = None
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)

    def attach(self, worker: ActivityWorker) -> None:
        """From now on a signal stops ``worker`` (at once, if one came and was swallowed)."""
        self._worker = worker
        if self.received:
            worker.stop()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self._worker is not None:
            self._worker.stop(now=len(self.received) > 1)
        elif len(self.received) == 1:
            raise StopRequested(signal.Signals(signum).name)
