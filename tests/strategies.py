"""Hypothesis strategies for Cumulus-shaped messages, shared by the property tests.

Test modules import from here (and from tests.helpers), never from each other.
"""

from hypothesis import strategies as st

LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "", "é"]))
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "name", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
TEMPLATES = st.sampled_from(
    [
        "{$.meta.name}",
        "{{$.meta}}",
        "{[$.payload[*]]}",
        "pre-{$.meta.name}-{$.payload.id}",
        "{$}",
        "{$..id}",
        "{meta.x}",
        "{$.cumulus_meta.execution_name}",
        "plain",
        r"\d{1,3}",
        "{$.other}",
    ]
)
TASK_CONFIGS = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(TEMPLATES, VALUES), max_size=3
) | st.builds(
    lambda config, source: {**config, "cumulus_message": {"input": source}},
    st.dictionaries(st.sampled_from(["a", "b"]), TEMPLATES, max_size=2),
    TEMPLATES,
)
MESSAGES = st.fixed_dictionaries(
    {
        "cumulus_meta": st.just(
            {"state_machine": "sm", "execution_name": "ex", "system_bucket": "bucket"}
        )
    },
    optional={
        "meta": st.dictionaries(
            st.sampled_from(["name", "x", "workflow_tasks"]), VALUES, max_size=3
        ),
        "payload": VALUES,
        "other": VALUES,
        "task_config": TASK_CONFIGS,
        "exception": st.sampled_from([None, "None", "Err", {}]),
        "ReplaceConfig": st.sampled_from(
            [{"Path": "$.payload"}, {"FullMessage": True}, {"Path": "$.payload", "MaxSize": 10**6}]
        ),
    },
)

MESSAGE_CONFIGS = st.one_of(
    st.none(),
    st.just({"input": "{$}"}),
    st.just({"outputs": [{"source": "{$}", "destination": "{$.meta.out}"}]}),
)

BIG_NUMBER = "<1e400>"
"""A leaf written into JSON text as ``1e400``: valid JSON, beyond a float's range."""

AWKWARD_LEAVES = st.one_of(
    LEAVES,
    st.floats(),  # NaN and Infinity too: written as the non-JSON NaN, Infinity
    st.integers(),
    st.text(max_size=4),
    st.sampled_from(["\ud800", "a\udfffb", "✓ é 𝄞", BIG_NUMBER]),
)
AWKWARD_VALUES = st.recursive(
    AWKWARD_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "name", "x", "é"]), inner, max_size=3)
    ),
    max_leaves=10,
)
AWKWARD_MESSAGES = st.builds(
    lambda message, payload, meta: {**message, "payload": payload, "meta": meta},
    MESSAGES,
    AWKWARD_VALUES,
    st.dictionaries(st.sampled_from(["name", "x", "workflow_tasks"]), AWKWARD_VALUES, max_size=3),
)
LAYOUTS = st.sampled_from(["compact", "spaced", "indented", "crlf"])


def render(request: object, layout: str, pad: int = 0) -> bytes:
    """``request`` as JSON text in one of the ``LAYOUTS``, UTF-8 where it can be (escaped
    where a lone surrogate forbids it), with a ``pad`` key of ``pad`` bytes when asked."""
    import json

    if pad and isinstance(request, dict) and isinstance(request.get("event"), dict):
        request = {**request, "event": {**request["event"], "pad": "p" * pad}}
    options: dict = {
        "compact": {"separators": (",", ":")},
        "spaced": {},
        "indented": {"indent": 2},
        "crlf": {"indent": 1},
    }[layout]
    try:
        data = json.dumps(request, ensure_ascii=False, **options).encode("utf-8")
    except UnicodeEncodeError:
        data = json.dumps(request, **options).encode("ascii")
    data = data.replace(b'"' + BIG_NUMBER.encode() + b'"', b"1e400")
    return data.replace(b"\n", b"\r\n") if layout == "crlf" else data
