"""The shared core: one message through the adapter and a task, and the answers it makes."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from message_adapter.jsonio import dumps

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tasks"
MESSAGE = {
    "cumulus_meta": {
        "system_bucket": "internal",
        "execution_name": "e1",
        "state_machine": "arn:sm",
    },
    "meta": {"collection": "MOD09GQ"},
    "task_config": {
        "name": "{$.meta.collection}",
        "cumulus_message": {"input": "{$.payload.granules}"},
    },
    "payload": {"granules": ["g1", "g2"]},
}


# ---- run_message ------------------------------------------------------------------------


# ---- the `run` command ------------------------------------------------------------------


def cli(*args: str, stdin: bytes = b"", cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "message_adapter", "run", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=60,
        env=dict(os.environ),
    )


def write_json(path: Path, value: Any) -> str:
    path.write_bytes(dumps(value))
    return str(path)


def test_run_prints_the_next_message(tmp_path: Path) -> None:
    done = cli(f"{EXAMPLES}/hello.py:handler", str(EXAMPLES / "message.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["payload"] == {"greeting": "hello MOD09GQ", "granule_count": 1}


def test_run_reads_the_message_from_stdin() -> None:
    done = cli("--exec", "cat", "-", stdin=b'{"payload": 5}')
    assert json.loads(done.stdout)["payload"] == {"input": 5, "config": {}}


def test_run_keeps_a_python_tasks_prints_off_stdout(tmp_path: Path) -> None:
    task = tmp_path / "noisy.py"
    task.write_text("def handler(event, context):\n    print('chatty')\n    return 1\n")
    done = cli(f"{task}:handler", "-", stdin=b"{}")
    assert json.loads(done.stdout)["payload"] == 1 and b"chatty" in done.stderr


def test_run_workflow_error_prints_the_message_with_exception_and_exits_0() -> None:
    done = cli("--exec", "sh examples/tasks/hello.sh", "-", stdin=b'{"payload": {"granules": []}}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"payload": None, "exception": "NothingToDoWorkflowError"}


def test_run_other_error_is_one_cumulus_log_line_and_exit_1() -> None:
    line = shlex.quote(json.dumps({"name": "BadGranule", "message": "no"}))
    done = cli("--exec", "sh -c " + shlex.quote(f"echo {line} >&2; exit 2"), "-", stdin=b"{}")
    assert (done.returncode, done.stdout) == (1, b"")
    (line,) = done.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["message"]) == ("error", "run: BadGranule: no")
    assert record["error"] == {"name": "BadGranule", "message": "no"}


def test_run_result_that_is_not_json_is_a_task_output_error(tmp_path: Path) -> None:
    task = tmp_path / "dated.py"
    task.write_text(
        "import datetime\n"
        "def handler(event, context):\n"
        "    return {'granules': [{'date': datetime.date(2020, 1, 1)}]}\n"
    )
    done = cli(f"{task}:handler", "-", stdin=b"{}")
    assert (done.returncode, done.stdout) == (1, b"")
    (line,) = done.stderr.splitlines()
    assert json.loads(line)["error"] == {
        "name": "TaskOutputError",
        "message": "the task's result is not JSON: $.granules[0].date is of type "
        "datetime.date; convert it with .isoformat()",
    }


def test_run_traceback_shows_the_tasks_frames_then_the_one_line_error(tmp_path: Path) -> None:
    task = tmp_path / "broken.py"
    task.write_text("def handler(event, context):\n    return find_granules(event)\n")
    done = cli("--traceback", f"{task}:handler", "-", stdin=b"{}")
    lines = done.stderr.decode().splitlines()
    assert done.returncode == 1 and lines[0] == "Traceback (most recent call last):"
    assert f'File "{task}", line 2, in handler' in done.stderr.decode()
    assert json.loads(lines[-1])["message"] == "run: NameError: name 'find_granules' is not defined"


def test_run_context_reads_like_a_lambda_context(tmp_path: Path) -> None:
    context = write_json(
        tmp_path / "context.json", {"functionName": "HelloWorld", "awsRequestId": "r-1"}
    )
    task = tmp_path / "ctx.py"
    task.write_text(
        "def handler(event, context):\n"
        "    return [context.function_name, context.aws_request_id,\n"
        "            context.get_remaining_time_in_millis()]\n"
    )
    done = cli(f"{task}:handler", "--context", context, "--timeout", "5", "-", stdin=b"{}")
    name, request, remaining = json.loads(done.stdout)["payload"]
    assert (name, request) == ("HelloWorld", "r-1") and 0 < remaining <= 5000


def test_run_without_a_context_file_still_gives_a_context_with_the_default_budget(
    tmp_path: Path,
) -> None:
    task = tmp_path / "ctx.py"
    task.write_text(
        "def handler(event, context):\n    return context.get_remaining_time_in_millis()\n"
    )
    done = cli(f"{task}:handler", "-", stdin=b'{"meta": {}}')
    message = json.loads(done.stdout)
    assert 800_000 < message["payload"] <= 900_000
    assert "workflow_tasks" not in message["meta"]


def test_run_passes_the_context_file(tmp_path: Path) -> None:
    context = write_json(tmp_path / "context.json", {"function_name": "ingest"})
    task = tmp_path / "ctx.py"
    task.write_text("def handler(event, context):\n    return context.function_name\n")
    done = cli(f"{task}:handler", "--context", context, "-", stdin=b'{"meta": {}}')
    message = json.loads(done.stdout)
    assert message["payload"] == "ingest"
    assert message["meta"]["workflow_tasks"]["0"]["name"] == "ingest"


def test_run_checks_schemas(tmp_path: Path) -> None:
    schema = write_json(tmp_path / "output.json", {"type": "string"})
    done = cli("--exec", "echo 1", "--schemas", f"output={schema}", "-", stdin=b"{}")
    assert done.returncode == 1 and b"output schema" in done.stderr


def test_run_store_dir_stands_in_for_s3(tmp_path: Path) -> None:
    message = {**MESSAGE, "ReplaceConfig": {"Path": "$.payload"}}
    done = cli(
        "--exec", "echo [1,2,3]", "--store", str(tmp_path / "store"), "-", stdin=dumps(message)
    )
    replace = json.loads(done.stdout)["replace"]
    stored = tmp_path / "store" / replace["Bucket"] / replace["Key"]
    assert json.loads(stored.read_bytes()) == [1, 2, 3]


def test_run_store_dir_rejects_a_key_that_escapes_it(tmp_path: Path) -> None:
    message = {"replace": {"Bucket": "b", "Key": "../../etc/passwd", "TargetPath": "$"}}
    done = cli("--exec", "cat", "--store", str(tmp_path), "-", stdin=dumps(message))
    assert done.returncode == 1 and b"RemoteStoreError" in done.stderr


def test_run_needs_task_or_exec_not_both() -> None:
    done = cli("a:b", "--exec", "cat", "-")
    assert done.returncode == 2 and b"TASK is replaced by --exec" in done.stderr


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_run_node_example_task() -> None:
    done = cli("--exec", "node examples/tasks/hello.js", "examples/tasks/message.json")
    assert json.loads(done.stdout)["payload"]["greeting"] == "hello MOD09GQ"


def test_run_gives_the_task_the_cumulus_logger_variables(tmp_path: Path) -> None:
    script = (
        "import json, os, sys; json.load(sys.stdin); print(json.dumps({name: os.environ.get(name)"
        " for name in ('EXECUTIONS', 'STACKNAME', 'GRANULES', 'PARENTARN', 'SENDER')}))"
    )
    message = {
        "cumulus_meta": {"execution_name": "ex-3", "parentExecutionArn": "arn:parent"},
        "meta": {"stack": "prod"},
        "payload": {"granules": [{"granuleId": "g1"}]},
    }
    context = write_json(tmp_path / "context.json", {"functionName": "Sync"})
    done = cli(
        "--exec", f"{sys.executable} -c {shlex.quote(script)}", "--context", context, "-",
        stdin=dumps(message),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["payload"] == {
        "EXECUTIONS": "ex-3",
        "STACKNAME": "prod",
        "GRANULES": '["g1"]',
        "PARENTARN": "arn:parent",
        "SENDER": "Sync",
    }
