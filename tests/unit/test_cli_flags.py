"""The fast path in ``cli.main`` and the click commands in ``cli.app`` accept the same flags.

``main`` serves ``stream`` and the single commands without click, from the flag sets
declared in ``message_adapter.cli``; click declares the same commands for ``--help`` and
for everything else. If the two drifted apart, a flag would work or fail depending on
which path a command line happened to take.
"""

import pytest

from message_adapter.cli import SINGLE_COMMAND_FLAGS, STREAM_FLAGS
from message_adapter.cli.app import cli
from message_adapter.sidecar.commands import COMMANDS


def click_flags(name: str) -> set[str]:
    """Every option string of the click command ``name`` (``--help`` aside)."""
    assert name in cli.commands, f"the fast path serves {name}, which click does not declare"
    command = cli.commands[name]
    flags = set()
    for param in command.params:
        assert getattr(param, "is_flag", False), f"{name} {param.opts}: the fast path has no values"
        flags.update(param.opts, param.secondary_opts)
    return flags


def test_stream_flags_are_the_click_stream_options() -> None:
    assert click_flags("stream") == set(STREAM_FLAGS)


@pytest.mark.parametrize("command", COMMANDS)
def test_single_command_flags_are_the_click_command_options(command: str) -> None:
    assert click_flags(command) == set(SINGLE_COMMAND_FLAGS)
