"""``run`` (one message, locally) and ``activity`` (a Step Functions activity worker).

Both run a task through ``runner.run_message``; this module only reads options, files
and signals, and writes results.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click

from message_adapter.cli.options import (
    exec_option,
    schemas_option,
    store_option,
    timeout_option,
    worker_options,
)

TASK_HELP = """TASK is a Python callable, 'package.module:function' or 'path/file.py:function',
called as function(nested_event, context). Or give --exec 'COMMAND ...' instead of TASK:
the command gets the nested event as JSON on stdin and prints its result as JSON on
stdout (see protocol.md, "Task protocol")."""


def parse_schemas(text: str | None) -> dict | None:
    """``--schemas``: a JSON object, or ``input=FILE,config=FILE,output=FILE``."""
    if text is None:
        return None
    from message_adapter.jsonio import loads
    from message_adapter.schemas import SCHEMA_TYPES

    text = text.strip()
    if text.startswith("{"):
        try:
            value = loads(text)
        except ValueError as error:
            raise click.BadParameter(
                f"not a JSON object ({error})", param_hint="--schemas"
            ) from None
        if not isinstance(value, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--schemas")
        return value
    schemas = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, path = item.partition("=")
        if not sep or kind not in SCHEMA_TYPES or not path:
            raise click.BadParameter(
                f"{item!r}: use input=FILE, config=FILE or output=FILE (comma separated), "
                'or a JSON object such as {"input": "schemas/input.json"}',
                param_hint="--schemas",
            )
        schemas[kind] = path
    return schemas


def _read_json(path: str, what: str) -> Any:
    from message_adapter.jsonio import loads

    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                data = handle.read()
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=what) from None
    try:
        return loads(data)
    except ValueError as error:
        raise click.BadParameter(f"{path} is not JSON ({error})", param_hint=what) from None


def _store(store_dir: str | None) -> Any:
    from message_adapter.stores import LocalDirStore, shared_s3_store

    return LocalDirStore(store_dir) if store_dir else shared_s3_store()


def _load_task(task: str | None, exec_command: str | None) -> Any:
    from message_adapter.tasks.loading import TaskLoadError, load_task

    try:
        return load_task(task, exec_command)
    except TaskLoadError as error:
        raise click.UsageError(str(error)) from None


def _split_args(args: tuple[str, ...], exec_command: str | None, names: list[str]) -> list:
    wanted = len(names) - (1 if exec_command is not None else 0)
    if len(args) != wanted:
        shown = " ".join(names[1:] if exec_command is not None else names)
        raise click.UsageError(
            f"expected {shown or 'no arguments'}"
            + (" (TASK is replaced by --exec)" if exec_command else "")
        )
    return ([None] if exec_command is not None else []) + list(args)


@click.command(epilog=TASK_HELP)
@click.argument("args", nargs=-1, metavar="[TASK] MESSAGE")
@exec_option()
@click.option(
    "--context",
    "context_file",
    metavar="FILE",
    help="JSON object passed as the task's context (and recorded in "
    "meta.workflow_tasks, as a Lambda context is).",
)
@schemas_option()
@store_option("Use DIR/<bucket>/<key> instead of S3 for replace and ReplaceConfig.")
@timeout_option(
    "The task's time budget, as a Lambda's timeout: what "
    "context.get_remaining_time_in_millis() counts down from. Not enforced.",
    default=900.0,
)
@click.option(
    "--pretty", is_flag=True, help="Indent the printed message (same JSON, two-space indent)."
)
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    help="On failure, print the Python traceback (the task's own frames included) "
    "before the one-line error.",
)
def run(
    args: tuple[str, ...],
    exec_command: str | None,
    context_file: str | None,
    schemas: str | None,
    store_dir: str | None,
    timeout: float,
    pretty: bool,
    show_traceback: bool,
) -> None:
    """Run MESSAGE (a Cumulus message file, or - for stdin) through TASK; print the next message.

    \b
    loadAndUpdateRemoteEvent -> loadNestedEvent -> TASK -> createNextEvent
    A task error named ...WorkflowError prints the incoming message with payload null and
    exception set (exit 0); any other error is one line on stderr and exit 1 (with
    --traceback, after the traceback). A result that is not JSON (a datetime, a set...)
    is a TaskOutputError naming the type and where it is. The task's context reads like a
    Lambda context: context.function_name (also from a functionName key) and
    context.get_remaining_time_in_millis().
    """
    from message_adapter.errors import describe
    from message_adapter.jsonio import dumps, dumps_pretty
    from message_adapter.sidecar.commands import Adapter
    from message_adapter.tasks.loading import TaskContext
    from message_adapter.tasks.runner import run_message

    task_spec, message_file = _split_args(args, exec_command, ["TASK", "MESSAGE"])
    task = _load_task(task_spec, exec_command)
    message = _read_json(message_file, "MESSAGE")
    fields = {}
    if context_file:
        fields = _read_json(context_file, "--context")
        if not isinstance(fields, dict):
            raise click.BadParameter("must hold a JSON object", param_hint="--context")
    context = TaskContext(fields, timeout=timeout)
    adapter = Adapter(_store(store_dir))
    try:
        # A Python task's print() must not mix with the message on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            result = run_message(adapter, task, message, context, parse_schemas(schemas))
    except Exception as error:
        if show_traceback:
            import traceback

            traceback.print_exception(error)
        from message_adapter.logs import Logger, message_fields

        info = describe(error)
        Logger(fields={"sender": "run", **message_fields(message, context)}).error(
            f"run: {info['name']}: {info['message']}", event="run_failed", error=info
        )
        sys.exit(1)
    try:
        output = dumps_pretty(result.message) if pretty else dumps(result.message)
    except Exception as error:
        info = describe(error)
        click.echo(f"run: {info['name']}: {info['message']}", err=True)
        sys.exit(1)
    sys.stdout.buffer.write(output + b"\n")
    sys.stdout.flush()


@click.command(epilog=TASK_HELP)
@click.argument("args", nargs=-1, metavar="[TASK]")
@click.option(
    "--activity-arn",
    required=True,
    envvar="ACTIVITY_ARN",
    metavar="ARN",
    help="The Step Functions activity to serve (or $ACTIVITY_ARN).",
)
@exec_option()
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Send SendTaskHeartbeat this often while a task runs (use with the "
    "state's HeartbeatSeconds).",
)
@worker_options(
    concurrency_help="Tasks run at once in this process (one long poll each).",
    grace_help="After SIGTERM/SIGINT, how long running tasks may finish before they are "
    "answered with a failure.",
)
@timeout_option(
    "Each task's time budget (set it to the state's TimeoutSeconds): what "
    "context.get_remaining_time_in_millis() counts down from. Not enforced.",
    default=900.0,
)
@schemas_option()
@store_option("Use DIR/<bucket>/<key> instead of S3 (for local testing).")
def activity(
    args: tuple[str, ...], activity_arn: str, worker_name: str | None, **options: Any
) -> None:
    """Serve a Step Functions activity: poll, run TASK through the adapter, answer.

    \b
    Success: SendTaskSuccess with the next message (a ...WorkflowError task continues
    the workflow with exception set). Any other error: SendTaskFailure with the error
    name and message. One JSON log line per task on stderr. SIGTERM/SIGINT: stop polling,
    let running tasks finish within --grace, answer everything, exit 0 (a second signal
    ends the grace period at once). Polls already waiting (up to 60 s) are let finish,
    so a task they deliver is still answered. A signal while the worker is starting
    ends it at once (exit 0). The region is the ARN's; no region or no credentials
    is one line on stderr and exit 2.
    """
    from message_adapter.logs import Logger
    from message_adapter.tasks.stop_signals import StopRequested, StopSignals
    from message_adapter.tasks.worker_log import activity_name, default_worker_name, log_event

    try:
        signals = StopSignals()  # first: from here on a SIGTERM ends the worker cleanly
        worker, task = _start_worker(args, activity_arn, worker_name, **options)
        signals.attach(worker)
    except StopRequested as stop:
        # Import nothing here: the signal may have cut an import short.
        name = activity_name(activity_arn)
        log_event(
            Logger(fields={"sender": name}),
            "worker_stopped",
            name,
            worker_name or default_worker_name(),
            signal=str(stop),
            note="stopped while starting, before any poll",
        )
        _exit(0)
    code = worker.run()
    from message_adapter.tasks.loading import ExecTask

    if isinstance(task, ExecTask):
        task.kill_all()
    _exit(code)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # tasks stuck past the deadline are daemon threads: do not wait for them


def _start_worker(
    args: tuple[str, ...],
    activity_arn: str,
    worker_name: str | None,
    *,
    exec_command: str | None,
    concurrency: int,
    heartbeat: float | None,
    grace: float,
    timeout: float,
    schemas: str | None,
    store_dir: str | None,
) -> tuple[Any, Any]:
    """Everything slow before the first poll: AWS settings, the task, the clients."""
    from message_adapter.errors import ConfigurationError
    from message_adapter.tasks.worker import aws_session

    (task_spec,) = _split_args(args, exec_command, ["TASK"])
    schema_map = parse_schemas(schemas)
    try:
        session, region = aws_session(activity_arn)
    except ConfigurationError as error:
        click.echo(f"activity: {error}", err=True)
        _exit(2)
    task = _load_task(task_spec, exec_command)

    from message_adapter.sidecar.commands import Adapter
    from message_adapter.tasks.loading import ExecTask, TaskContext
    from message_adapter.tasks.runner import run_message
    from message_adapter.tasks.worker import ActivityWorker, activity_name, make_sfn_clients

    adapter = Adapter(_store(store_dir))
    fields = {"activityArn": activity_arn, "functionName": activity_name(activity_arn)}

    def handle(message: Any) -> Any:
        context = TaskContext(fields, timeout=timeout)  # per task: its own time budget
        return run_message(adapter, task, message, context, schema_map)

    poller, answerer = make_sfn_clients(concurrency, session, region)
    worker = ActivityWorker(
        answerer,
        activity_arn,
        handle,
        poller=poller,
        worker_name=worker_name,
        concurrency=concurrency,
        heartbeat=heartbeat,
        grace=grace,
        on_deadline=task.kill_all if isinstance(task, ExecTask) else None,
        region=region,
    )
    return worker, task
