"""What a task may return: JSON, and nothing else, checked before the adapter uses it.

A task's result goes into the next message, which is written as JSON. JSON encoders
quietly turn some Python values into other kinds of JSON value (msgspec writes a
``datetime`` or a ``UUID`` as a string, a ``set`` as a list, ``bytes`` as base64) or
refuse them (the standard library, for all of these), so the check refuses them, the
same everywhere: in ``run``, the activity worker and both modes of the Python client
(whose copy of this module, ``run_cumulus_task/output.py``, a test holds to the same
code and the same table of values).

A JSON value here is ``None``, ``bool``, a number, ``str``, a ``list`` or ``tuple`` of
JSON values, or a ``dict`` of them whose keys are ``str`` or ``int`` (written as
strings, as both encoders do). A number is an ``int``, a ``float`` (NaN and the
infinities are written as ``null``, the adapter's rule for them everywhere, see
``jsonio``) or a finite ``decimal.Decimal`` (written as the number it is: the adapter
reads numbers beyond a float's range as ``Decimal``, so a task passing them on must be
able to return them). Subclasses of ``dict``, ``list`` and ``tuple`` (``OrderedDict``, a
named tuple) and enum members that are ``str``, ``int`` or ``float`` (``IntEnum``,
``StrEnum``) count as what they encode to; other subclasses of ``str``, ``int`` and
``float`` do not (msgspec refuses them).

The check must cost little next to the adapter's own work (a task returning 2000
granules, 1.7 MB of JSON, is about 60 000 values), so it walks the value a level at a
time with C-level iterators (``gc.get_referents`` lists every item of a level's
containers in one call) and falls back to a plain walk, which also finds the path of
the first bad value, whenever the fast walk is unsure.
"""

from __future__ import annotations

import enum
import gc
import math
import re
import sys
from itertools import compress
from typing import Any

MAX_DEPTH = 500
_ATOMS = (str, int, float, bool, type(None))
_EXACT = frozenset((*_ATOMS, dict, list, tuple))
_CONTAINERS = frozenset((dict, list, tuple))
_IS_CONTAINER = _CONTAINERS.__contains__
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HINTS = {
    "datetime.datetime": "convert it with .isoformat()",
    "datetime.date": "convert it with .isoformat()",
    "datetime.time": "convert it with .isoformat()",
    "datetime.timedelta": "convert it with .total_seconds()",
    "set": "convert it with list() or sorted()",
    "frozenset": "convert it with list() or sorted()",
    "bytes": "decode it, or base64-encode it",
    "bytearray": "decode it, or base64-encode it",
    "uuid.UUID": "convert it with str()",
}


def output_problem(value: Any) -> str | None:
    """Why a task's result cannot be passed on, naming the place (``$.granules[0].date``
    for ``result["granules"][0]["date"]``), or None when it is JSON."""
    if _FAST and _certainly_json(value):
        return None
    problem = _first_problem(value)
    return None if problem is None else f"the task's result is not JSON: {problem}"


def _certainly_json(value: Any) -> bool:
    """True only when ``value`` is JSON made of exact built-in types; False means "look"."""
    return _walk_levels(value, _EXACT, _CONTAINERS, finite_floats=False)


_PLAIN = frozenset((str, int, float, bool, type(None), dict, list))
_PLAIN_CONTAINERS = frozenset((dict, list))


def plain_json(value: Any) -> bool:
    """True only when ``value`` is what a JSON parser gives back: dicts with ``str`` keys,
    lists, ``str``, ``int``, finite ``float``, ``bool`` and ``None`` (so writing it out and
    reading it back changes nothing, and ``output_problem`` finds nothing). False means
    "not certainly": a tuple, a NaN, a subclass, a nesting over ``MAX_DEPTH``..."""
    return _FAST and _walk_levels(value, _PLAIN, _PLAIN_CONTAINERS, finite_floats=True)


def _walk_levels(
    value: Any, allowed: frozenset, containers: frozenset, *, finite_floats: bool
) -> bool:
    """Whether every item, level by level, is of an ``allowed`` type (floats finite too,
    if asked) and every dict has ``str`` keys: each dict must give as many referents as it
    has items (one with other keys also gives its keys, so a count above the containers'
    lengths means "look at the keys")."""
    level = [value]
    for _ in range(MAX_DEPTH + 1):
        kinds = set(map(type, level))
        if not kinds <= allowed:
            return False
        if finite_floats and float in kinds and not all(map(math.isfinite, _floats(level))):
            return False
        if kinds.isdisjoint(containers):
            return True
        below = gc.get_referents(*level)
        if dict in kinds and len(below) != sum(
            map(len, level if kinds <= containers else _containers(level))
        ):
            return False
        level = below
    return False


def _floats(level: list) -> Any:
    return (item for item in level if type(item) is float)


def _containers(level: list) -> Any:
    return compress(level, map(_IS_CONTAINER, map(type, level)))


def _referents_are_items() -> bool:
    """Whether this interpreter's ``gc.get_referents`` gives what the fast walk relies on:
    every item of a list or tuple, every value of a ``str``-keyed dict (and nothing else),
    and the keys too of a dict with other keys. True on CPython 3.10 to 3.13."""
    import datetime

    items: list[object] = [datetime.date(2000, 1, 1), None, True, 1, 1.5, "a", [], {}]

    def same(found: list, expected: list) -> bool:
        return len(found) == len(expected) and {id(x) for x in found} == {id(x) for x in expected}

    key = (1,)
    mapping = {f"k{n}": item for n, item in enumerate(items)}
    try:
        return (
            same(gc.get_referents(items), items)
            and same(gc.get_referents(tuple(items)), items)
            and same(gc.get_referents((1, "a")), [1, "a"])
            and same(gc.get_referents(mapping), items)
            and same(gc.get_referents({key: items[0]}), [key, items[0]])
            and gc.get_referents("text", 1, 1.5, None, True) == []
        )
    except Exception:  # noqa: BLE001 - any surprise means: do not use the fast walk
        return False


_FAST = _referents_are_items()


def _first_problem(value: Any) -> str | None:
    """The plain walk: depth first, in order, so the first bad value found is reported."""
    stack: list[tuple[Any, str, int]] = [(value, "$", 0)]
    on_path: list[int] = []  # ids of the containers from the root to the current one
    while stack:
        node, where, depth = stack.pop()
        del on_path[depth:]
        problem = _atom_problem(node, where)
        if problem is not None:
            if problem:
                return problem
            continue
        if id(node) in on_path:
            return f"{where} refers back to a container it is in (a reference cycle)"
        if depth >= MAX_DEPTH:
            return f"{where:.60}… is nested more than {MAX_DEPTH} levels deep"
        on_path.append(id(node))
        if isinstance(node, dict):
            children = []
            for key, item in node.items():
                if not _json_key(key):
                    return (
                        f"{where} has a key of type {_type_name(key)} ({key!r:.50}); "
                        "JSON object keys are strings"
                    )
                children.append((item, _child(where, key), depth + 1))
        else:
            children = [(item, f"{where}[{n}]", depth + 1) for n, item in enumerate(node)]
        stack.extend(reversed(children))
    return None


def _atom_problem(node: Any, where: str) -> str | None:
    """``""`` for a JSON scalar, None for a container to walk into, else the problem."""
    if type(node) in _ATOMS:
        return ""
    if isinstance(node, (dict, list, tuple)):
        return None
    if isinstance(node, (str, int, float)) and isinstance(node, enum.Enum):
        return ""
    decimal = sys.modules.get("decimal")  # no Decimal exists unless decimal was imported
    if decimal is not None and isinstance(node, decimal.Decimal):
        if node.is_finite():
            return ""
        return f"{where} is Decimal({str(node)!r}), which JSON cannot hold; use None or a string"
    name = _type_name(node)
    hint = _HINTS.get(name)
    if hint is None and hasattr(type(node), "__dataclass_fields__"):
        hint = "convert it with dataclasses.asdict()"
    if hint is None:
        for base in (str, int, float):
            if isinstance(node, base):
                hint = f"convert it with {base.__name__}()"
                break
        else:
            hint = "return only dict, list, str, int, float, bool and None"
    return f"{where} is of type {name}; {hint}"


def _json_key(key: Any) -> bool:
    kind = type(key)
    if kind is str or kind is int:
        return True
    return isinstance(key, (str, int)) and isinstance(key, enum.Enum)


def _child(where: str, key: Any) -> str:
    if isinstance(key, str) and _NAME.match(key):
        return f"{where}.{key}"
    return f"{where}[{key!r}]"


def _type_name(value: Any) -> str:
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"
