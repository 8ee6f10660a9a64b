"""Workflows on LocalStack whose steps are served by ``cumulus-ecs-task`` from Lambda
functions' own code: a Node function on our Node client (a layer), a Python function on
our Python client and ``cumulus_logger`` (a layer), and the published
``@cumulus/hello-world`` package, unchanged. The adapter is a layer built by
``cumulus-message-adapter bundle --no-exe``, found through CUMULUS_MESSAGE_ADAPTER_DIR."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.ecs_helpers import (
    EcsTask,
    build_bundle,
    create_function,
    npm_hello_world,
    publish_layer,
    python_on_path,
    zip_files,
    zip_tree,
)
from tests.e2e.helpers import (
    activity_state,
    create_state_machine,
    cumulus_message,
    history,
    start_execution,
    unique,
    wait_execution,
)
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

NODE_TASK = """\
const cma = require('@cumulus/cumulus-message-adapter-js');

async function task(event, context) {
  const { config } = event;
  if (config.sleepMs) {
    console.log('sleeping');
    await new Promise((resolve) => setTimeout(resolve, config.sleepMs));
  }
  if (config.exit) process.exit(9);
  if (config.fail) {
    const error = new Error('the node task was told to fail');
    error.name = 'NodeTaskError';
    throw error;
  }
  if (config.workflowError) {
    const error = new Error('nothing to do');
    error.name = 'NoGranulesWorkflowError';
    throw error;
  }
  return {
    greeting: config.greeting,
    via: context.via,
    timeLeft: context.getRemainingTimeInMillis() > 0,
    executions: process.env.EXECUTIONS,
    fromEnvironment: process.env.GREETING_SOURCE,
    pid: process.pid,
  };
}

exports.handler = (event, context) => cma.runCumulusTask(task, event, context);
"""

PYTHON_TASK = """\
import os

from cumulus_logger import CumulusLogger
from run_cumulus_task import run_cumulus_task

logger = CumulusLogger("python_task")


def task(event, context):
    config = event["config"]
    greeting = (event["input"] or {}).get("greeting")
    logger.info("python task got {}", greeting)
    if config.get("fail"):
        raise ValueError("the python task was told to fail")
    return {
        "node_said": greeting,
        "via": context.via,
        "time_left": context.get_remaining_time_in_millis() > 0,
        "executions": os.environ.get("EXECUTIONS"),
    }


def handler(event, context):
    logger.setMetadata(event, context)
    return run_cumulus_task(task, event, context)
"""


# ---- fixtures: layers and functions on LocalStack, ecs-task processes -----------------


@pytest.fixture(scope="module")
def lambda_client(localstack: Any) -> Any:
    return localstack.client("lambda")


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The adapter bundle and a PATH whose ``python`` is this interpreter."""
    root = tmp_path_factory.mktemp("ecs")
    return {"bundle": build_bundle(root / "cma"), "path": python_on_path(root / "bin")}


@pytest.fixture(scope="module")
def node_function(lambda_client: Any, tools: dict[str, Any]) -> str:
    adapter = publish_layer(lambda_client, "cma", zip_tree(tools["bundle"]))
    client = publish_layer(lambda_client, "cma-node-client", _node_client_zip())
    return create_function(
        lambda_client,
        zip_files({"index.js": NODE_TASK}),
        "nodejs20.x",
        "index.handler",
        layers=[adapter, client],
        environment={"GREETING_SOURCE": "function environment"},
    )


def _node_client_zip() -> bytes:
    """Our Node client as a layer, under the published client's package name."""
    import io
    import zipfile

    root = REPO / "clients" / "node"
    prefix = "nodejs/node_modules/@cumulus/cumulus-message-adapter-js/"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in [
            root / "index.js",
            root / "package.json",
            *sorted((root / "lib").glob("*.js")),
        ]:
            archive.writestr(prefix + str(path.relative_to(root)), path.read_text())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def python_function(lambda_client: Any, tools: dict[str, Any]) -> str:
    adapter = publish_layer(lambda_client, "cma", zip_tree(tools["bundle"]))
    client_root = REPO / "clients" / "python"
    files = {
        f"python/{path.relative_to(client_root)}": path.read_text()
        for path in [
            client_root / "cumulus_logger.py",
            *(client_root / "run_cumulus_task").glob("*.py"),
        ]
    }
    client = publish_layer(lambda_client, "cma-python-client", zip_files(files))
    return create_function(
        lambda_client,
        zip_files({"app.py": PYTHON_TASK}),
        "python3.12",
        "app.handler",
        layers=[adapter, client],
    )


@pytest.fixture(scope="module")
def hello_world_function(lambda_client: Any, tools: dict[str, Any]) -> str:
    adapter = publish_layer(lambda_client, "cma", zip_tree(tools["bundle"]))
    return create_function(
        lambda_client, zip_tree(npm_hello_world()), "nodejs20.x", "index.handler", layers=[adapter]
    )


@pytest.fixture
def ecs_tasks(localstack: Any, tools: dict[str, Any]) -> Iterator[Any]:
    """``start(*args)`` runs ``cumulus-ecs-task *args``; all are stopped after the test."""
    started: list[EcsTask] = []

    def start(*args: str, **options: Any) -> EcsTask:
        task = EcsTask(localstack, *args, path=tools["path"], **options)
        started.append(task)
        return task

    yield start
    for task in started:
        task.close()


def new_activity(sfn: Any) -> str:
    return sfn.create_activity(name=unique("act"))["activityArn"]


def serve(ecs_tasks: Any, sfn: Any, function: str, *extra: str) -> tuple[str, EcsTask]:
    activity = new_activity(sfn)
    task = ecs_tasks("--activityArn", activity, "--lambdaArn", function, *extra)
    return activity, task


def activity_failure(sfn: Any, execution: str) -> dict:
    failed = [event for event in history(sfn, execution) if event["type"] == "ActivityFailed"]
    return failed[0]["activityFailedEventDetails"]


# ---- the workflow -----------------------------------------------------------------------


def test_node_python_and_hello_world_steps_run_a_workflow(
    sfn, bucket, ecs_tasks, node_function, python_function, hello_world_function
) -> None:
    # As Cumulus's Terraform gives the image its command: the program name, then the flags.
    node = new_activity(sfn)
    node_task = ecs_tasks(
        "cumulus-ecs-task",
        "--activityArn",
        node,
        "--lambdaArn",
        node_function,
        "--lastModified",
        "2026-01-01T00:00:00.000+0000",
    )
    python, python_task = serve(ecs_tasks, sfn, python_function)
    hello, hello_task = serve(ecs_tasks, sfn, hello_world_function)
    machine = create_state_machine(
        sfn,
        {
            "Node": activity_state(node, {"greeting": "{$.meta.stack}"}, "Python"),
            "Python": activity_state(python, {}, "Hello"),
            "Hello": activity_state(hello, {}),
        },
        "Node",
    )
    message = cumulus_message(bucket, stack="e2e-stack", input_granules=[{"granuleId": "g1"}])
    message["cumulus_meta"].update(parentExecutionArn="arn:parent", asyncOperationId="op-7")
    execution = start_execution(sfn, machine, message)
    done = wait_execution(sfn, execution, timeout=120)
    assert done["status"] == "SUCCEEDED", (
        done,
        node_task.text()[-3000:],
        python_task.text()[-3000:],
    )

    output = json.loads(done["output"])
    assert output["payload"] == {"hello": "Hello World"}
    outputs = [
        json.loads(event["activitySucceededEventDetails"]["output"])["payload"]
        for event in history(sfn, execution)
        if event["type"] == "ActivitySucceeded"
    ]
    execution_name = message["cumulus_meta"]["execution_name"]
    node_output = outputs[0]
    assert node_output["greeting"] == "e2e-stack"
    assert node_output["via"] == "ECS"
    assert node_output["timeLeft"] is True
    assert node_output["executions"] == execution_name
    assert node_output["fromEnvironment"] == "function environment"
    assert outputs[1] == {
        "node_said": "e2e-stack",
        "via": "ECS",
        "time_left": True,
        "executions": execution_name,
    }

    # Every served task is one Cumulus-format line carrying the message's fields.
    for served, function in ((node_task, node_function), (python_task, python_function)):
        (line,) = served.events("task")
        assert line["outcome"] == "succeeded"
        assert line["level"] == "info"
        assert line["sender"] == function.rsplit(":", 1)[-1]
        assert line["executions"] == execution_name
        assert line["stackName"] == "e2e-stack"
        assert line["parentArn"] == "arn:parent"
        assert line["asyncOperationId"] == "op-7"
        assert json.loads(line["granules"]) == ["g1"]
        assert line["timestamp"].endswith("Z")
    # The Python task's own cumulus_logger line.
    (logged,) = [
        r for r in python_task.records() if r.get("message") == "python task got e2e-stack"
    ]
    assert logged["level"] == "info"
    assert logged["sender"] == python_function.rsplit(":", 1)[-1]
    assert logged["executions"] == execution_name
    assert logged["stackName"] == "e2e-stack"


def test_thrown_errors_fail_the_execution_with_their_name_and_message(
    sfn, bucket, ecs_tasks, node_function, python_function, hello_world_function
) -> None:
    cases = [
        (node_function, {"fail": True}, "NodeTaskError", "the node task was told to fail"),
        (python_function, {"fail": True}, "ValueError", "the python task was told to fail"),
        (hello_world_function, {"fail": True}, "Error", "Step configured to force fail"),
    ]
    executions = []
    for function, config, *_ in cases:
        activity, _task = serve(ecs_tasks, sfn, function)
        machine = create_state_machine(sfn, {"Step": activity_state(activity, config)}, "Step")
        executions.append(start_execution(sfn, machine, cumulus_message(bucket)))
    for execution, (_, _, name, text) in zip(executions, cases, strict=True):
        done = wait_execution(sfn, execution, timeout=120)
        assert done["status"] == "FAILED"
        details = activity_failure(sfn, execution)
        assert details["error"] == name
        assert text in details["cause"]


def test_workflow_error_continues_the_workflow_with_exception(
    sfn, bucket, ecs_tasks, node_function
) -> None:
    activity, _task = serve(ecs_tasks, sfn, node_function)
    state = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 120, "Next": "After"}
    machine = create_state_machine(
        sfn, {"Discover": state, "After": {"Type": "Pass", "End": True}}, "Discover"
    )
    message = cumulus_message(bucket)
    message["task_config"] = {"workflowError": True}
    done = wait_execution(sfn, start_execution(sfn, machine, message), timeout=120)
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert (output["payload"], output["exception"]) == (None, "NoGranulesWorkflowError")


def test_heartbeats_keep_a_task_longer_than_heartbeat_seconds_alive(
    sfn, bucket, ecs_tasks, node_function
) -> None:
    activity, _task = serve(ecs_tasks, sfn, node_function, "--heartbeat", "500")
    state = activity_state(activity, {"sleepMs": 4000, "greeting": "slow"}, heartbeat_seconds=2)
    machine = create_state_machine(sfn, {"Slow": state}, "Slow")
    done = wait_execution(sfn, start_execution(sfn, machine, cumulus_message(bucket)), timeout=120)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"])["payload"]["greeting"] == "slow"


def test_sigterm_mid_task_lets_it_finish_and_answers_it(
    sfn, bucket, ecs_tasks, node_function
) -> None:
    activity, task = serve(ecs_tasks, sfn, node_function, "--heartbeat", "500", "--grace", "30")
    state = activity_state(activity, {"sleepMs": 3000, "greeting": "late"}, heartbeat_seconds=2)
    machine = create_state_machine(sfn, {"Slow": state}, "Slow")
    execution = start_execution(sfn, machine, cumulus_message(bucket))
    wait_until(lambda: "sleeping" in task.text(), timeout=60, step=0.1, what="the task to start")
    task.process.send_signal(signal.SIGTERM)
    assert task.process.wait(60) == 0, task.text()[-3000:]
    done = wait_execution(sfn, execution, timeout=60)
    assert done["status"] == "SUCCEEDED", done
    assert [line["outcome"] for line in task.events("task")] == ["succeeded"]
    assert task.events("worker_stopped")


def test_a_dead_handler_process_fails_its_task_and_is_restarted(
    sfn, bucket, ecs_tasks, node_function
) -> None:
    activity, task = serve(ecs_tasks, sfn, node_function)
    dies = create_state_machine(sfn, {"Exit": activity_state(activity, {"exit": True})}, "Exit")
    lives = create_state_machine(sfn, {"Ok": activity_state(activity, {"greeting": "again"})}, "Ok")
    first = wait_execution(sfn, start_execution(sfn, dies, cumulus_message(bucket)), timeout=120)
    assert first["status"] == "FAILED"
    assert activity_failure(sfn, first["executionArn"])["error"] == "HandlerProcessExited"
    second = wait_execution(sfn, start_execution(sfn, lives, cumulus_message(bucket)), timeout=120)
    assert second["status"] == "SUCCEEDED", second
    assert json.loads(second["output"])["payload"]["greeting"] == "again"
    loaded = task.events("handler_loaded")
    assert [line["restart"] for line in loaded] == [False, True]


def test_two_ecs_tasks_drain_100_executions_each_once(
    sfn, bucket, ecs_tasks, node_function
) -> None:
    total = 100
    activity = new_activity(sfn)
    pool = [
        ecs_tasks("--activityArn", activity, "--lambdaArn", node_function, "--concurrency", "4")
        for _ in range(2)
    ]
    machine = create_state_machine(
        sfn, {"Greet": activity_state(activity, {"greeting": "n"})}, "Greet"
    )
    wait_until(
        lambda: all(task.events("worker_started") for task in pool),
        timeout=60,
        step=0.1,
        what="both workers polling",
    )
    started = time.monotonic()
    executions = [start_execution(sfn, machine, cumulus_message(bucket)) for _ in range(total)]
    results = [wait_execution(sfn, arn, timeout=300) for arn in executions]
    elapsed = time.monotonic() - started
    assert [r["status"] for r in results].count("SUCCEEDED") == total
    served = [line for task in pool for line in task.events("task")]
    assert len(served) == total
    assert {line["outcome"] for line in served} == {"succeeded"}
    assert len({line["executions"] for line in served}) == total
    assert all(task.events("task") for task in pool), "both workers served tasks"
    print(f"\n{total} executions through 2 ecs-task workers in {elapsed:.1f} s")


# ---- start-up -----------------------------------------------------------------------------


def test_lambda_input_runs_the_handler_once_and_prints_its_result(
    bucket, ecs_tasks, node_function
) -> None:
    message = cumulus_message(bucket)
    message["task_config"] = {"greeting": "once"}
    task = ecs_tasks("--lambdaArn", node_function, "--lambdaInput", json.dumps(message))
    assert task.process.wait(120) == 0, task.text()[-3000:]
    printed = [r for r in task.records() if "payload" in r]
    assert printed[-1]["payload"]["greeting"] == "once"


def test_a_function_that_cannot_be_fetched_exits_3_saying_why(ecs_tasks) -> None:
    missing = "arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
    task = ecs_tasks(
        "--activityArn", "arn:aws:states:us-east-1:000000000000:activity:x", "--lambdaArn", missing
    )
    assert task.process.wait(60) == 3
    (line,) = task.events("fetch_failed")
    assert line["level"] == "fatal"
    assert "GetFunction" in line["message"] and "no-such-function" in line["message"]


def test_an_unsupported_runtime_exits_4_saying_why(lambda_client, ecs_tasks) -> None:
    function = create_function(lambda_client, zip_files({"a.rb": ""}), "ruby3.3", "a.handler")
    task = ecs_tasks(
        "--activityArn", "arn:aws:states:us-east-1:000000000000:activity:x", "--lambdaArn", function
    )
    assert task.process.wait(60) == 4
    assert "'ruby3.3' is not supported" in task.events("fetch_failed")[0]["message"]


def test_a_handler_that_cannot_be_loaded_exits_4_saying_why(lambda_client, ecs_tasks) -> None:
    function = create_function(
        lambda_client,
        zip_files({"index.js": "exports.other = 1;\n"}),
        "nodejs20.x",
        "index.handler",
    )
    task = ecs_tasks(
        "--activityArn", "arn:aws:states:us-east-1:000000000000:activity:x", "--lambdaArn", function
    )
    assert task.process.wait(60) == 4
    (line,) = task.events("handler_failed")
    assert "Runtime.HandlerNotFound" in line["message"]
