"""Protocol v2 (beginTask, completeTask) answers byte for byte what v1's three commands do."""

import io
import re
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from message_adapter.errors import describe
from message_adapter.jsonio import dumps, loads
from message_adapter.sidecar import request_parsing
from message_adapter.sidecar.commands import Adapter
from message_adapter.sidecar.protocol import serve
from message_adapter.stores import MemoryStore
from message_adapter.tasks.output import plain_json
from tests.strategies import AWKWARD_MESSAGES, AWKWARD_VALUES, LAYOUTS, MESSAGE_CONFIGS, render

_OFFLOAD_KEY = re.compile(rb"events/[0-9a-f-]{36}")


def exchange(adapter: Adapter, *frames: tuple[str, bytes]) -> list[bytes]:
    """Each frame's answer line (``<ERROR>`` frames as ``b"<ERROR>" + their JSON``)."""
    stdin = io.BytesIO(
        b"".join(f"{command}\n".encode() + body + b"\n<EOC>\n" for command, body in frames)
    )
    stdout = io.BytesIO()
    serve(stdin, stdout, adapter.run_stream_command, describe, structured_errors=True)
    answers = stdout.getvalue().split(b"\n<EOC>\n")[:-1]
    return [answer.replace(b"<ERROR>\n", b"<ERROR>") for answer in answers]


def one(adapter: Adapter, command: str, body: bytes) -> bytes:
    return exchange(adapter, (command, body))[0]


def error_of(answer: bytes) -> tuple[str, str] | None:
    if not answer.startswith(b"<ERROR>"):
        return None
    info = loads(answer[len(b"<ERROR>") :])
    return info["name"], info["message"].split(": ", 1)[-1]


def v1_cycle(message: bytes, context: bytes, response: bytes, config: bytes | None) -> list[Any]:
    """What a v1 client (the Node client's requests, byte for byte) gets back."""
    adapter = Adapter(MemoryStore())
    full = one(
        adapter,
        "loadAndUpdateRemoteEvent",
        b'{"event":' + message + b',"context":' + context + b',"schemas":null}',
    )
    if error_of(full):
        return [error_of(full)]
    nested = one(
        adapter,
        "loadNestedEvent",
        b'{"event":' + full + b',"schemas":null,"context":' + context + b"}",
    )
    if error_of(nested):
        return [error_of(nested)]
    config = dumps(loads(nested).get("messageConfig")) if config is None else config
    created = one(
        adapter,
        "createNextEvent",
        b'{"event":'
        + full
        + b',"handler_response":'
        + response
        + b',"message_config":'
        + config
        + b',"schemas":null}',
    )
    return [nested, error_of(created) or _OFFLOAD_KEY.sub(b"events/KEY", created)]


def v2_cycle(
    message: bytes, context: bytes, response: bytes, config: bytes | None, refer: bool = False
) -> list[Any]:
    """What a v2 client gets back; with ``refer``, the ``completeTask`` answer is the
    wrapper ``{"nextEvent", "payloadIsResponse", "size"}`` as sent."""
    adapter = Adapter(MemoryStore())
    begun = one(
        adapter,
        "beginTask",
        b'{"event":' + message + b',"context":' + context + b',"schemas":null}',
    )
    if error_of(begun):
        return [error_of(begun)]
    handle = loads(begun)["handle"]
    prefix = b'{"handle":' + dumps(handle) + b',"nestedEvent":'
    assert begun.startswith(prefix) and begun.endswith(b"}")
    nested = begun[len(prefix) : -1]
    config = dumps(loads(nested).get("messageConfig")) if config is None else config
    created = one(
        adapter,
        "completeTask",
        b'{"handle":'
        + dumps(handle)
        + b',"handler_response":'
        + response
        + b',"message_config":'
        + config
        + b',"schemas":null'
        + (b',"referToResponse":true}' if refer else b"}"),
    )
    return [nested, error_of(created) or _OFFLOAD_KEY.sub(b"events/KEY", created)]


@settings(max_examples=300, deadline=None)
@given(
    AWKWARD_MESSAGES,
    st.sampled_from([b"{}", b'{"function_name":"f","function_version":"1"}']),
    AWKWARD_VALUES,
    st.one_of(st.none(), MESSAGE_CONFIGS.map(dumps)),
    LAYOUTS,
    st.sampled_from([0, 200, request_parsing.LAZY_FROM]),
)
def test_v2_answers_are_v1s_byte_for_byte(
    message: dict, context: bytes, response: Any, config: bytes | None, layout: str, pad: int
) -> None:
    text = render(message, layout, pad=pad)
    if layout != "compact":  # a frame's JSON may span lines: keep the request one frame
        text = text.replace(b"\r\n", b"\n")
    reply = render(response, "compact")
    assert v2_cycle(text, context, reply, config) == v1_cycle(text, context, reply, config)


def begin(adapter: Adapter, event: dict) -> str:
    return loads(one(adapter, "beginTask", dumps({"event": event})))["handle"]


def test_hello_tells_the_protocol_version() -> None:
    assert loads(one(Adapter(MemoryStore()), "hello", b"{}"))["protocol"] == 2


def test_a_handle_is_good_once() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    body = dumps({"handle": handle, "handler_response": 2})
    first, second = exchange(adapter, ("completeTask", body), ("completeTask", body))
    assert loads(first)["payload"] == 2
    assert error_of(second)[0] == "ProtocolError"
    assert "not the handle of the task in flight" in error_of(second)[1]


def test_a_new_session_ends_the_one_before() -> None:
    adapter = Adapter(MemoryStore())
    old = begin(adapter, {"payload": 1})
    new = begin(adapter, {"payload": 2})
    stale = one(adapter, "completeTask", dumps({"handle": old}))
    assert error_of(stale)[0] == "ProtocolError"
    assert (
        loads(one(adapter, "completeTask", dumps({"handle": new, "handler_response": 3})))[
            "payload"
        ]
        == 3
    )


def test_a_failed_completion_frees_the_session() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    failed = one(adapter, "completeTask", dumps({"handle": handle, "message_config": []}))
    assert error_of(failed)[0] == "MessageError"
    assert error_of(one(adapter, "completeTask", dumps({"handle": handle})))[0] == "ProtocolError"


def test_cancel_frees_the_session() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    assert loads(one(adapter, "cancelTask", dumps({"handle": handle}))) == {}
    assert error_of(one(adapter, "completeTask", dumps({"handle": handle})))[0] == "ProtocolError"


def test_v1_commands_leave_the_session_alone() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    one(adapter, "loadNestedEvent", dumps({"event": {"payload": 5}}))
    assert (
        loads(one(adapter, "completeTask", dumps({"handle": handle, "handler_response": 2})))[
            "payload"
        ]
        == 2
    )


def test_the_handle_may_come_anywhere_in_the_request() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1, "exception": ""})
    answer = one(adapter, "completeTask", dumps({"handler_response": [7], "handle": handle}))
    assert loads(answer) == {"payload": [7], "exception": "None"}


@pytest.mark.parametrize("body", [b"[]", b'{"handler_response": 1}', b'{"handle": 5}'])
def test_a_request_without_a_handle_string_is_a_message_error(body: bytes) -> None:
    assert error_of(one(Adapter(MemoryStore()), "completeTask", body))[0] == "MessageError"


@pytest.mark.parametrize("layout", ["compact", "indented", "crlf"])
def test_a_large_response_over_many_lines_is_answered_as_v1_answers_it(layout: str) -> None:
    message = dumps({"payload": {"n": 1}, "meta": {}, "cumulus_meta": {}})
    response = {"granules": [{"id": f"g{i}", "size": 1.5e3, "ok": True} for i in range(2000)]}
    reply = render(response, layout).replace(b"\r\n", b"\n")
    assert len(reply) > request_parsing.LAZY_FROM
    assert v2_cycle(message, b"{}", reply, None) == v1_cycle(message, b"{}", reply, None)


def resolved(wrapper: bytes, response: bytes) -> tuple[bytes | None, Any, int]:
    """A ``referToResponse`` answer as its client reads it: ``(the next message's bytes
    when they are written out, the next message as a value, the size it gives)``."""
    prefix, suffix = b'{"nextEvent":', b',"payloadIsResponse":'
    assert wrapper.startswith(prefix)
    text, _, tail = wrapper[len(prefix) :].rpartition(suffix)
    answer = loads(wrapper)
    message = loads(text)
    if answer["payloadIsResponse"]:
        assert message["payload"] is None
        message["payload"] = loads(response)
        return None, message, answer["size"]
    return text, message, answer["size"]


@settings(max_examples=300, deadline=None)
@given(
    AWKWARD_MESSAGES,
    AWKWARD_VALUES,
    st.one_of(st.none(), MESSAGE_CONFIGS.map(dumps)),
    st.sampled_from([0, request_parsing.LAZY_FROM]),
)
def test_a_next_message_that_refers_to_the_response_is_v1s_once_the_client_puts_it_in(
    message: dict, response: Any, config: bytes | None, pad: int
) -> None:
    assume(plain_json(response))  # what a client may refer to (protocol.md)
    text = render(message, "compact", pad=pad)
    reply = render(response, "compact", pad=pad)
    v1 = v1_cycle(text, b"{}", reply, config)
    v2 = v2_cycle(text, b"{}", reply, config, refer=True)
    if type(v1[-1]) is not bytes:  # an error: the same one either way
        assert v2 == v1
        return
    nested, created = v1
    assert v2[0] == nested
    written, value, size = resolved(v2[1], reply)
    key_length = len("events/") + 36  # the offload keys were replaced by events/KEY
    assert size == len(created) + created.count(b"events/KEY") * (key_length - 10)
    assert value == loads(created)
    if written is not None:
        assert written == created


def test_hello_names_the_optional_features() -> None:
    assert loads(one(Adapter(MemoryStore()), "hello", b"{}"))["features"] == [
        "referToPayload",
        "referToResponse",
    ]


def begin_referring(adapter: Adapter, text: bytes) -> bytes:
    return one(adapter, "beginTask", b'{"event":' + text + b',"referToPayload":true}')


@settings(max_examples=300, deadline=None)
@given(AWKWARD_MESSAGES, st.sampled_from([0, request_parsing.LAZY_FROM]))
def test_a_nested_event_that_refers_to_the_payload_is_v1s_once_the_client_puts_it_in(
    message: dict, pad: int
) -> None:
    # A client writes its payload as standard JSON (no NaN or Infinity tokens, which the
    # sidecar reads as null): then decoding its own text gives what v1 would send.
    assume(plain_json(message.get("payload")))
    text = render(message, "compact", pad=pad)
    v1 = v1_cycle(text, b"{}", b"null", None)
    answer = begin_referring(Adapter(MemoryStore()), text)
    if error_of(answer) or type(v1[0]) is not bytes:
        assert error_of(answer) == v1[0]
        return
    begun = loads(answer)
    nested = begun["nestedEvent"]
    if begun["inputIsPayload"]:
        assert nested["input"] is None
        nested["input"] = loads(text)["payload"]
        assert nested == loads(v1[0])
    else:
        handle = dumps(begun["handle"])
        assert answer == b'{"handle":' + handle + b',"nestedEvent":' + v1[0] + (
            b',"inputIsPayload":false}'
        )


def test_a_large_payload_is_not_written_back_when_the_client_keeps_it() -> None:
    payload = dumps({"granules": [{"id": f"g{i}"} for i in range(5000)]})
    text = b'{"payload":' + payload + b',"task_config":{"cumulus_message":{"input":"{$.payload}"}}}'
    answer = begin_referring(Adapter(MemoryStore()), text)
    assert len(answer) < 200
    assert loads(answer)["nestedEvent"] == {
        "input": None,
        "config": {},
        "messageConfig": {"input": "{$.payload}"},
    }
    assert loads(answer)["inputIsPayload"] is True


@pytest.mark.parametrize(
    "event",
    [
        {"payload": {"a": 1}, "task_config": {"cumulus_message": {"input": "{$.payload.a}"}}},
        {"cma": {"event": {"payload": {"a": 1}}}, "payload": {"b": 2}},
        {"payload": {}, "replace": {"Bucket": "b", "Key": "k", "TargetPath": "$.payload"}},
    ],
    ids=["input inside the payload", "cma", "replace"],
)
def test_an_input_that_is_not_the_payload_as_sent_is_written_out(event: dict) -> None:
    store = MemoryStore()
    store.put_json("b", "k", b'{"stored": true}')
    answer = loads(begin_referring(Adapter(store), dumps(event)))
    assert answer["inputIsPayload"] is False
    assert answer["nestedEvent"]["input"] is not None


def test_refer_to_payload_must_be_a_boolean() -> None:
    answer = one(Adapter(MemoryStore()), "beginTask", b'{"event":{},"referToPayload":1}')
    assert error_of(answer)[0] == "MessageError"


def test_a_large_response_is_not_written_back_when_the_client_keeps_it() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1, "meta": {"m": 1}})
    reply = dumps({"granules": [{"id": f"g{i}"} for i in range(5000)]})
    body = b'{"handle":' + dumps(handle) + b',"handler_response":' + reply
    answer = one(adapter, "completeTask", body + b',"referToResponse":true}')
    assert len(answer) < 200
    assert loads(answer) == {
        "nextEvent": {"payload": None, "meta": {"m": 1}, "exception": "None"},
        "payloadIsResponse": True,
        "size": len(b'{"payload":,"meta":{"m":1},"exception":"None"}') + len(reply),
    }


def test_a_payload_built_from_outputs_is_written_out_in_full() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    outputs = {"outputs": [{"source": "{$.a}", "destination": "{$.payload}"}]}
    body = dumps(
        {
            "handle": handle,
            "handler_response": {"a": [1]},
            "message_config": outputs,
            "referToResponse": True,
        }
    )
    answer = loads(one(adapter, "completeTask", body))
    assert answer["payloadIsResponse"] is False
    assert answer["nextEvent"]["payload"] == [1]


def test_refer_to_response_must_be_a_boolean() -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    body = dumps({"handle": handle, "referToResponse": 1})
    assert error_of(one(adapter, "completeTask", body))[0] == "MessageError"


@pytest.mark.parametrize("levels", [2000, 40000], ids=["small request", "large request"])
def test_a_response_nested_too_deeply_is_a_protocol_error_as_in_v1(levels: int) -> None:
    adapter = Adapter(MemoryStore())
    handle = begin(adapter, {"payload": 1})
    deep = b"[" * levels + b"]" * levels
    body = b'{"handle":' + dumps(handle) + b',"handler_response":' + deep + b"}"
    name, message = error_of(one(adapter, "completeTask", body))
    assert name == "ProtocolError"
    assert "more deeply than the JSON parser allows" in message
