"""Loading and calling tasks: Python callables and --exec commands (the task protocol)."""

import asyncio
from pathlib import Path

import pytest

from message_adapter.errors import TaskError, error_name
from message_adapter.tasks.loading import (
    TaskContext,
    TaskLoadError,
    load_callable,
    load_task,
)
from tests.helpers import wait_until

NESTED = {"input": {"granules": [1, 2]}, "config": {"name": "MOD09GQ"}}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---- Python callables ------------------------------------------------------------------


def test_file_task_is_loaded_by_path_and_function(tmp_path: Path) -> None:
    task_file = write(
        tmp_path / "count.py",
        "def handler(event, context):\n    return len(event['input']['granules'])\n",
    )
    task = load_callable(f"{task_file}:handler")
    assert task(NESTED, None) == 2


def test_file_task_can_import_its_sibling_modules(tmp_path: Path) -> None:
    write(tmp_path / "helper_for_sibling_test.py", "VALUE = 42\n")
    task_file = write(
        tmp_path / "main.py",
        "import helper_for_sibling_test\n"
        "def handler(event, context):\n    return helper_for_sibling_test.VALUE\n",
    )
    assert load_callable(f"{task_file}:handler")(NESTED, None) == 42


def test_module_task_is_imported_by_dotted_name(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "pkg_for_module_test"
    package.mkdir()
    write(package / "__init__.py", "")
    write(package / "tasks.py", "def handler(event, context):\n    return event['config']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = load_callable("pkg_for_module_test.tasks:handler")
    assert task(NESTED, None) == {"name": "MOD09GQ"}


def test_async_task_is_awaited(tmp_path: Path) -> None:
    task_file = write(
        tmp_path / "aio.py",
        "async def handler(event, context):\n    return event['config']['name']\n",
    )
    assert load_callable(f"{task_file}:handler")(NESTED, None) == "MOD09GQ"
    assert not asyncio.iscoroutinefunction(load_callable(f"{task_file}:handler"))


def test_task_without_a_colon_is_refused_with_the_expected_forms() -> None:
    with pytest.raises(TaskLoadError, match="package.module:function"):
        load_callable("tasks.handler")


def test_missing_function_is_named_in_the_error(tmp_path: Path) -> None:
    task_file = write(tmp_path / "empty.py", "")
    with pytest.raises(TaskLoadError, match="'nope'"):
        load_callable(f"{task_file}:nope")


def test_missing_task_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(TaskLoadError, match="does not exist"):
        load_callable(f"{tmp_path}/absent.py:handler")


def test_task_and_exec_are_mutually_exclusive() -> None:
    with pytest.raises(TaskLoadError, match="either TASK"):
        load_task("a:b", "cat")
    with pytest.raises(TaskLoadError, match="either TASK"):
        load_task(None, None)


def test_context_reads_as_keys_and_as_attributes() -> None:
    context = TaskContext(function_name="ingest")
    assert context["function_name"] == context.function_name == "ingest"
    with pytest.raises(AttributeError):
        _ = context.missing


def test_context_reads_camel_case_keys_as_snake_case_attributes() -> None:
    context = TaskContext(
        {"functionName": "ingest", "invokedFunctionArn": "arn:f", "awsRequestId": "r-1"}
    )
    assert (context.function_name, context.invoked_function_arn, context.aws_request_id) == (
        "ingest",
        "arn:f",
        "r-1",
    )
    assert context.functionName == "ingest"


def test_context_counts_down_the_remaining_time_from_its_timeout() -> None:
    context = TaskContext(timeout=10)
    first = context.get_remaining_time_in_millis()
    assert 9_000 < first <= 10_000
    assert context.get_remaining_time_in_millis() <= first


def test_context_remaining_time_stops_at_zero() -> None:
    context = TaskContext(timeout=0.01)
    wait_until(lambda: context.get_remaining_time_in_millis() == 0, what="the budget spent")
    assert context.get_remaining_time_in_millis() == 0


def test_context_default_budget_is_the_lambda_maximum() -> None:
    assert 899_000 < TaskContext().get_remaining_time_in_millis() <= 900_000


def test_missing_context_attribute_names_what_the_context_has() -> None:
    with pytest.raises(AttributeError, match="no 'memory_limit_in_mb'.*functionName"):
        _ = TaskContext(functionName="f").memory_limit_in_mb


def test_error_name_is_a_task_errors_own_name_else_the_class_name() -> None:
    assert error_name(TaskError("NoGranulesWorkflowError", "x")) == "NoGranulesWorkflowError"
    assert error_name(KeyError("x")) == "KeyError"


def test_error_name_ignores_a_name_attribute_of_other_exceptions() -> None:
    assert error_name(ImportError("no", name="no_such_module")) == "ImportError"
