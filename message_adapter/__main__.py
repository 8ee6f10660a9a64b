"""`python -m message_adapter <command>`: the same entry point as the console script."""

from message_adapter.cli import main

main()
