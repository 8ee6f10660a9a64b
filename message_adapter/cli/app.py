"""The click command group: help text for every command, and the tools beside the adapter.

``cli.main`` serves ``stream`` and the single commands without importing this module;
the same commands are declared here so ``--help`` documents them and mistakes in their
arguments get click's usual explanations.
"""

import click

from message_adapter import __version__
from message_adapter.cli.bundle import bundle
from message_adapter.cli.ecs_task import ecs_task
from message_adapter.cli.run import activity, run
from message_adapter.sidecar.process import PROG, run_single, run_stream


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """A fast, drop-in Cumulus Message Adapter.

    \b
    Drive it from any language over stdin/stdout (see protocol.md):
      cumulus-message-adapter stream                  # long-running sidecar
      cumulus-message-adapter loadNestedEvent < req.json   # one command
    """


@cli.command()
@click.option(
    "--structured-errors",
    is_flag=True,
    help="Answer a failed command with an <ERROR> frame and keep serving, "
    "instead of exiting 1 as the historic adapter does.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each command and its duration to stderr.")
def stream(structured_errors: bool, verbose: bool) -> None:
    """Serve COMMAND / JSON / <EOC> frames on stdin until <EXIT>.

    \b
    Each request:   loadNestedEvent
                    {"event": {...}, "context": {...}, "schemas": null}
                    <EOC>
    Each answer:    {...one line of JSON...}
                    <EOC>
    """
    run_stream(structured_errors, verbose)


def _single(name: str, summary: str) -> None:
    @cli.command(
        name=name,
        help=f"{summary}\n\nReads one JSON request on stdin, writes the "
        "answer on stdout; on error, one line on stderr and exit 1.",
    )
    @click.option("-v", "--verbose", is_flag=True, help="Log the duration to stderr.")
    def command(verbose: bool) -> None:
        run_single(name, verbose)


_single(
    "loadAndUpdateRemoteEvent",
    'Request {"event", "context"?}: unwrap cma, load a replaced part from S3, '
    "record the task in meta.workflow_tasks.",
)
_single(
    "loadNestedEvent",
    'Request {"event", "schemas"?}: build the task\'s {input, config} from task_config templates.',
)
_single(
    "createNextEvent",
    'Request {"event", "handler_response", "message_config"?, "schemas"?}: put the '
    "task's output into the next message and offload it per ReplaceConfig.",
)

cli.add_command(bundle)
cli.add_command(run)
cli.add_command(activity)
cli.add_command(ecs_task)
