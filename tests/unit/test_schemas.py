"""Schema checks of input, config and output, located like the historic adapter does."""

import json
from pathlib import Path

import pytest
from jsonschema import ValidationError

from message_adapter.errors import MessageError
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore

REQUIRES_GRANULES = {
    "type": "object",
    "required": ["granules"],
    "properties": {"granules": {"type": "array"}},
}


@pytest.fixture
def task_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    (tmp_path / "schemas").mkdir()
    return tmp_path


def write(path: Path, schema: dict) -> str:
    path.write_text(json.dumps(schema))
    return str(path)


def test_default_input_schema_is_found_under_the_task_root(task_root: Path) -> None:
    write(task_root / "schemas" / "input.json", REQUIRES_GRANULES)
    with pytest.raises(ValidationError, match="input schema: 'granules' is a required property"):
        Adapter(MemoryStore()).load_nested_event(event={"payload": {}})


def test_valid_input_passes(task_root: Path) -> None:
    write(task_root / "schemas" / "input.json", REQUIRES_GRANULES)
    assert Adapter(MemoryStore()).load_nested_event(event={"payload": {"granules": []}})[
        "input"
    ] == {"granules": []}


def test_mapped_schema_file_is_relative_to_the_task_root(task_root: Path) -> None:
    write(task_root / "my-output.json", REQUIRES_GRANULES)
    with pytest.raises(ValidationError, match="output schema"):
        Adapter(MemoryStore()).create_next_event(
            event={},
            handler_response={"no": 1},
            message_config=None,
            schemas={"output": "my-output.json"},
        )


def test_error_names_the_failing_location(task_root: Path) -> None:
    write(task_root / "schemas" / "output.json", REQUIRES_GRANULES)
    with pytest.raises(ValidationError, match=r"at output \$\.granules") as raised:
        Adapter(MemoryStore()).create_next_event(event={}, handler_response={"granules": "nope"})
    assert list(raised.value.path) == ["granules"]


def test_absolute_schema_paths_work(tmp_path: Path) -> None:
    schema = write(tmp_path / "abs.json", {"type": "array"})
    with pytest.raises(ValidationError, match="config schema"):
        Adapter(MemoryStore()).load_nested_event(
            event={"task_config": {"a": 1}}, schemas={"config": schema}
        )


def test_empty_config_is_not_validated(task_root: Path) -> None:
    write(task_root / "schemas" / "config.json", {"required": ["needed"]})
    assert Adapter(MemoryStore()).load_nested_event(event={})["config"] == {}


def test_missing_mapped_schema_is_skipped_with_a_warning(
    task_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Adapter(MemoryStore()).load_nested_event(event={"payload": 1}, schemas={"input": "gone.json"})
    assert "input schema" in capsys.readouterr().err


def test_schema_file_that_is_not_json_is_reported(task_root: Path) -> None:
    (task_root / "schemas" / "input.json").write_text("{not json")
    with pytest.raises(MessageError, match=r"schema file .*input\.json is not JSON"):
        Adapter(MemoryStore()).load_nested_event(event={"payload": 1})


def test_each_schema_file_is_compiled_once(task_root: Path) -> None:
    from message_adapter import schemas

    write(task_root / "schemas" / "input.json", {"type": "integer"})
    Adapter(MemoryStore()).load_nested_event(event={"payload": 1})
    compiled = schemas._compiled[str(task_root / "schemas" / "input.json")]
    Adapter(MemoryStore()).load_nested_event(event={"payload": 2})
    assert schemas._compiled[str(task_root / "schemas" / "input.json")] is compiled


def test_schemas_must_be_an_object() -> None:
    with pytest.raises(MessageError, match="schemas must be an object"):
        Adapter(MemoryStore()).load_nested_event(event={}, schemas="schemas/")


def test_a_ref_to_another_file_resolves_relative_to_the_schema_file(task_root: Path) -> None:
    (task_root / "schemas" / "defs").mkdir()
    write(task_root / "schemas" / "input.json", {"$ref": "defs/granules.json"})
    write(task_root / "schemas" / "defs" / "granules.json", {"$ref": "../common.json"})
    write(task_root / "schemas" / "common.json", REQUIRES_GRANULES)
    with pytest.raises(ValidationError, match="'granules' is a required property"):
        Adapter(MemoryStore()).load_nested_event(event={"payload": {}})


def test_an_unresolvable_ref_names_the_schema_file_and_the_ref(task_root: Path) -> None:
    write(task_root / "schemas" / "input.json", {"$ref": "nowhere.json#/defs/a"})
    with pytest.raises(MessageError, match=r"input schema .*input\.json: \$ref 'nowhere"):
        Adapter(MemoryStore()).load_nested_event(event={"payload": 1})


def test_a_schema_file_that_is_not_an_object_is_reported(task_root: Path) -> None:
    (task_root / "schemas" / "input.json").write_text("5")
    with pytest.raises(MessageError, match="must hold a JSON Schema .an object, or true/false"):
        Adapter(MemoryStore()).load_nested_event(event={"payload": 1})


def test_a_missing_schema_file_is_warned_once_per_path(
    task_root: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from message_adapter import schemas

    monkeypatch.setattr(schemas, "_warned", set())
    for _ in range(3):
        schemas._located.clear()  # as if many other lookups had pushed it out
        Adapter(MemoryStore()).load_nested_event(event={"payload": 1}, schemas={"input": "a.json"})
    assert capsys.readouterr().err.count("a.json") == 1


def test_schema_lookups_are_bounded(
    task_root: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from message_adapter import schemas

    monkeypatch.setattr(schemas, "_warned", set())
    monkeypatch.setattr(schemas, "_located", {})
    for index in range(schemas.LOOKUPS_KEPT + 50):
        Adapter(MemoryStore()).load_nested_event(
            event={"payload": 1}, schemas={"input": f"missing-{index}.json"}
        )
    assert len(schemas._located) == schemas.LOOKUPS_KEPT
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == schemas.LOOKUPS_KEPT + 1
    assert "no more are reported" in warnings[-1]
