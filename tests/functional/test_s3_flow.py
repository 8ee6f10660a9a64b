"""The remote-message rules end to end against real S3 (a moto server on loopback).

Each rule runs twice: through the library (``Adapter``) and through the ``stream`` protocol
of a real ``python -m message_adapter`` subprocess. Errors are checked through the library
(``Adapter`` and the historic ``MessageAdapter``) and through the single-command CLI.
"""

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from message_adapter.errors import MessageError, RemoteStoreError
from message_adapter.jsonio import dumps
from message_adapter.message_adapter import MessageAdapter
from message_adapter.sidecar.commands import Adapter
from tests.helpers import get_json, keys_in, put_json, run_adapter, stream_input

pytestmark = pytest.mark.usefixtures("s3_env")

Cma = Callable[[str, dict], Any]
KEY = re.compile(r"^events/([0-9a-f-]{36})$")


@pytest.fixture(params=["library", "stream"])
def cma(request: pytest.FixtureRequest) -> Cma:
    """``cma(command, request)``: the answer, from the library or from a stream subprocess."""
    if request.param == "library":
        return Adapter().run

    def through_stream(command: str, body: dict) -> Any:
        run = run_adapter("stream", stdin=stream_input((command, body)))
        assert (run.returncode, run.stderr.decode()) == (0, "")
        [answer] = run.answers()
        return answer

    return through_stream


def meta(bucket: str) -> dict:
    """A cumulus_meta whose system_bucket is the test's bucket."""
    return {"system_bucket": bucket, "execution_name": "exec-1", "state_machine": "arn:sm"}


def replace(bucket: str, key: str, target: str) -> dict:
    return {"Bucket": bucket, "Key": key, "TargetPath": target}


def offloaded_key(message: dict) -> str:
    """The key the message's replace points at, checked to be events/<uuid4>."""
    key = message["replace"]["Key"]
    match = KEY.match(key)
    assert match, key
    assert uuid.UUID(match.group(1)).version == 4
    return key


# ---- loadAndUpdateRemoteEvent ---------------------------------------------------------------


def test_load_merges_the_stored_object_into_an_object_target(
    cma: Cma, s3: Any, bucket: str
) -> None:
    put_json(s3, bucket, "events/p", {"over": "stored", "new": 2})
    event = {
        "cumulus_meta": meta(bucket),
        "payload": {"keep": 1, "over": "local"},
        "replace": replace(bucket, "events/p", "$.payload"),
    }

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {
        "cumulus_meta": meta(bucket),
        "payload": {"keep": 1, "over": "stored", "new": 2},
    }


def test_load_reads_keys_with_spaces_and_non_ascii(cma: Cma, s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/ä b+c?.json", {"odd": "key"})
    event = {"payload": {}, "replace": replace(bucket, "events/ä b+c?.json", "$.payload")}

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {"payload": {"odd": "key"}}


@pytest.mark.parametrize(
    ("local", "stored"),
    [
        ({"keep": 1}, [1, 2]),
        ("", {"a": 1}),
        ([], {"a": 1}),
        ({"keep": 1}, "text"),
    ],
)
def test_load_replaces_a_target_unless_both_are_objects(
    cma: Cma, s3: Any, bucket: str, local: Any, stored: Any
) -> None:
    put_json(s3, bucket, "events/p", stored)
    event = {"payload": local, "replace": replace(bucket, "events/p", "$.payload")}

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {"payload": stored}


def test_load_at_dollar_merges_into_the_whole_message(cma: Cma, s3: Any, bucket: str) -> None:
    stored = {
        "cumulus_meta": meta(bucket),
        "meta": {"m": 1},
        "payload": {"big": "ü" * 50},
        "exception": "None",
    }
    put_json(s3, bucket, "events/full", stored)
    event = {
        "cumulus_meta": {"execution_name": "local"},
        "extra": True,
        "replace": replace(bucket, "events/full", "$"),
    }

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {**stored, "extra": True}


def test_load_of_a_cma_message_keeps_replace(cma: Cma, s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/p", {"stored": True})
    inner = {
        "cumulus_meta": meta(bucket),
        "payload": {},
        "replace": replace(bucket, "events/p", "$.payload"),
    }
    event = {"cma": {"event": inner, "task_config": {"t": 1}}}

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {
        "cumulus_meta": meta(bucket),
        "payload": {"stored": True},
        "replace": replace(bucket, "events/p", "$.payload"),
        "task_config": {"t": 1},
    }


@pytest.mark.parametrize("stored_exception", ["None", "", {}])
def test_load_keeps_a_local_exception_over_an_empty_stored_one(
    cma: Cma, s3: Any, bucket: str, stored_exception: Any
) -> None:
    put_json(s3, bucket, "events/full", {"payload": 1, "exception": stored_exception})
    event = {"exception": {"Error": "local"}, "replace": replace(bucket, "events/full", "$")}

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {"payload": 1, "exception": {"Error": "local"}}


def test_load_takes_a_stored_exception_over_the_local_one(cma: Cma, s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/full", {"payload": 1, "exception": {"Error": "stored"}})
    event = {"exception": {"Error": "local"}, "replace": replace(bucket, "events/full", "$")}

    result = cma("loadAndUpdateRemoteEvent", {"event": event})

    assert result == {"payload": 1, "exception": {"Error": "stored"}}


# ---- createNextEvent ------------------------------------------------------------------------


def test_create_offloads_the_path_to_the_system_bucket(cma: Cma, s3: Any, bucket: str) -> None:
    event = {
        "cumulus_meta": meta(bucket),
        "meta": {"m": 1},
        "task_config": {"t": 1},
        "ReplaceConfig": {"Path": "$.payload"},
    }
    response = {"granules": [{"granuleId": "g-1"}]}

    result = cma("createNextEvent", {"event": event, "handler_response": response})

    key = offloaded_key(result)
    assert result == {
        "cumulus_meta": meta(bucket),
        "meta": {"m": 1},
        "payload": {},
        "exception": "None",
        "replace": replace(bucket, key, "$.payload"),
    }
    assert get_json(s3, bucket, key) == response


def test_create_marks_the_offloaded_part_to_expire_in_seven_days(
    cma: Cma, s3: Any, bucket: str
) -> None:
    from datetime import datetime, timedelta, timezone
    from email.utils import parsedate_to_datetime

    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload"}}

    result = cma("createNextEvent", {"event": event, "handler_response": [1]})

    head = s3.head_object(Bucket=bucket, Key=offloaded_key(result))
    expires = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["expires"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(days=7))) < timedelta(hours=1)


@pytest.mark.parametrize(
    ("response", "emptied"),
    [
        ({"a": 1}, {}),
        ([1, 2], []),
        ("text", ""),
        (42, ""),
        (True, ""),
    ],
)
def test_create_empties_the_offloaded_node_by_type(
    cma: Cma, s3: Any, bucket: str, response: Any, emptied: Any
) -> None:
    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload"}}

    result = cma("createNextEvent", {"event": event, "handler_response": response})

    assert result["payload"] == emptied
    assert get_json(s3, bucket, offloaded_key(result)) == response


def test_create_full_message_keeps_only_the_original_cumulus_meta(
    cma: Cma, s3: Any, bucket: str
) -> None:
    event = {
        "cumulus_meta": meta(bucket),
        "meta": {"m": 1},
        "task_config": {"t": 1},
        "ReplaceConfig": {"FullMessage": True},
    }

    result = cma("createNextEvent", {"event": event, "handler_response": {"r": 1}})

    key = offloaded_key(result)
    assert result == {"cumulus_meta": meta(bucket), "replace": replace(bucket, key, "$")}
    assert get_json(s3, bucket, key) == {
        "cumulus_meta": meta(bucket),
        "meta": {"m": 1},
        "payload": {"r": 1},
        "exception": "None",
    }


def test_create_points_replace_at_the_target_path_when_given(
    cma: Cma, s3: Any, bucket: str
) -> None:
    event = {
        "cumulus_meta": meta(bucket),
        "ReplaceConfig": {"Path": "$.payload", "TargetPath": "$.meta.big"},
    }

    result = cma("createNextEvent", {"event": event, "handler_response": [1]})

    assert result["replace"]["TargetPath"] == "$.meta.big"


NON_ASCII = {"name": "café ☃ 𝄞", "list": ["ü"] * 5}
SIZE = len(json.dumps(NON_ASCII))  # the historic rule: json.dumps escapes non-ASCII


def test_boundary_fixture_tells_escaped_size_from_utf8_size() -> None:
    assert len(dumps(NON_ASCII)) < SIZE  # compact UTF-8 is shorter than json.dumps text


def test_create_offloads_a_node_exactly_max_size(cma: Cma, s3: Any, bucket: str) -> None:
    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload", "MaxSize": SIZE}}

    result = cma("createNextEvent", {"event": event, "handler_response": NON_ASCII})

    assert result["payload"] == {}
    assert get_json(s3, bucket, offloaded_key(result)) == NON_ASCII


def test_create_keeps_a_node_one_byte_under_max_size(cma: Cma, s3: Any, bucket: str) -> None:
    event = {
        "cumulus_meta": meta(bucket),
        "ReplaceConfig": {"Path": "$.payload", "MaxSize": SIZE + 1},
    }

    result = cma("createNextEvent", {"event": event, "handler_response": NON_ASCII})

    assert result == {"cumulus_meta": meta(bucket), "payload": NON_ASCII, "exception": "None"}
    assert keys_in(s3, bucket) == []


def test_two_offloads_of_the_same_message_never_share_a_key(cma: Cma, s3: Any, bucket: str) -> None:
    request = {
        "event": {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload"}},
        "handler_response": {"same": True},
    }

    first = cma("createNextEvent", request)
    second = cma("createNextEvent", request)

    assert offloaded_key(first) != offloaded_key(second)
    assert sorted(keys_in(s3, bucket)) == sorted([offloaded_key(first), offloaded_key(second)])


# ---- round trip -----------------------------------------------------------------------------

CONTENT = {
    "granules": [{"granuleId": "g-ü", "files": [{"size": 2**70}]}],
    "n": None,
    "f": 1.5,
    "text": 'line\nbreak "quoted" 𝄞',
}


@pytest.mark.parametrize(
    "replace_config",
    [
        {"Path": "$.payload"},
        {"Path": "$.meta.big", "TargetPath": "$.meta.big"},
        {"FullMessage": True},
    ],
)
def test_offload_then_load_restores_the_message(
    cma: Cma, bucket: str, replace_config: dict
) -> None:
    event = {
        "cumulus_meta": meta(bucket),
        "meta": {"big": CONTENT, "small": 1},
        "ReplaceConfig": replace_config,
    }
    expected = {
        "cumulus_meta": meta(bucket),
        "meta": {"big": CONTENT, "small": 1},
        "payload": CONTENT,
        "exception": "None",
    }

    offloaded = cma("createNextEvent", {"event": event, "handler_response": CONTENT})
    loaded = cma("loadAndUpdateRemoteEvent", {"event": offloaded})

    assert "replace" in offloaded
    assert loaded == expected


# ---- nothing is orphaned: errors found before the upload write nothing ---------------------


@pytest.mark.parametrize(
    "replace_config",
    [
        {"Path": "$.nowhere"},
        {"Path": "$.payload[*]"},
        {"Path": "$.payload", "MaxSize": "big"},
        {"Path": 5},
        {"Path": "$["},
        {"Path": "$.payload", "TargetPath": 5},
        {"Path": "$.payload", "TargetPath": "$["},
    ],
    ids=[
        "path-matches-nothing",
        "path-matches-two",
        "bad-max-size",
        "path-not-text",
        "path-syntax",
        "target-path-not-text",
        "target-path-syntax",
    ],
)
def test_bad_replace_config_fails_before_anything_is_stored(
    s3: Any, bucket: str, replace_config: dict
) -> None:
    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": replace_config}

    try:
        Adapter().create_next_event(event=event, handler_response=[1, 2])
    except MessageError:
        pass
    else:
        raise AssertionError(f"no error for ReplaceConfig {replace_config}")
    assert keys_in(s3, bucket) == []


def test_offload_without_system_bucket_stores_nothing(s3: Any, bucket: str) -> None:
    event = {"cumulus_meta": {}, "ReplaceConfig": {"Path": "$.payload"}}

    with pytest.raises(MessageError, match="system_bucket"):
        Adapter().create_next_event(event=event, handler_response=[1])
    assert keys_in(s3, bucket) == []


# ---- errors name bucket and key -------------------------------------------------------------


def test_missing_object_error_names_bucket_and_key(bucket: str) -> None:
    event = {"payload": {}, "replace": replace(bucket, "events/gone", "$.payload")}

    with pytest.raises(RemoteStoreError, match=rf"cannot read s3://{bucket}/events/gone: no such"):
        MessageAdapter().load_and_update_remote_event(event, None)


def test_missing_bucket_on_load_names_the_bucket() -> None:
    event = {"payload": {}, "replace": replace("cma-no-such-bucket", "events/x", "$.payload")}

    with pytest.raises(
        RemoteStoreError,
        match=r"s3://cma-no-such-bucket/events/x: bucket "
        r"'cma-no-such-bucket' does not exist",
    ):
        Adapter().load_and_update_remote_event(event=event)


def test_missing_bucket_on_offload_names_bucket_and_key() -> None:
    event = {"cumulus_meta": meta("cma-no-such-bucket"), "ReplaceConfig": {"Path": "$.payload"}}

    with pytest.raises(
        RemoteStoreError,
        match=r"cannot write s3://cma-no-such-bucket/events/"
        r"[0-9a-f-]{36}: bucket 'cma-no-such-bucket'",
    ):
        MessageAdapter().create_next_event([1], event, None)


def test_access_denied_on_load_names_bucket_and_key(
    s3: Any, bucket: str, restricted_credentials: Any
) -> None:
    put_json(s3, bucket, "events/p", {"secret": 1})
    restricted_credentials(allow=[])
    event = {"payload": {}, "replace": replace(bucket, "events/p", "$.payload")}

    with pytest.raises(
        RemoteStoreError,
        match=rf"cannot read s3://{bucket}/events/p: access "
        r"denied; .* needs s3:GetObject",
    ):
        Adapter().load_and_update_remote_event(event=event)


def test_access_denied_on_offload_names_bucket_and_key(
    bucket: str, restricted_credentials: Any
) -> None:
    restricted_credentials(allow=[{"Action": "s3:GetObject", "Resource": "*"}])
    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload"}}

    with pytest.raises(
        RemoteStoreError,
        match=rf"cannot write s3://{bucket}/events/[0-9a-f-]"
        r"{36}: access denied; .* needs s3:PutObject",
    ):
        MessageAdapter().create_next_event([1], event, None)


def test_invalid_bucket_name_is_named() -> None:
    event = {"payload": {}, "replace": replace("no spaces allowed", "events/x", "$.payload")}

    with pytest.raises(
        RemoteStoreError,
        match=r"s3://no spaces allowed/events/x: S3 does not "
        r"accept this bucket or key",
    ):
        Adapter().load_and_update_remote_event(event=event)


def test_stored_non_object_at_dollar_is_an_error_naming_bucket_and_key(
    s3: Any, bucket: str
) -> None:
    put_json(s3, bucket, "events/list", [1, 2])
    event = {"meta": {}, "replace": replace(bucket, "events/list", "$")}

    with pytest.raises((MessageError, RemoteStoreError), match=rf"{bucket}/events/list"):
        Adapter().load_and_update_remote_event(event=event, context={"function_name": "f"})


def test_offload_without_system_bucket_says_so() -> None:
    event = {"cumulus_meta": {"execution_name": "e"}, "ReplaceConfig": {"Path": "$.payload"}}

    with pytest.raises(MessageError, match=r"cumulus_meta\.system_bucket"):
        Adapter().create_next_event(event=event, handler_response=[1])


def _cli_missing_bucket(bucket: str) -> tuple[str, dict, str]:
    event = {"cumulus_meta": meta("cma-no-such-bucket"), "ReplaceConfig": {"Path": "$.payload"}}
    return (
        "createNextEvent",
        {"event": event, "handler_response": [1]},
        r"s3://cma-no-such-bucket/events/[0-9a-f-]{36}: bucket 'cma-no-such-bucket' does not",
    )


def _cli_missing_object(bucket: str) -> tuple[str, dict, str]:
    event = {"payload": {}, "replace": replace(bucket, "events/gone", "$.payload")}
    return (
        "loadAndUpdateRemoteEvent",
        {"event": event},
        rf"s3://{bucket}/events/gone: no such object",
    )


def _cli_no_system_bucket(bucket: str) -> tuple[str, dict, str]:
    event = {"cumulus_meta": {}, "ReplaceConfig": {"Path": "$.payload"}}
    return (
        "createNextEvent",
        {"event": event, "handler_response": [1]},
        r"cumulus_meta\.system_bucket",
    )


@pytest.mark.parametrize(
    "case",
    [_cli_missing_bucket, _cli_missing_object, _cli_no_system_bucket],
    ids=["missing-bucket", "missing-object", "no-system-bucket"],
)
def test_cli_reports_a_store_error_on_one_line_and_exits_1(
    bucket: str, case: Callable[[str], tuple[str, dict, str]]
) -> None:
    command, request, expected = case(bucket)

    run = run_adapter(command, stdin=dumps(request))

    assert (run.returncode, run.stdout) == (1, b"")
    [line] = run.stderr.decode().splitlines()
    assert re.search(expected, line), line


def test_cli_reports_access_denied(s3: Any, bucket: str, restricted_credentials: Any) -> None:
    restricted_credentials(allow=[{"Action": "s3:GetObject", "Resource": "*"}])
    event = {"cumulus_meta": meta(bucket), "ReplaceConfig": {"Path": "$.payload"}}

    run = run_adapter("createNextEvent", stdin=dumps({"event": event, "handler_response": [1]}))

    assert (run.returncode, run.stdout) == (1, b"")
    [line] = run.stderr.decode().splitlines()
    assert re.search(rf"cannot write s3://{bucket}/events/\S+: access denied", line), line


def test_stream_with_structured_errors_answers_a_store_error_and_goes_on(
    s3: Any, bucket: str
) -> None:
    put_json(s3, bucket, "events/p", [1])
    missing = {"event": {"payload": {}, "replace": replace(bucket, "events/gone", "$.payload")}}
    present = {"event": {"payload": {}, "replace": replace(bucket, "events/p", "$.payload")}}

    run = run_adapter(
        "stream",
        "--structured-errors",
        stdin=stream_input(
            ("loadAndUpdateRemoteEvent", missing), ("loadAndUpdateRemoteEvent", present)
        ),
    )

    error_frame, answer_frame, end = run.stdout.split(b"\n<EOC>\n")
    assert run.returncode == 0 and end == b""
    assert error_frame.startswith(b"<ERROR>\n")
    error = json.loads(error_frame[len(b"<ERROR>\n") :])
    assert error["name"] == "RemoteStoreError"
    assert f"s3://{bucket}/events/gone" in error["message"]
    assert json.loads(answer_frame) == {"payload": [1]}


# ---- boto3 is imported only when a message touches S3 ---------------------------------------


def imported_modules(stderr: bytes) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in stderr.decode().splitlines()
        if line.startswith("import time:")
    }


def test_stream_without_remote_parts_never_imports_boto3() -> None:
    event = {
        "cumulus_meta": {"execution_name": "e"},
        "payload": {"a": 1},
        "task_config": {"x": "{$.payload.a}"},
    }

    run = run_adapter(
        "stream",
        python_flags=("-X", "importtime"),
        stdin=stream_input(
            ("loadAndUpdateRemoteEvent", {"event": event}),
            ("loadNestedEvent", {"event": event}),
            ("createNextEvent", {"event": event, "handler_response": {"b": 2}}),
        ),
    )

    assert run.returncode == 0 and len(run.answers()) == 3
    modules = imported_modules(run.stderr)
    assert "message_adapter.sidecar.protocol" in modules  # the import log is being read right
    assert not {name for name in modules if name.split(".")[0] in ("boto3", "botocore")}


def test_stream_with_a_replace_does_import_boto3(s3: Any, bucket: str) -> None:
    put_json(s3, bucket, "events/p", [1])
    event = {"payload": {}, "replace": replace(bucket, "events/p", "$.payload")}

    run = run_adapter(
        "stream",
        python_flags=("-X", "importtime"),
        stdin=stream_input(("loadAndUpdateRemoteEvent", {"event": event})),
    )

    assert run.answers() == [{"payload": [1]}]
    assert "boto3" in imported_modules(run.stderr)
