"""JSONPath lookup with the semantics of jsonpath-ng's basic parser, fast for simple paths.

Cumulus templates are almost always simple (``$.meta.collection.name``, ``{$.payload}``,
``$.granules[0]``). Those are evaluated here by a few dictionary lookups, without
importing jsonpath-ng at all; anything else (``..``, filters, slices, quoted names) is
handed to jsonpath-ng. ``tests/test_paths.py`` proves by property test that both agree.

A match is ``(value, location)`` where ``location`` is the tuple of keys and list indices
from the document root, which ``set_at`` uses to write without mutating the document.
"""

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from message_adapter.errors import MessageError

Location = tuple[str | int, ...]
Match = tuple[Any, Location]

_NAME = r"[A-Za-z_][A-Za-z0-9_@\-]*"
_SIMPLE = re.compile(rf"^(?:\$|{_NAME})(?:\.{_NAME}|\.\*|\[\d+\]|\[\*\])*$")
_STEP = re.compile(rf"\.({_NAME})|\.(\*)|\[(\d+)\]|\[(\*)\]|^({_NAME})")
_RESERVED = frozenset({"where", "wherenot"})

MAX_PATH_STEPS = 256
"""The most steps (``.name``, ``[0]``, ``[*]``, …) a JSONPath may have: jsonpath-ng
evaluates a path by recursion, a few stack frames per step."""

_WILDCARD = object()
_SLICE_ALL = object()


class PathSyntaxError(MessageError):
    """The text is not a JSONPath jsonpath-ng can parse."""


class _NeedsFullEvaluator(Exception):
    """A simple path met data whose jsonpath-ng semantics are not reproduced here."""


class CompiledPath:
    """A parsed JSONPath; ``find`` returns every match with its location.

    ``is_simple`` is true for ``$.a.b[0]``-style paths that name one place by keys and
    indexes.
    """

    __slots__ = ("text", "_steps", "_parsed", "is_simple")

    def __init__(self, text: str, steps: list[Any] | None, parsed: Any) -> None:
        self.text = text
        self._steps = steps
        self._parsed = parsed
        self.is_simple = steps is not None and all(
            step is not _WILDCARD and step is not _SLICE_ALL for step in steps
        )

    @property
    def steps(self) -> list[Any]:
        """The keys and indexes of a simple path (empty for ``$``)."""
        if not self.is_simple:
            raise MessageError(f"JSONPath {self.text!r} is not a simple path like $.meta.a.b")
        return list(self._steps or ())

    @property
    def root_key(self) -> str | None:
        """The top-level key every match lies under, or ``None`` when it can be any."""
        if self._steps and type(self._steps[0]) is str:
            return self._steps[0]
        return None

    @property
    def names_root_only(self) -> bool:
        """Whether the path is ``$.key`` (or ``$['key']``): one top-level value, whole."""
        return self._steps is not None and len(self._steps) == 1 and type(self._steps[0]) is str

    def find(self, document: Any) -> list[Match]:
        if self._steps is not None:
            try:
                return list(_walk(document, self._steps, 0, ()))
            except _NeedsFullEvaluator:
                pass
        return _find_with_jsonpath_ng(self._full(), document)

    def first(self, document: Any, default: Any = None) -> Any:
        """The first matching value, or ``default`` when nothing matches."""
        if self.is_simple and self._steps is not None:
            value = document
            for step in self._steps:
                if isinstance(step, str):
                    if type(value) is not dict or step not in value:
                        return default
                    value = value[step]
                elif type(value) is list and step < len(value):
                    value = value[step]
                else:
                    break
            else:
                return value
        matches = self.find(document)
        return matches[0][0] if matches else default

    def _full(self) -> Any:
        if self._parsed is None:
            self._parsed = _parse_with_jsonpath_ng(self.text)
        return self._parsed

    def __repr__(self) -> str:
        return f"CompiledPath({self.text!r})"


@lru_cache(maxsize=4096)
def compile_path(text: str) -> CompiledPath:
    """Parse ``text`` once (cached); raises ``PathSyntaxError`` when it is not a JSONPath."""
    if text.count(".") + text.count("[") > MAX_PATH_STEPS:
        raise PathSyntaxError(
            f"{shortened(text)} has more than {MAX_PATH_STEPS} steps, the most a JSONPath "
            "may have; point at the value with a shorter path (.. finds it at any depth)"
        )
    if _SIMPLE.match(text):
        steps = _simple_steps(text)
        if steps is not None:
            return CompiledPath(text, steps, None)
    return CompiledPath(text, None, _parse_with_jsonpath_ng(text))


def _simple_steps(text: str) -> list[Any] | None:
    steps: list[Any] = []
    for name, star, index, slice_all, first in _STEP.findall(text):
        if name or first:
            if (name or first) in _RESERVED:
                return None
            steps.append(name or first)
        elif star:
            steps.append(_WILDCARD)
        elif index:
            steps.append(int(index))
        elif slice_all:
            steps.append(_SLICE_ALL)
    return steps


def _walk(value: Any, steps: list[Any], position: int, location: Location) -> Iterator[Match]:
    if position == len(steps):
        yield value, location
        return
    step = steps[position]
    kind = type(value)
    if type(step) is str:
        if kind is dict and step in value:
            yield from _walk(value[step], steps, position + 1, (*location, step))
    elif step is _WILDCARD:
        if kind is dict:
            for key, item in value.items():
                yield from _walk(item, steps, position + 1, (*location, key))
    elif step is _SLICE_ALL:
        if kind is list:
            for index, item in enumerate(value):
                yield from _walk(item, steps, position + 1, (*location, index))
        elif value is not None:
            yield from _walk(value, steps, position + 1, location)
    elif kind is list:
        if step < len(value):
            yield from _walk(value[step], steps, position + 1, (*location, step))
    elif value:
        raise _NeedsFullEvaluator


def _parse_with_jsonpath_ng(text: str) -> Any:
    from jsonpath_ng import parse

    try:
        return parse(text)
    except Exception as error:  # jsonpath-ng raises several unrelated types
        raise PathSyntaxError(f"{shortened(text)} is not a valid JSONPath ({error})") from None


def shortened(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut to about ``limit`` characters for an error message."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} chars)"


def _find_with_jsonpath_ng(parsed: Any, document: Any) -> list[Match]:
    try:
        found = parsed.find(document)
    except RecursionError:
        raise MessageError(
            f"JSONPath {parsed} cannot be evaluated here: the message nests too deeply for "
            "it to search; use a path without .. or flatten the message"
        ) from None
    except Exception as error:
        raise MessageError(f"JSONPath {parsed} cannot be evaluated here ({error})") from None
    return [(datum.value, _location_of(datum, document)) for datum in found]


def _location_of(datum: Any, document: Any) -> Location:
    """Rebuild the key/index route of a jsonpath-ng match (``None`` in it marks a non-place)."""
    from jsonpath_ng.jsonpath import Fields, Index

    route: list[Any] = []
    while datum.context is not None:
        parent = datum.context
        step = datum.path
        if isinstance(step, Index) and _is_slice_wrapper(parent, document):
            datum = parent
            continue
        if isinstance(step, Fields):
            route.append(step.fields[0])
        elif isinstance(step, Index) and isinstance(parent.value, list):
            index = _index_of(step)
            route.append(index % len(parent.value) if index < 0 else index)
        else:
            route.append(None)
        datum = parent
    return tuple(reversed(route))


def _is_slice_wrapper(datum: Any, document: Any) -> bool:
    """jsonpath-ng lets ``[*]`` see a lone value as a one-element list it made up."""
    if not isinstance(datum.value, list) or len(datum.value) != 1:
        return False
    if datum.context is None:
        return datum.value is not document
    from jsonpath_ng.jsonpath import Fields, Index

    container = datum.context.value
    step = datum.path
    if isinstance(step, Fields) and isinstance(container, dict):
        return container.get(step.fields[0]) is not datum.value
    if isinstance(step, Index) and isinstance(container, list):
        return container[_index_of(step)] is not datum.value
    return False


def _index_of(step: Any) -> int:
    indices = getattr(step, "indices", None)
    return indices[0] if indices else step.index


def set_at(document: Any, location: Location, value: Any) -> Any:
    """Return ``document`` with ``value`` at ``location``, copying only containers on the way."""
    if not location:
        return value
    key = location[0]
    if key is None:
        raise MessageError("that JSONPath match is not a place a value can be written to")
    updated: Any
    if isinstance(document, dict):
        updated = dict(document)
    elif isinstance(document, list) and isinstance(key, int):
        updated = list(document)
    else:
        raise MessageError(f"cannot write at {key!r}: the value there is not an object or list")
    updated[key] = set_at(document[key], location[1:], value)
    return updated


def set_creating(document: Any, steps: list[Any], value: Any, *, path_text: str) -> Any:
    """Like ``set_at`` for a simple path, creating missing objects along the way."""
    if not steps:
        raise MessageError(f"destination {path_text!r} must name a key, like {{$.meta.result}}")
    key = steps[0]
    if isinstance(document, dict) and isinstance(key, str):
        updated: Any = dict(document)
        child = document.get(key) if len(steps) > 1 else None
    elif isinstance(document, list) and isinstance(key, int) and key < len(document):
        updated = list(document)
        child = document[key]
    else:
        raise MessageError(
            f"destination {path_text!r} runs through a value that is not an object "
            f"at {key!r}; point it at an object key"
        )
    if len(steps) == 1:
        updated[key] = value
    else:
        updated[key] = set_creating(
            {} if child is None else child, steps[1:], value, path_text=path_text
        )
    return updated
