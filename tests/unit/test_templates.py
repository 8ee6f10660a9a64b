"""Template rules: whole-string values and lists, inline text, and what stays as written."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from message_adapter.errors import TemplateError
from message_adapter.rules.templates import resolve, resolve_string

MESSAGE = {
    "meta": {"name": "MOD09GQ", "n": 7, "flag": True, "none": None, "obj": {"k": "v"}},
    "payload": {"granules": [{"id": "g1"}, {"id": "g2"}]},
}


def test_single_braces_alone_return_the_first_value() -> None:
    assert resolve_string("{$.meta.obj}", MESSAGE) == {"k": "v"}


def test_double_braces_alone_return_the_first_value() -> None:
    assert resolve_string("{{$.meta.n}}", MESSAGE) == 7


def test_value_template_without_a_match_is_null() -> None:
    assert resolve_string("{$.meta.missing}", MESSAGE) is None


def test_array_template_returns_every_match() -> None:
    assert resolve_string("{[$.payload.granules[*].id]}", MESSAGE) == ["g1", "g2"]


def test_array_template_without_a_match_is_an_empty_list() -> None:
    assert resolve_string("{[$.nothing[*]]}", MESSAGE) == []


def test_path_without_dollar_is_accepted() -> None:
    assert resolve_string("{meta.name}", MESSAGE) == "MOD09GQ"


def test_inline_template_inserts_strings_as_they_are() -> None:
    assert resolve_string("s3://{$.meta.name}/x", MESSAGE) == "s3://MOD09GQ/x"


def test_inline_template_renders_other_values_as_compact_json() -> None:
    text = "{$.meta.n}|{$.meta.flag}|{$.meta.none}|{$.meta.obj}"
    assert resolve_string(f"<{text}>", MESSAGE) == '<7|true|null|{"k":"v"}>'


def test_two_paths_in_one_string_both_resolve() -> None:
    assert resolve_string("{$.meta.name}-{$.meta.n}", MESSAGE) == "MOD09GQ-7"


def test_double_braces_inside_text_resolve() -> None:
    assert resolve_string("x{{$.meta.name}}y", MESSAGE) == "xMOD09GQy"


def test_unmatched_inline_path_stays_as_written() -> None:
    assert resolve_string("a-{$.meta.missing}-b", MESSAGE) == "a-{$.meta.missing}-b"


def test_braces_that_are_not_a_path_stay_as_written() -> None:
    assert resolve_string(r"^\d{1,3}$", MESSAGE) == r"^\d{1,3}$"


def test_empty_braces_are_plain_text() -> None:
    assert resolve_string("{}", MESSAGE) == "{}"


def test_whole_string_template_with_a_bad_path_names_the_config_key() -> None:
    with pytest.raises(TemplateError, match=r"task_config\.regex: template '\{1,3\}'"):
        resolve({"regex": "{1,3}"}, MESSAGE, "task_config")


def test_resolve_walks_objects_and_lists_and_keeps_other_values() -> None:
    config = {"a": ["{$.meta.n}", 1, None, {"b": "{$.meta.name}"}], "c": False}
    assert resolve(config, MESSAGE) == {"a": [7, 1, None, {"b": "MOD09GQ"}], "c": False}


def test_resolve_never_modifies_the_config() -> None:
    config = {"a": ["{$.meta.n}"]}
    resolve(config, MESSAGE)
    assert config == {"a": ["{$.meta.n}"]}


def test_error_location_names_list_positions() -> None:
    with pytest.raises(TemplateError, match=r"task_config\.list\[1\]"):
        resolve({"list": ["ok", "{bad path}"]}, MESSAGE, "task_config")


TEXT = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


@given(TEXT)
def test_text_without_braces_is_returned_unchanged(text: str) -> None:
    assert resolve_string(text, MESSAGE) == text


@given(st.lists(st.one_of(TEXT, st.sampled_from(["{$.meta.name}", "{$.meta.n}"])), max_size=6))
def test_inline_resolution_equals_resolving_each_piece(pieces: list[str]) -> None:
    text = "".join(pieces)
    if text.startswith("{") and text.endswith("}") and text.count("{") == 1:
        return  # a whole-string template, covered above
    rendered = {"{$.meta.name}": "MOD09GQ", "{$.meta.n}": "7"}
    assert (
        resolve_string("<" + text + ">", MESSAGE)
        == "<" + "".join(rendered.get(piece, piece) for piece in pieces) + ">"
    )


@given(
    st.recursive(
        st.one_of(st.integers(), st.booleans(), st.none(), TEXT),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=10,
    )
)
def test_values_without_templates_resolve_to_themselves(value: Any) -> None:
    assert resolve(value, MESSAGE) == value
