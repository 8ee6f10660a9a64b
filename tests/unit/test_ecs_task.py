"""The pure parts of ``ecs-task``: its historic command line, the function's description,
the handler host's environment and context, and unpacking archives safely."""

import io
import os
import stat
import zipfile
from pathlib import Path

import click
import pytest

from message_adapter.cli.ecs_task import ecs_task, read_lambda_input, script_args, settings_from
from message_adapter.tasks.lambda_code import (
    LambdaCodeError,
    LambdaFunction,
    UnsupportedFunctionError,
    adapter_dir,
    describe_function,
    download,
    runtime_kind,
    safe_extract,
)
from message_adapter.tasks.lambda_host import context_fields, host_command, host_environment

ACTIVITY = "arn:aws:states:us-east-1:1:activity:hello"
FUNCTION = "arn:aws:lambda:us-east-1:1:function:hello"


def parse(*args: str, cwd: str = "/srv"):
    context = ecs_task.make_context("ecs-task", list(args))
    return settings_from(context.params, cwd=cwd)


# ---- the command line ----------------------------------------------------------------------


def test_historic_camel_case_flags_parse():
    settings = parse(
        "--activityArn",
        ACTIVITY,
        "--lambdaArn",
        FUNCTION,
        "--lastModified",
        "T",
        "--heartbeat",
        "60000",
    )
    assert (settings.activity_arn, settings.lambda_arn) == (ACTIVITY, FUNCTION)
    assert settings.heartbeat_s == 60.0
    assert settings.last_modified == "T"


def test_dashed_and_short_flags_mean_the_same():
    settings = parse(
        "-a", ACTIVITY, "-l", FUNCTION, "-d", "/t", "-w", "/w", "--layers-directory", "/l"
    )
    assert (settings.task_dir, settings.work_dir, settings.layers_dir) == ("/t", "/w", "/l")
    same = parse(
        "--activity-arn", ACTIVITY, "--lambda-arn", FUNCTION, "--taskDirectory", "/t",
        "--workDirectory", "/w", "--layersDirectory", "/l",
    )  # fmt: skip
    assert same == settings


def test_defaults_are_the_historic_ones():
    settings = parse("--activityArn", ACTIVITY, "--lambdaArn", FUNCTION, cwd="/srv")
    assert settings.task_dir == "/srv/task"
    assert settings.work_dir == "/srv/.tmp-work"
    assert settings.layers_dir == "/opt"
    assert settings.heartbeat_s is None
    assert (settings.concurrency, settings.grace, settings.timeout_s) == (1, 30.0, None)


def test_heartbeat_is_in_milliseconds_and_may_be_fractional():
    assert parse("-a", ACTIVITY, "-l", FUNCTION, "--heartbeat=1.5e3").heartbeat_s == 1.5


def test_a_function_arn_is_required():
    with pytest.raises(click.UsageError, match="--lambdaArn"):
        parse("--activityArn", ACTIVITY)


def test_an_activity_or_a_lambda_input_is_required():
    with pytest.raises(click.UsageError, match="--activityArn ARN .* or --lambdaInput"):
        parse("--lambdaArn", FUNCTION)
    assert parse("--lambdaArn", FUNCTION, "--lambdaInput", "{}").activity_arn is None


def test_sqs_url_is_refused_with_what_to_do_instead():
    with pytest.raises(click.UsageError, match="not supported"):
        parse("--lambdaArn", FUNCTION, "--activityArn", ACTIVITY, "--sqsUrl", "https://q")


def test_a_leading_program_name_from_a_terraform_command_is_ignored():
    flags = ["--activityArn", ACTIVITY, "--lambdaArn", FUNCTION]
    assert script_args(["cumulus-ecs-task", *flags]) == flags
    assert script_args(flags) == flags


def test_lambda_input_is_json_text_or_a_file(tmp_path: Path):
    assert read_lambda_input('{"a": 1}') == {"a": 1}
    (tmp_path / "event.json").write_text("[1, 2]")
    assert read_lambda_input(f"@{tmp_path / 'event.json'}") == [1, 2]
    with pytest.raises(click.BadParameter, match="not JSON"):
        read_lambda_input("{nope")


# ---- the function ------------------------------------------------------------------------


def test_get_function_response_becomes_a_function_description():
    function = describe_function(
        {
            "Configuration": {
                "FunctionName": "hello",
                "FunctionArn": FUNCTION,
                "Runtime": "nodejs20.x",
                "Handler": "index.handler",
                "Timeout": 300,
                "MemorySize": 1024,
                "Version": "$LATEST",
                "Environment": {"Variables": {"stackName": "prod"}},
                "Layers": [{"Arn": "arn:layer:1"}, {"Arn": "arn:layer:2"}],
            }
        }
    )
    assert (function.name, function.kind, function.timeout, function.memory) == (
        "hello",
        "nodejs",
        300,
        1024,
    )
    assert function.environment == {"stackName": "prod"}
    assert function.layers == ("arn:layer:1", "arn:layer:2")


def test_runtimes_other_than_node_and_python_are_refused_with_an_alternative():
    assert (runtime_kind("python3.12"), runtime_kind("nodejs22.x")) == ("python", "nodejs")
    with pytest.raises(UnsupportedFunctionError, match="--exec"):
        runtime_kind("java21")


def test_container_image_functions_are_refused():
    with pytest.raises(UnsupportedFunctionError, match="container image"):
        describe_function({"Configuration": {"FunctionName": "f", "PackageType": "Image"}})


def test_adapter_dir_is_the_tasks_own_copy_else_the_layers_dir(tmp_path: Path):
    assert adapter_dir(tmp_path, "/opt") == "/opt"
    (tmp_path / "cumulus-message-adapter").mkdir()
    assert adapter_dir(tmp_path, "/opt") == str(tmp_path / "cumulus-message-adapter")


# ---- the host -----------------------------------------------------------------------------

NODE = LambdaFunction(
    name="hello",
    arn=FUNCTION,
    runtime="nodejs20.x",
    handler="index.handler",
    version="3",
    environment={"CUMULUS_MESSAGE_ADAPTER_DIR": "/elsewhere", "stackName": "prod"},
)


def test_host_environment_applies_the_functions_variables_and_lambdas_own():
    env = host_environment(NODE, {"PATH": "/bin"}, "/srv/task", "/layers", "/layers")
    assert env["stackName"] == "prod"
    assert env["CUMULUS_MESSAGE_ADAPTER_DIR"] == "/layers"  # where this worker put it
    assert (env["LAMBDA_TASK_ROOT"], env["_HANDLER"]) == ("/srv/task", "index.handler")
    assert env["NODE_PATH"].split(os.pathsep) == [
        "/layers/nodejs/node_modules",
        "/layers/nodejs/node20/node_modules",
    ]


def test_python_host_gets_the_layers_python_folders():
    function = LambdaFunction(name="f", arn="a", runtime="python3.12", handler="app.handler")
    env = host_environment(function, {}, "/t", "/opt", "/opt")
    assert env["CMA_HOST_PYTHONPATH"].split(os.pathsep) == [
        "/opt/python",
        "/opt/python/lib/python3.12/site-packages",
    ]
    assert host_command(function)[-1].endswith("python_host.py")
    assert host_command(NODE, node="/usr/bin/node")[0] == "/usr/bin/node"


def test_context_is_lambda_like_and_counts_down_to_the_deadline():
    context = context_fields(NODE, deadline_s=1000.5, activity_arn=ACTIVITY, request_id="r-1")
    assert context == {
        "functionName": "hello",
        "functionVersion": "3",
        "invokedFunctionArn": FUNCTION,
        "memoryLimitInMB": "128",
        "awsRequestId": "r-1",
        "logGroupName": "/aws/lambda/hello",
        "logStreamName": "ecs-task",
        "activityArn": ACTIVITY,
        "deadlineMs": 1000500,
    }


# ---- archives ----------------------------------------------------------------------------


def make_zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def test_extract_keeps_executable_bits_and_overwrites_earlier_files(tmp_path: Path):
    dest = tmp_path / "opt"
    safe_extract(make_zip(tmp_path / "1.zip", [("bin/cma", b"v1", 0o100755)]), dest)
    safe_extract(make_zip(tmp_path / "2.zip", [("bin/cma", b"v2", 0o100755)]), dest)
    assert (dest / "bin" / "cma").read_bytes() == b"v2"
    assert (dest / "bin" / "cma").stat().st_mode & stat.S_IXUSR


def test_extract_refuses_entries_outside_the_destination(tmp_path: Path):
    for name in ("../evil", "/etc/evil", "a/../../evil"):
        archive = make_zip(tmp_path / "bad.zip", [(name, b"x", 0o100644)])
        with pytest.raises(LambdaCodeError, match="outside"):
            safe_extract(archive, tmp_path / "dest")
    assert not (tmp_path / "evil").exists()


def test_extract_keeps_symlinks_inside_and_refuses_those_pointing_out(tmp_path: Path):
    inside = make_zip(
        tmp_path / "in.zip",
        [("lib/real.js", b"x", 0o100644), ("lib/link.js", b"real.js", 0o120777)],
    )
    safe_extract(inside, tmp_path / "a")
    assert (tmp_path / "a" / "lib" / "link.js").read_bytes() == b"x"
    outside = make_zip(tmp_path / "out.zip", [("link", b"../../etc/passwd", 0o120777)])
    with pytest.raises(LambdaCodeError, match="points outside"):
        safe_extract(outside, tmp_path / "b")


def test_download_refuses_other_schemes(tmp_path: Path):
    with pytest.raises(LambdaCodeError, match="only http and https"):
        download("file:///etc/passwd", tmp_path / "x")


def test_zip_bytes_round_trip_through_extract(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.js", "exports.handler = 1;")
    (tmp_path / "f.zip").write_bytes(buffer.getvalue())
    safe_extract(tmp_path / "f.zip", tmp_path / "task")
    assert (tmp_path / "task" / "index.js").read_text() == "exports.handler = 1;"
