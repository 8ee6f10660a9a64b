"""The three commands' message rules, through the library with an in-memory store."""

import copy
import json
from typing import Any

import pytest

from message_adapter.errors import MessageError, TemplateError
from message_adapter.message_adapter import MessageAdapter
from message_adapter.rules.message_flow import historic_json_size
from message_adapter.sidecar.commands import Adapter
from message_adapter.stores import MemoryStore


def adapter(objects: dict | None = None) -> Adapter:
    return Adapter(MemoryStore(objects))


# ---- loadAndUpdateRemoteEvent


def test_message_without_replace_or_context_is_returned_as_is() -> None:
    event = {"meta": {}, "payload": {"a": 1}}
    assert adapter().load_and_update_remote_event(event=event) == event


def test_replace_merges_a_stored_object_into_an_object_target() -> None:
    store = {("b", "k"): {"granules": [1], "extra": True}}
    event = {
        "payload": {"keep": 1},
        "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$.payload"},
    }
    assert adapter(store).load_and_update_remote_event(event=event) == {
        "payload": {"keep": 1, "granules": [1], "extra": True}
    }


def test_replace_replaces_a_non_object_target() -> None:
    store = {("b", "k"): [1, 2]}
    event = {"payload": {}, "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$.payload"}}
    assert adapter(store).load_and_update_remote_event(event=event) == {"payload": [1, 2]}


def test_replace_at_dollar_merges_the_whole_message() -> None:
    store = {("b", "k"): {"meta": {"m": 1}, "payload": {"p": 2}, "exception": "None"}}
    event = {"cumulus_meta": {"c": 1}, "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$"}}
    assert adapter(store).load_and_update_remote_event(event=event) == {
        "cumulus_meta": {"c": 1},
        "meta": {"m": 1},
        "payload": {"p": 2},
        "exception": "None",
    }


def test_local_exception_survives_an_empty_stored_one() -> None:
    store = {("b", "k"): {"exception": "None", "payload": {}}}
    event = {
        "exception": {"Error": "Boom"},
        "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$"},
    }
    assert adapter(store).load_and_update_remote_event(event=event)["exception"] == {
        "Error": "Boom"
    }


def test_stored_exception_wins_over_a_local_none() -> None:
    store = {("b", "k"): {"exception": {"Error": "Stored"}}}
    event = {"exception": "None", "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$"}}
    assert adapter(store).load_and_update_remote_event(event=event)["exception"] == {
        "Error": "Stored"
    }


def test_replace_target_must_match_exactly_one_place() -> None:
    event = {"payload": {}, "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$.missing"}}
    with pytest.raises(MessageError, match="must match exactly one place"):
        adapter({("b", "k"): {}}).load_and_update_remote_event(event=event)


def test_replace_without_bucket_says_what_it_needs() -> None:
    with pytest.raises(MessageError, match="Bucket, Key and TargetPath"):
        adapter().load_and_update_remote_event(event={"replace": {"Key": "k", "TargetPath": "$"}})


def test_cma_event_is_unwrapped_and_cma_keys_win() -> None:
    event = {
        "cma": {
            "event": {"payload": 1, "task_config": {"old": 1}},
            "task_config": {"new": 2},
            "ReplaceConfig": {"Path": "$.payload"},
        }
    }
    assert adapter().load_and_update_remote_event(event=event) == {
        "payload": 1,
        "task_config": {"new": 2},
        "ReplaceConfig": {"Path": "$.payload"},
    }


def test_cma_message_keeps_replace_after_loading() -> None:
    replace = {"Bucket": "b", "Key": "k", "TargetPath": "$.payload"}
    event = {"cma": {"event": {"payload": {}, "replace": replace}, "task_config": {}}}
    loaded = adapter({("b", "k"): {"p": 1}}).load_and_update_remote_event(event=event)
    assert loaded == {"payload": {"p": 1}, "replace": replace, "task_config": {}}


def test_cma_key_wins_over_a_stored_key() -> None:
    event = {
        "cma": {
            "event": {"replace": {"Bucket": "b", "Key": "k", "TargetPath": "$"}},
            "task_config": {"from": "cma"},
        }
    }
    loaded = adapter({("b", "k"): {"task_config": {"from": "s3"}}}).load_and_update_remote_event(
        event=event
    )
    assert loaded["task_config"] == {"from": "cma"}


def test_cma_without_event_explains_the_shape() -> None:
    with pytest.raises(MessageError, match="cma.event must hold the Cumulus message"):
        adapter().load_and_update_remote_event(event={"cma": {"task_config": {}}})


def test_empty_cma_is_an_ordinary_message() -> None:
    assert adapter().load_and_update_remote_event(event={"cma": {}, "payload": 1}) == {
        "cma": {},
        "payload": 1,
    }


@pytest.mark.parametrize(
    ("context", "record"),
    [
        (
            {"function_name": "f", "function_version": "1", "invoked_function_arn": "arn:f"},
            {"name": "f", "version": "1", "arn": "arn:f"},
        ),
        (
            {"functionName": "f", "functionVersion": "$LATEST", "invokedFunctionArn": "arn:f"},
            {"name": "f", "version": "$LATEST", "arn": "arn:f"},
        ),
        ({"activityArn": "arn:activity"}, {"name": None, "version": None, "arn": "arn:activity"}),
    ],
    ids=["lambda-snake-case", "lambda-camel-case", "activity"],
)
def test_context_is_recorded_in_workflow_tasks(context: dict, record: dict) -> None:
    loaded = adapter().load_and_update_remote_event(event={"meta": {}}, context=context)
    assert loaded["meta"]["workflow_tasks"] == {"0": record}


def test_workflow_tasks_are_numbered_by_how_many_are_recorded() -> None:
    event = {"meta": {"workflow_tasks": {"0": {}, "1": {}}}}
    loaded = adapter().load_and_update_remote_event(event=event, context={"functionName": "third"})
    assert loaded["meta"]["workflow_tasks"]["2"]["name"] == "third"


def test_no_meta_means_no_task_record() -> None:
    assert adapter().load_and_update_remote_event(
        event={"payload": 1}, context={"functionName": "f"}
    ) == {"payload": 1}


def test_empty_context_records_nothing() -> None:
    assert adapter().load_and_update_remote_event(event={"meta": {}}, context={}) == {"meta": {}}


# ---- loadNestedEvent


def test_nested_event_without_task_config_has_payload_and_empty_config() -> None:
    assert adapter().load_nested_event(event={"payload": {"a": 1}}) == {
        "input": {"a": 1},
        "config": {},
    }


def test_missing_payload_is_null_input() -> None:
    assert adapter().load_nested_event(event={})["input"] is None


def test_config_templates_resolve_against_the_message() -> None:
    event = {"meta": {"bucket": "b"}, "task_config": {"bucket": "{$.meta.bucket}", "n": 3}}
    assert adapter().load_nested_event(event=event)["config"] == {"bucket": "b", "n": 3}


def test_cumulus_message_input_template_chooses_the_input() -> None:
    event = {
        "meta": {"x": [1]},
        "payload": "ignored",
        "task_config": {"cumulus_message": {"input": "{$.meta.x}"}},
    }
    nested = adapter().load_nested_event(event=event)
    assert nested["input"] == [1]
    assert nested["config"] == {}
    assert nested["messageConfig"] == {"input": "{$.meta.x}"}


def test_object_input_is_resolved_like_config() -> None:
    event = {"meta": {"x": 1}, "task_config": {"cumulus_message": {"input": {"a": "{$.meta.x}"}}}}
    assert adapter().load_nested_event(event=event)["input"] == {"a": 1}


def test_cumulus_config_needs_both_state_machine_and_execution_name() -> None:
    event = {"cumulus_meta": {"state_machine": "sm", "cumulus_context": {"c": 1}}}
    assert adapter().load_nested_event(event=event)["cumulus_config"] == {
        "cumulus_context": {"c": 1}
    }


def test_cumulus_config_carries_execution_details() -> None:
    event = {"cumulus_meta": {"state_machine": "sm", "execution_name": "ex", "other": 1}}
    assert adapter().load_nested_event(event=event)["cumulus_config"] == {
        "state_machine": "sm",
        "execution_name": "ex",
    }


def test_cumulus_config_is_omitted_when_empty() -> None:
    assert "cumulus_config" not in adapter().load_nested_event(event={"cumulus_meta": {"x": 1}})


def test_bad_template_error_names_the_key() -> None:
    with pytest.raises(TemplateError, match=r"task_config\.pattern"):
        adapter().load_nested_event(event={"task_config": {"pattern": "{not a path}"}})


def test_task_config_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(MessageError, match="task_config must be a JSON object"):
        adapter().load_nested_event(event={"task_config": [1]})


# ---- createNextEvent


def test_response_becomes_the_payload_and_exception_defaults_to_none() -> None:
    event = {"meta": {}, "payload": {"old": 1}, "replace": {"x": 1}}
    assert adapter().create_next_event(event=event, handler_response={"new": 2}) == {
        "meta": {},
        "payload": {"new": 2},
        "exception": "None",
    }


def test_missing_response_is_a_null_payload() -> None:
    assert adapter().run("createNextEvent", {"event": {}})["payload"] is None


def test_existing_exception_is_kept() -> None:
    assert (
        adapter().create_next_event(event={"exception": "Err"}, handler_response=1)["exception"]
        == "Err"
    )


def test_outputs_write_sources_at_destinations() -> None:
    config = {
        "outputs": [
            {"source": "{$.granules}", "destination": "{$.payload}"},
            {"source": "{$.count}", "destination": "{$.meta.stats.count}"},
        ]
    }
    event = {"meta": {"keep": 1}, "payload": {"old": 1}}
    result = adapter().create_next_event(
        event=event, handler_response={"granules": [1], "count": 5}, message_config=config
    )
    assert result["payload"] == [1]
    assert result["meta"] == {"keep": 1, "stats": {"count": 5}}


def test_outputs_start_from_an_empty_payload() -> None:
    config = {"outputs": [{"source": "{$.a}", "destination": "{$.meta.a}"}]}
    assert (
        adapter().create_next_event(
            event={"payload": 9}, handler_response={"a": 1}, message_config=config
        )["payload"]
        == {}
    )


def test_message_config_without_outputs_keeps_the_whole_response() -> None:
    assert adapter().create_next_event(
        event={}, handler_response=[1], message_config={"input": "{$}"}
    )["payload"] == [1]


def test_offload_moves_the_path_to_the_store_and_points_at_it() -> None:
    store = MemoryStore()
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "task_config": {"a": 1},
        "ReplaceConfig": {"Path": "$.payload"},
    }
    result = Adapter(store).create_next_event(event=event, handler_response={"big": "x" * 10})
    (((bucket, key), body),) = store.objects.items()
    assert (bucket, key[:7]) == ("sys", "events/")
    assert json.loads(body) == {"big": "x" * 10}
    assert result == {
        "cumulus_meta": {"system_bucket": "sys"},
        "payload": {},
        "exception": "None",
        "replace": {"Bucket": "sys", "Key": key, "TargetPath": "$.payload"},
    }


def test_offload_of_full_message_keeps_only_cumulus_meta() -> None:
    store = MemoryStore()
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "meta": {"m": 1},
        "ReplaceConfig": {"FullMessage": True},
    }
    result = Adapter(store).create_next_event(event=event, handler_response=[1])
    assert set(result) == {"cumulus_meta", "replace"}
    assert result["replace"]["TargetPath"] == "$"
    (body,) = store.objects.values()
    assert json.loads(body) == {
        "cumulus_meta": {"system_bucket": "sys"},
        "meta": {"m": 1},
        "payload": [1],
        "exception": "None",
    }


@pytest.mark.parametrize(("value", "emptied"), [([1], []), ("text", ""), (5, "")])
def test_offload_empties_lists_and_scalars(value: Any, emptied: Any) -> None:
    event = {"cumulus_meta": {"system_bucket": "sys"}, "ReplaceConfig": {"Path": "$.payload"}}
    assert adapter().create_next_event(event=event, handler_response=value)["payload"] == emptied


def test_offload_uses_target_path_when_given() -> None:
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "ReplaceConfig": {"Path": "$.payload", "TargetPath": "$.payload.inner"},
    }
    assert (
        adapter().create_next_event(event=event, handler_response={})["replace"]["TargetPath"]
        == "$.payload.inner"
    )


def test_part_smaller_than_max_size_stays_in_the_message() -> None:
    response = {"name": "é"}
    size = historic_json_size(response)
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "ReplaceConfig": {"Path": "$.payload", "MaxSize": size + 1},
    }
    result = adapter().create_next_event(event=event, handler_response=response)
    assert result["payload"] == response
    assert "ReplaceConfig" not in result and "replace" not in result


def test_part_exactly_max_size_is_offloaded() -> None:
    response = {"name": "é"}
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "ReplaceConfig": {"Path": "$.payload", "MaxSize": historic_json_size(response)},
    }
    assert "replace" in adapter().create_next_event(event=event, handler_response=response)


def test_historic_size_counts_escaped_non_ascii_and_spaced_separators() -> None:
    assert historic_json_size({"a": ["é", 1]}) == len('{"a": ["\\u00e9", 1]}')


def test_offload_without_cumulus_meta_is_an_error() -> None:
    with pytest.raises(MessageError, match="no cumulus_meta"):
        adapter().create_next_event(
            event={"ReplaceConfig": {"Path": "$.payload"}}, handler_response=1
        )


def test_offload_without_system_bucket_names_it() -> None:
    event = {"cumulus_meta": {}, "ReplaceConfig": {"Path": "$.payload"}}
    with pytest.raises(MessageError, match="cumulus_meta.system_bucket"):
        adapter().create_next_event(event=event, handler_response=1)


def test_offload_path_must_match_one_place_and_nothing_is_stored() -> None:
    store = MemoryStore()
    event = {"cumulus_meta": {"system_bucket": "s"}, "ReplaceConfig": {"Path": "$.nope"}}
    with pytest.raises(MessageError, match="exactly one place"):
        Adapter(store).create_next_event(event=event, handler_response=1)
    assert store.objects == {}


def test_offload_then_load_restores_the_message() -> None:
    store = MemoryStore()
    event = {
        "cumulus_meta": {"system_bucket": "sys"},
        "meta": {"m": 1},
        "ReplaceConfig": {"Path": "$.payload"},
    }
    next_message = Adapter(store).create_next_event(
        event=event, handler_response={"granules": [1, 2]}
    )
    restored = Adapter(store).load_and_update_remote_event(event=next_message)
    assert restored == {
        "cumulus_meta": {"system_bucket": "sys"},
        "meta": {"m": 1},
        "payload": {"granules": [1, 2]},
        "exception": "None",
    }


# ---- no command mutates its input (the published Python client relies on it)


def test_library_methods_never_mutate_their_arguments() -> None:
    store = MemoryStore({("b", "k"): {"stored": 1}})
    event = {
        "cumulus_meta": {"system_bucket": "sys", "state_machine": "s", "execution_name": "e"},
        "meta": {"workflow_tasks": {}, "x": 1},
        "payload": {"p": [1]},
        "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$.payload"},
        "task_config": {
            "x": "{$.meta.x}",
            "cumulus_message": {"outputs": [{"source": "{$}", "destination": "{$.meta.out}"}]},
        },
        "ReplaceConfig": {"Path": "$.meta"},
    }
    original = copy.deepcopy(event)
    legacy = MessageAdapter(store=store)
    loaded = legacy.load_and_update_remote_event(event, {"functionName": "f"})
    loaded_copy = copy.deepcopy(loaded)
    nested = legacy.load_nested_event(loaded)
    legacy.create_next_event({"r": 1}, loaded, nested["messageConfig"])
    assert event == original
    assert loaded == loaded_copy


def test_workflow_tasks_that_is_not_an_object_is_an_error() -> None:
    with pytest.raises(MessageError, match="meta.workflow_tasks must be an object .* got list"):
        Adapter(MemoryStore()).load_and_update_remote_event(
            event={"meta": {"workflow_tasks": [{"name": "a"}]}}, context={"functionName": "f"}
        )


def test_null_workflow_tasks_starts_afresh() -> None:
    loaded = Adapter(MemoryStore()).load_and_update_remote_event(
        event={"meta": {"workflow_tasks": None}}, context={"functionName": "f"}
    )
    assert loaded["meta"]["workflow_tasks"] == {"0": {"name": "f", "version": None, "arn": None}}


def test_outputs_that_are_not_a_list_are_an_error() -> None:
    with pytest.raises(MessageError, match="message_config.outputs must be a list"):
        Adapter(MemoryStore()).create_next_event(
            event={}, handler_response=1, message_config={"outputs": 5}
        )


def test_a_bad_output_destination_names_the_output() -> None:
    outputs = [{"source": "{$}", "destination": "{$.a}"}, {"source": "{$}", "destination": "{$[}"}]
    with pytest.raises(MessageError, match=r"message_config.outputs\[1\].destination: "):
        Adapter(MemoryStore()).create_next_event(
            event={}, handler_response=1, message_config={"outputs": outputs}
        )


def test_task_config_resolves_at_any_depth_the_parser_allows() -> None:
    deep: Any = "{$.meta.name}"
    for _ in range(950):
        deep = [deep]
    nested = Adapter(MemoryStore()).load_nested_event(
        event={"meta": {"name": "n"}, "task_config": {"a": deep}}
    )
    value = nested["config"]["a"]
    for _ in range(950):
        value = value[0]
    assert value == "n"
