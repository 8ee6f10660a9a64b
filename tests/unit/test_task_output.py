"""What a task may return: the rule, its two copies (adapter and Python client), its speed path."""

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from message_adapter import jsonio
from message_adapter.tasks import output as adapter_output

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))

from run_cumulus_task import output as client_output  # noqa: E402
from run_cumulus_task import sidecar  # noqa: E402
from run_cumulus_task.sidecar import encode as client_encode  # noqa: E402


class Level(enum.IntEnum):
    HIGH = 1


class Kind(str, enum.Enum):
    DATA = "data"


class Colour(enum.Enum):
    RED = "red"


class Name(str):
    pass


@dataclasses.dataclass
class Granule:
    granule_id: str


Pair = collections.namedtuple("Pair", "left right")


def cycle() -> list:
    outer: list = []
    outer.append({"again": outer})
    return outer


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


ACCEPTED = [
    None,
    True,
    0,
    -(10**30),
    1.5,
    "text",
    "\ud800",
    [],
    {},
    {"granules": [{"granuleId": "g1", "size": 12, "ok": True, "note": None, "ratio": 0.5}]},
    (1, "a"),
    Pair(1, 2),
    {2017: "a year as a key"},
    collections.OrderedDict(a=1),
    collections.defaultdict(list, a=[1]),
    Level.HIGH,
    Kind.DATA,
    {Level.HIGH: 1, Kind.DATA: 2},
    [1e308, 1e308],
    {"ratio": float("nan"), "bounds": [float("inf"), float("-inf")]},
    decimal.Decimal("1.5"),
    {"huge": decimal.Decimal("1E+400")},
    nested(500),
]

REFUSED = [
    ({"granules": [{"date": datetime.datetime(2020, 1, 1)}]}, "$.granules[0].date", "datetime"),
    (datetime.date(2020, 1, 1), "$ ", "datetime.date; convert it with .isoformat()"),
    ({"amount": decimal.Decimal("NaN")}, "$.amount ", "Decimal('NaN'), which JSON cannot"),
    ({"ids": {1, 2}}, "$.ids ", "of type set; convert it with list() or sorted()"),
    ([object()], "$[0] ", "of type object"),
    ({"raw": b"x"}, "$.raw ", "of type bytes"),
    ({"id": uuid.UUID(int=1)}, "$.id ", "uuid.UUID"),
    ({"a b": [1, decimal.Decimal("-Infinity")]}, "$['a b'][1] ", "Decimal('-Infinity')"),
    ({"flags": {True: 1}}, "$.flags ", "has a key of type bool"),
    ({None: 1}, "$ ", "has a key of type NoneType"),
    ({1.5: 1}, "$ ", "has a key of type float"),
    ({(1, 2): 1}, "$ ", "has a key of type tuple"),
    ({Name("k"): 1}, "$ ", "has a key of type"),
    (Colour.RED, "$ ", "Colour"),
    (Name("not a plain str"), "$ ", "convert it with str()"),
    (Granule("g1"), "$ ", "dataclasses.asdict()"),
    (cycle(), "$[0].again ", "a reference cycle"),
    (nested(502), "$[0][0]", "nested more than 500 levels deep"),
]


@pytest.mark.parametrize("value", ACCEPTED, ids=repr)
def test_json_values_are_accepted(value: Any) -> None:
    assert adapter_output.output_problem(value) is None


@pytest.mark.parametrize(("value", "where", "what"), REFUSED, ids=lambda v: repr(v)[:40])
def test_other_values_are_refused_naming_the_place_and_the_type(
    value: Any, where: str, what: str
) -> None:
    problem = adapter_output.output_problem(value)
    assert problem.startswith(f"the task's result is not JSON: {where}")
    assert what in problem


@pytest.mark.parametrize(
    "value", ACCEPTED + [refused for refused, _, _ in REFUSED], ids=lambda v: repr(v)[:40]
)
def test_the_python_client_applies_the_same_rule(value: Any) -> None:
    assert client_output.output_problem(value) == adapter_output.output_problem(value)


def test_the_python_clients_copy_is_the_adapters_code() -> None:
    def code(module: Any) -> str:
        text = Path(module.__file__).read_text()
        return text[text.index('"""', 3) + 3 :]  # all but the module docstring

    assert code(client_output) == code(adapter_output)


def strict(data: bytes) -> Any:
    """The JSON document, its numbers exact; NaN or Infinity (not JSON) fail."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(
        data, parse_constant=refuse, parse_float=decimal.Decimal, parse_int=decimal.Decimal
    )


def as_the_adapter_reads(data: bytes) -> Any:
    """The document as the adapter reads it: numbers exact, NaN and Infinity as null."""
    return json.loads(
        data,
        parse_constant=lambda constant: None,
        parse_float=decimal.Decimal,
        parse_int=decimal.Decimal,
    )


@pytest.mark.parametrize("value", ACCEPTED[:-1], ids=repr)
def test_accepted_values_are_written_as_the_same_strict_json_by_adapter_and_client(
    value: Any,
) -> None:
    assert strict(client_encode(value)) == strict(jsonio.dumps(value))


@pytest.mark.parametrize("value", ACCEPTED[:-1], ids=repr)
def test_accepted_values_reach_the_adapter_alike_from_a_client_without_msgspec(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sidecar, "_fast_encode", None)
    assert as_the_adapter_reads(client_encode(value)) == strict(jsonio.dumps(value))


def test_the_fast_walk_is_available_on_this_interpreter() -> None:
    assert adapter_output._FAST and client_output._FAST


def test_the_fast_walk_vouches_for_a_parsed_cumulus_message() -> None:
    granule = {
        "granuleId": "MOD09GQ.A2017025.h21v00.006",
        "files": [{"bucket": "b", "key": "k", "size": 12, "checksum": None, "ok": True}] * 3,
        "cloud_cover": 0.25,
    }
    message = {"meta": {"collection": {"name": "MOD09GQ"}}, "payload": {"granules": [granule]}}
    message["payload"]["granules"] *= 200
    assert adapter_output._certainly_json(msgspec.json.decode(msgspec.json.encode(message)))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
ODD = st.sampled_from(
    [datetime.date(2020, 1, 1), {1, 2}, decimal.Decimal("NaN"), b"", object(), Colour.RED]
)
ALMOST_JSON = st.recursive(
    JSON | ODD | st.tuples(st.integers()),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none(), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(JSON)
def test_the_fast_walk_vouches_for_any_json_with_string_keys(value: Any) -> None:
    assert adapter_output._certainly_json(value)


@given(ALMOST_JSON)
@example([datetime.date(2020, 1, 1)])
@example([[1], {1}])
@example({"a": {True: 1}})
@example([{None: 1}, {"b": 2}])
@example({"a": [(1, 2)]})
def test_the_fast_walk_never_vouches_for_what_the_plain_walk_refuses(value: Any) -> None:
    if adapter_output._certainly_json(value):
        assert adapter_output._first_problem(value) is None


@given(JSON)
def test_json_as_a_parser_gives_it_back_is_plain(value: Any) -> None:
    assert adapter_output.plain_json(value)
    assert adapter_output.plain_json(json.loads(json.dumps(value)))


@given(ALMOST_JSON | st.floats() | st.lists(st.floats()))
@example([1.5, float("nan")])
@example({"a": float("-inf")})
@example({"a": [(1, 2)]})
@example(collections.OrderedDict(a=1))
def test_plain_json_is_unchanged_by_a_round_trip_through_json(value: Any) -> None:
    if adapter_output.plain_json(value):
        assert adapter_output.output_problem(value) is None
        assert msgspec.json.decode(client_encode(value)) == value


@pytest.mark.parametrize(
    "value",
    [(1,), [float("nan")], {"a": float("inf")}, {1: "a"}, Colour.RED, collections.OrderedDict()],
    ids=repr,
)
def test_what_a_round_trip_would_change_is_not_plain(value: Any) -> None:
    assert not adapter_output.plain_json(value)


def test_a_nesting_deeper_than_the_limit_is_not_plain() -> None:
    value: Any = []
    for _ in range(adapter_output.MAX_DEPTH + 1):
        value = [value]
    assert not adapter_output.plain_json(value)
