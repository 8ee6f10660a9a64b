"""JSONPath lookups: the fast evaluator must agree with jsonpath-ng on every path it takes."""

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from jsonpath_ng import parse

from message_adapter.errors import MessageError
from message_adapter.rules.paths import PathSyntaxError, compile_path, set_at, set_creating

KEYS = st.sampled_from(["a", "b", "meta", "x-y", "_k"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)
STEPS = st.one_of(
    KEYS.map(lambda key: f".{key}"),
    st.integers(0, 3).map(lambda index: f"[{index}]"),
    st.just("[*]"),
    st.just(".*"),
)
PATHS = st.builds(
    lambda root, steps: root + "".join(steps),
    st.sampled_from(["$"]),
    st.lists(STEPS, max_size=4),
) | st.builds(lambda key, steps: key + "".join(steps), KEYS, st.lists(STEPS, max_size=3))


def reference(path: str, document: Any) -> list[Any]:
    try:
        return [match.value for match in parse(path).find(document)]
    except Exception as error:  # jsonpath-ng crashes on some data (e.g. [0] on an int)
        return [type(error)]


def ours(path: str, document: Any) -> list[Any]:
    try:
        return [value for value, _ in compile_path(path).find(document)]
    except MessageError:
        return ["error"]


@given(path=PATHS, document=DOCS)
@example(path="$.a[0]", document={"a": "xy"})
@example(path="$.a[0]", document={"a": 5})
@example(path="$.a[*]", document={"a": "xy"})
@example(path="$.a[*]", document={"a": {"b": 1}})
@example(path="a.*", document={"a": [1, 2]})
def test_fast_evaluator_agrees_with_jsonpath_ng(path: str, document: Any) -> None:
    expected = reference(path, document)
    if expected and isinstance(expected[0], type):
        assert ours(path, document) == ["error"]
    else:
        assert ours(path, document) == expected


@given(path=PATHS, document=DOCS)
def test_locations_lead_back_to_the_matched_values(path: str, document: Any) -> None:
    try:
        matches = compile_path(path).find(document)
    except MessageError:
        return
    for value, location in matches:
        if None in location:  # a character of a string: readable, not a place to write
            continue
        node = document
        for step in location:
            node = node[step]
        assert node is value


@given(path=PATHS, document=DOCS)
def test_first_is_the_first_match_or_none(path: str, document: Any) -> None:
    try:
        matches = compile_path(path).find(document)
    except MessageError:
        return
    assert compile_path(path).first(document) == (matches[0][0] if matches else None)


def test_path_without_dollar_starts_at_the_root() -> None:
    assert compile_path("meta.foo").first({"meta": {"foo": 1}}) == 1


def test_star_on_an_object_yields_the_object_itself() -> None:
    assert compile_path("$.meta[*]").find({"meta": {"a": 1}}) == [({"a": 1}, ("meta",))]


def test_descendants_fall_back_to_jsonpath_ng_with_locations() -> None:
    document = {"a": [{"id": 1}, {"b": {"id": 2}}]}
    found = compile_path("$..id").find(document)
    assert sorted(found) == [(1, ("a", 0, "id")), (2, ("a", 1, "b", "id"))]


def test_quoted_names_are_supported() -> None:
    assert compile_path("$.meta['a b']").first({"meta": {"a b": 3}}) == 3


def test_reserved_word_where_is_left_to_jsonpath_ng() -> None:
    with pytest.raises(PathSyntaxError, match="not a valid JSONPath"):
        compile_path("$.a.where")


def test_unparsable_path_is_a_path_syntax_error() -> None:
    with pytest.raises(PathSyntaxError):
        compile_path("1,3")


def test_compiled_paths_are_cached() -> None:
    assert compile_path("$.cached.path") is compile_path("$.cached.path")


def test_set_at_copies_only_the_route_and_leaves_the_document_alone() -> None:
    document = {"a": {"b": 1}, "c": {"d": 2}}
    updated = set_at(document, ("a", "b"), 5)
    assert updated == {"a": {"b": 5}, "c": {"d": 2}}
    assert document == {"a": {"b": 1}, "c": {"d": 2}}
    assert updated["c"] is document["c"]


def test_set_creating_makes_missing_objects() -> None:
    assert set_creating({"meta": {}}, ["meta", "x", "y"], 1, path_text="{$.meta.x.y}") == {
        "meta": {"x": {"y": 1}}
    }


def test_set_creating_refuses_to_walk_through_a_scalar() -> None:
    with pytest.raises(MessageError, match="not an object"):
        set_creating({"meta": 5}, ["meta", "x"], 1, path_text="{$.meta.x}")


def test_a_path_of_more_than_256_steps_is_refused_briefly() -> None:
    with pytest.raises(PathSyntaxError, match="more than 256 steps") as raised:
        compile_path("$" + "[0]" * 3000)
    assert len(str(raised.value)) < 300
