"""``ecs-task`` (also the ``cumulus-ecs-task`` script): the historic ECS activity worker's
command line, serving an activity with a Lambda function's own handler.

Flags are the historic ones (camelCase and dashed forms); ``Settings`` is what they mean
here. The run: fetch the function and its layers (``lambda_code``), start its handler in
a warm host process (``lambda_host``), then serve the activity with ``ActivityWorker``, or
run once on ``--lambdaInput``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from message_adapter.cli.options import timeout_option, worker_options

EXIT_FAILED = 1  # --lambdaInput: the handler failed; service: polling became impossible
EXIT_USAGE = 2
EXIT_FETCH = 3  # the function or a layer could not be fetched or unpacked
EXIT_HANDLER = 4  # unsupported runtime, or the handler cannot be loaded

HELP_EPILOG = """\b
Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 if the activity cannot be polled
(or the --lambdaInput run failed), 2 for a usage error, 3 if the function's code or a
layer cannot be fetched, 4 if its runtime is unsupported or its handler cannot be loaded.
Environment: AWS_DEFAULT_REGION (default us-east-1), AWS credentials as for any AWS SDK,
LOG_LEVEL (trace, debug, info, warn, error, fatal)."""


@dataclass(frozen=True)
class Settings:
    """What the command line asks for, with the historic defaults filled in."""

    lambda_arn: str
    activity_arn: str | None
    lambda_input: str | None
    heartbeat_s: float | None
    task_dir: str
    work_dir: str
    layers_dir: str
    last_modified: str | None
    concurrency: int
    grace: float
    timeout_s: float | None
    worker_name: str | None


def settings_from(options: dict[str, Any], cwd: str | None = None) -> Settings:
    """``Settings`` from the parsed options; ``click.UsageError`` for what cannot work."""
    cwd = cwd or os.getcwd()
    if options.get("sqs_url"):
        raise click.UsageError(
            "--sqs-url (serving an SQS queue) is not supported; serve a Step Functions "
            "activity with --activityArn"
        )
    if not options.get("lambda_arn"):
        raise click.UsageError("--lambdaArn ARN is required (the function whose code to run)")
    if not options.get("activity_arn") and options.get("lambda_input") is None:
        raise click.UsageError(
            "give --activityArn ARN (serve the activity) or --lambdaInput JSON (run once)"
        )
    heartbeat = options.get("heartbeat")
    return Settings(
        lambda_arn=options["lambda_arn"],
        activity_arn=options.get("activity_arn") or None,
        lambda_input=options.get("lambda_input"),
        heartbeat_s=heartbeat / 1000.0 if heartbeat else None,
        task_dir=os.path.abspath(options.get("task_dir") or os.path.join(cwd, "task")),
        work_dir=os.path.abspath(options.get("work_dir") or os.path.join(cwd, ".tmp-work")),
        layers_dir=os.path.abspath(options.get("layers_dir") or "/opt"),
        last_modified=options.get("last_modified"),
        concurrency=options.get("concurrency") or 1,
        grace=30.0 if options.get("grace") is None else options["grace"],
        timeout_s=options.get("timeout"),
        worker_name=options.get("worker_name"),
    )


def read_lambda_input(text: str) -> Any:
    """``--lambdaInput``: JSON text, or ``@FILE`` / ``-`` (stdin) holding it."""
    from message_adapter.jsonio import loads

    source = "--lambdaInput"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                text, source = handle.read(), text[1:]
        except OSError as error:
            raise click.BadParameter(
                f"cannot read {text[1:]}: {error.strerror}", param_hint="--lambdaInput"
            ) from None
    try:
        return loads(text)
    except ValueError as error:
        raise click.BadParameter(
            f"{source} is not JSON ({error}); give the event as JSON text, @FILE or -",
            param_hint="--lambdaInput",
        ) from None


@click.command(
    "ecs-task", epilog=HELP_EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--activity-arn",
    "--activityArn",
    "-a",
    "activity_arn",
    envvar="ACTIVITY_ARN",
    metavar="ARN",
    help="The Step Functions activity to serve (or $ACTIVITY_ARN).",
)
@click.option(
    "--lambda-arn",
    "--lambdaArn",
    "-l",
    "lambda_arn",
    envvar="LAMBDA_ARN",
    metavar="ARN",
    help="The Lambda function whose code and handler serve the activity (or $LAMBDA_ARN).",
)
@click.option(
    "--lambda-input",
    "--lambdaInput",
    "lambda_input",
    metavar="JSON",
    help="Run the handler once on this event (JSON text, @FILE or - for stdin), print "
    "its result, and exit.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MS",
    help="Send SendTaskHeartbeat every MS milliseconds while a task runs (as historic; "
    "match the state's HeartbeatSeconds).",
)
@click.option(
    "--directory",
    "--taskDirectory",
    "-d",
    "task_dir",
    metavar="DIR",
    help="Where the function's code is unpacked [./task].",
)
@click.option(
    "--work-directory",
    "--workDirectory",
    "-w",
    "work_dir",
    metavar="DIR",
    help="Scratch space for downloads [./.tmp-work].",
)
@click.option(
    "--layers-directory",
    "--layersDirectory",
    "layers_dir",
    metavar="DIR",
    help="Where the function's layers are unpacked, in order [/opt].",
)
@click.option(
    "--last-modified",
    "--lastModified",
    "last_modified",
    metavar="TIME",
    help="Accepted for compatibility (Cumulus passes the function's LastModified to "
    "restart the service on deploys); logged, not used.",
)
@click.option("--sqs-url", "--sqsUrl", "sqs_url", metavar="URL", hidden=True, help="Not supported.")
@worker_options(
    concurrency_help="Tasks run at once (one long poll each; one handler process serves them all).",
    grace_help="After SIGTERM/SIGINT, how long running tasks may finish before they are "
    "answered with a failure (set the container's stopTimeout above it).",
)
@timeout_option(
    "What getRemainingTimeInMillis() counts down from: set it to the state's "
    "TimeoutSeconds [the function's Timeout]."
)
def ecs_task(**options: Any) -> None:
    """Serve a Step Functions activity with a Lambda function's own handler, as the
    historic cumulus-ecs-task image does.

    \b
    At start: GetFunction on --lambdaArn, unpack its code into --directory and its layers
    into --layersDirectory, apply its environment variables, set
    CUMULUS_MESSAGE_ADAPTER_DIR, and load its handler in one warm Node (nodejs*) or
    Python (python*) process. Then each task's input is the handler's event; its result
    is sent with SendTaskSuccess, a thrown error with SendTaskFailure (name, message).
    One Cumulus-format JSON log line per task on stderr.

    \b
    Example (the historic ECS command):
      cumulus-ecs-task --activityArn arn:aws:states:...:activity:Hello \\
                       --lambdaArn arn:aws:lambda:...:function:Hello --heartbeat 60000
    """
    from message_adapter.logs import Logger
    from message_adapter.tasks.stop_signals import StopRequested, StopSignals

    try:
        signals = StopSignals()  # first: from here on a SIGTERM ends the worker cleanly
        code = serve(settings_from(options), signals)
    except StopRequested as stop:
        # Import nothing here: the signal may have cut an import short.
        Logger(fields={"sender": "ecs-task"}).info(
            "stopped while starting, before any poll", event="worker_stopped", signal=str(stop)
        )
        code = 0
    _exit(code)


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # tasks stuck past the deadline are daemon threads: do not wait for them


def serve(settings: Settings, signals: Any = None) -> int:
    """Fetch, load, and serve (or run once); the process's exit status.

    ``signals`` (a ``StopSignals`` made at the process's start) is handed to the worker.
    """
    import boto3
    from botocore.config import Config

    from message_adapter.errors import ConfigurationError
    from message_adapter.logs import Logger
    from message_adapter.tasks.lambda_code import (
        LambdaCodeError,
        UnsupportedFunctionError,
        adapter_dir,
        fetch_function,
    )
    from message_adapter.tasks.lambda_host import (
        HandlerLoadError,
        LambdaHost,
        host_command,
        host_environment,
    )
    from message_adapter.tasks.worker import aws_session

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logger = Logger(fields={"sender": "ecs-task"})
    aws: tuple[Any, str] | None = None
    if settings.activity_arn:
        try:
            aws = aws_session(settings.activity_arn)
        except ConfigurationError as error:
            logger.fatal(f"ecs-task: {error}", event="configuration")
            return EXIT_USAGE
    if settings.last_modified:
        logger.debug(f"--lastModified {settings.last_modified} (accepted, not used)", event="start")
    lambda_client = boto3.session.Session().client(
        "lambda", config=Config(retries={"mode": "standard", "max_attempts": 5})
    )
    try:
        function = fetch_function(
            lambda_client,
            settings.lambda_arn,
            settings.task_dir,
            settings.layers_dir,
            settings.work_dir,
            log=logger.log,
        )
    except LambdaCodeError as error:
        logger.fatal(f"ecs-task: {error}", event="fetch_failed")
        return EXIT_HANDLER if isinstance(error, UnsupportedFunctionError) else EXIT_FETCH
    logger.fields.update({"sender": function.name, "version": function.version})
    env = host_environment(
        function,
        os.environ,
        settings.task_dir,
        settings.layers_dir,
        adapter_dir(settings.task_dir, settings.layers_dir),
    )
    host = LambdaHost(
        host_command(function),
        env,
        cwd=settings.task_dir,
        name=function.name,
        stdout=sys.stderr if settings.lambda_input is not None else None,
        log=logger.log,
    )
    try:
        host.start()
    except HandlerLoadError as error:
        logger.fatal(
            f"ecs-task: cannot load handler {function.handler!r} of {function.name} "
            f"({function.runtime}): {error.name}: {error.message}",
            event="handler_failed",
        )
        return EXIT_HANDLER
    timeout = settings.timeout_s or float(function.timeout)
    if settings.lambda_input is not None:
        return _run_once(settings, function, host, timeout, logger)
    return _serve_activity(settings, function, host, timeout, logger, aws, signals)


def _invocation(function: Any, message: Any, activity_arn: str | None, timeout: float) -> Any:
    from message_adapter.logs import task_environment
    from message_adapter.tasks.lambda_host import Invocation, context_fields

    context = context_fields(function, time.time() + timeout, activity_arn)
    return Invocation(context, task_environment(message, context))


def _run_once(settings: Settings, function: Any, host: Any, timeout: float, logger: Any) -> int:
    from message_adapter.errors import describe
    from message_adapter.jsonio import dumps

    event = read_lambda_input(settings.lambda_input or "null")
    try:
        result = host.invoke(event, _invocation(function, event, None, timeout))
    except Exception as error:  # noqa: BLE001 - reported, then exit 1
        info = describe(error)
        logger.error(f"{info['name']}: {info['message']}", event="task", outcome="failed")
        host.close()
        return EXIT_FAILED
    sys.stdout.buffer.write(dumps(result) + b"\n")
    sys.stdout.flush()
    host.close()
    return 0


def _serve_activity(
    settings: Settings,
    function: Any,
    host: Any,
    timeout: float,
    logger: Any,
    aws: tuple[Any, str] | None,
    signals: Any,
) -> int:
    from message_adapter.tasks.runner import RunResult
    from message_adapter.tasks.stop_signals import StopSignals
    from message_adapter.tasks.worker import ActivityWorker, make_sfn_clients
    from message_adapter.tasks.workflow_errors import named_workflow_error

    def handle(message: Any) -> RunResult:
        result = host.invoke(
            message, _invocation(function, message, settings.activity_arn, timeout)
        )
        # The handler's own client applied its WorkflowError rule; this only labels the log.
        exception = result.get("exception") if isinstance(result, dict) else None
        return RunResult(result, named_workflow_error(exception))

    session, region = aws if aws is not None else (None, None)
    poller, answerer = make_sfn_clients(settings.concurrency, session, region)
    worker = ActivityWorker(
        answerer,
        settings.activity_arn or "",
        handle,
        poller=poller,
        worker_name=settings.worker_name,
        concurrency=settings.concurrency,
        heartbeat=settings.heartbeat_s,
        grace=settings.grace,
        on_deadline=host.kill,
        log_fields=dict(logger.fields),
        region=region,
    )
    (signals or StopSignals()).attach(worker)
    code = worker.run()
    host.close(timeout=2)
    return code


PROGRAM_NAMES = ("cumulus-ecs-task", "ecs-task")


def script_args(argv: list[str]) -> list[str]:
    """The flags, without a leading program name: Cumulus's Terraform examples give the
    container the command ``["cumulus-ecs-task", "--activityArn", ...]``, which an image
    whose entrypoint is this script receives as arguments."""
    return argv[1:] if argv and argv[0] in PROGRAM_NAMES else argv


def main(argv: list[str] | None = None) -> None:
    """The ``cumulus-ecs-task`` console script (the container image's entrypoint)."""
    args = script_args(sys.argv[1:] if argv is None else argv)
    ecs_task.main(args=args, prog_name="cumulus-ecs-task")
