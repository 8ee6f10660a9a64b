"""The unit group stays in-process: a unit test that starts a process, opens a server or
connects anywhere fails at once, naming what it tried. Such tests belong in
tests/functional."""

import os
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"a unit test tried to {what}; unit tests run in-process only "
            "(move this test to tests/functional)"
        )

    return refused


@pytest.fixture(autouse=True)
def in_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No subprocess, no listening socket, no outgoing connection in tests/unit."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("start a subprocess"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"start a process (os.{name})"))
    monkeypatch.setattr(socket.socket, "listen", _refuse("start a server (socket.listen)"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a connection (socket.connect)"))
    monkeypatch.setattr(
        socket.socket, "connect_ex", _refuse("open a connection (socket.connect_ex)")
    )
