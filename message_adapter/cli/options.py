"""Command-line options that several commands share (``run``, ``activity``, ``ecs-task``).

Each is declared once, so the same option reads and checks the same way everywhere; a
command may give it a help text of its own where its meaning there differs.
"""

from collections.abc import Callable
from typing import Any

import click

Decorator = Callable[[Any], Any]

SCHEMAS_HELP = "Schema files: input=FILE,config=FILE,output=FILE or a JSON object."


def exec_option() -> Decorator:
    """``--exec 'COMMAND ...'``: a task in any language, under the task protocol."""
    return click.option(
        "--exec",
        "exec_command",
        metavar="'COMMAND ...'",
        help="Run this command as the task instead of a Python TASK.",
    )


def schemas_option() -> Decorator:
    """``--schemas SPEC``, read by ``cli.run.parse_schemas``."""
    return click.option("--schemas", metavar="SPEC", help=SCHEMAS_HELP)


def store_option(help: str) -> Decorator:
    """``--store DIR``: a local folder standing in for S3."""
    return click.option(
        "--store", "store_dir", metavar="DIR", type=click.Path(file_okay=False), help=help
    )


def timeout_option(help: str, default: float | None = None) -> Decorator:
    """``--timeout SECONDS``: what a task's ``get_remaining_time_in_millis`` counts down from."""
    return click.option(
        "--timeout",
        default=default,
        show_default=default is not None,
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help=help,
    )


def worker_options(concurrency_help: str, grace_help: str) -> Decorator:
    """``--concurrency``, ``--grace`` and ``--worker-name`` of an activity worker."""

    def apply(command: Any) -> Any:
        for option in reversed(
            (
                click.option(
                    "--concurrency",
                    default=1,
                    show_default=True,
                    type=click.IntRange(1, 256),
                    help=concurrency_help,
                ),
                click.option(
                    "--grace",
                    default=30.0,
                    show_default=True,
                    type=click.FloatRange(min=0),
                    metavar="SECONDS",
                    help=grace_help,
                ),
                click.option(
                    "--worker-name", metavar="NAME", help="Name sent with each poll [host-pid]."
                ),
            )
        ):
            command = option(command)
        return command

    return apply
