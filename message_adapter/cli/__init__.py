"""The ``cumulus-message-adapter`` command line.

``main`` serves the hot paths (``stream`` and the three single commands) by hand, so a
Lambda cold start does not pay for importing click; everything else (``--help``, and the
tools beside the adapter) goes through the click group in ``cli.app``. The flags the fast
path accepts are declared here once; a test checks them against the click commands.
"""

import sys

from message_adapter.sidecar.commands import COMMANDS
from message_adapter.sidecar.process import PROG

__all__ = ["PROG", "SINGLE_COMMAND_FLAGS", "STREAM_FLAGS", "main"]
STREAM_FLAGS = frozenset({"--structured-errors", "-v", "--verbose"})
SINGLE_COMMAND_FLAGS = frozenset({"-v", "--verbose"})


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m message_adapter``."""
    args = sys.argv[1:] if argv is None else argv
    flags = set(args[1:])
    if args and args[0] in COMMANDS and flags <= SINGLE_COMMAND_FLAGS:
        from message_adapter.sidecar.process import run_single

        run_single(args[0], verbose=bool(flags))
    if args and args[0] == "stream" and flags <= STREAM_FLAGS:
        from message_adapter.sidecar.process import run_stream

        run_stream("--structured-errors" in flags, verbose=bool({"-v", "--verbose"} & flags))
    from message_adapter.cli.app import cli

    cli.main(args=args, prog_name=PROG)
