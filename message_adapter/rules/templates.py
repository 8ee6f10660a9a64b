"""Cumulus JSONPath templates: the rules that turn task_config into a task's config.

Three forms, decided by the whole string:

* ``{path}`` or ``{{path}}`` alone: the first value the path matches (``None`` if none);
* ``{[path]}`` alone: a list of every match (``[]`` if none);
* anything else: each ``{path}`` or ``{{path}}`` inside is replaced by its first match as
  text (strings as they are, other values as compact JSON); pieces that match nothing or
  are not JSONPaths at all (``\\d{1,3}``) stay as written.

Strings are compiled once into a small plan and cached, so resolving the same config for
every message costs only the lookups.
"""

import re
from functools import lru_cache
from typing import Any

from message_adapter.errors import TemplateError
from message_adapter.jsonio import dumps_text
from message_adapter.rules.paths import CompiledPath, PathSyntaxError, compile_path, shortened

_ARRAY = re.compile(r"^\{\[(.*)\]\}$", re.DOTALL)
_DOUBLE = re.compile(r"^\{\{([^{}]*)\}\}$")
_SINGLE = re.compile(r"^\{([^{}\[\]][^{}]*)\}$")
_INLINE = re.compile(r"\{\{([^{}]+)\}\}|\{([^{}]+)\}")


class _Literal:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, document: Any) -> Any:
        return self.text


class _Value:
    __slots__ = ("path",)

    def __init__(self, path: CompiledPath) -> None:
        self.path = path

    def render(self, document: Any) -> Any:
        return self.path.first(document)


class _Array:
    __slots__ = ("path",)

    def __init__(self, path: CompiledPath) -> None:
        self.path = path

    def render(self, document: Any) -> Any:
        return [value for value, _ in self.path.find(document)]


_NO_MATCH = object()


class _Inline:
    __slots__ = ("pieces",)

    def __init__(self, pieces: list[str | tuple[str, CompiledPath]]) -> None:
        self.pieces = pieces

    def render(self, document: Any) -> Any:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            written, path = piece
            value = path.first(document, _NO_MATCH)
            if value is _NO_MATCH:
                out.append(written)
            else:
                out.append(value if type(value) is str else dumps_text(value))
        return "".join(out)


@lru_cache(maxsize=8192)
def _plan(text: str) -> Any:
    """Compile a template string; raises ``PathSyntaxError`` for a bad whole-string path."""
    if "{" not in text:
        return _Literal(text)
    whole = _ARRAY.match(text)
    if whole:
        return _Array(compile_path(whole.group(1)))
    whole = _DOUBLE.match(text) or _SINGLE.match(text)
    if whole and whole.group(1).strip():
        return _Value(compile_path(whole.group(1)))
    pieces: list[str | tuple[str, CompiledPath]] = []
    position = 0
    for found in _INLINE.finditer(text):
        try:
            path = compile_path(found.group(1) or found.group(2))
        except PathSyntaxError:
            continue
        if found.start() > position:
            pieces.append(text[position : found.start()])
        pieces.append((found.group(0), path))
        position = found.end()
    if not any(type(piece) is tuple for piece in pieces):
        return _Literal(text)
    if position < len(text):
        pieces.append(text[position:])
    return _Inline(pieces)


def referenced_roots(value: Any, whole: set[str] | None = None) -> set[str] | None:
    """Top-level keys the templates in ``value`` read, or ``None`` when they may read any.

    With ``whole`` given, a key that a template takes whole (``{$.payload}``,
    ``{[$.payload]}``: the value itself, never looked into or written as text) is added to
    ``whole`` instead; a key also read into by another template is in both.
    """
    roots: set[str] = set()
    strings = [value]
    while strings:
        item = strings.pop()
        kind = type(item)
        if kind is dict:
            strings.extend(item.values())
        elif kind is list:
            strings.extend(item)
        elif kind is str and "{" in item:
            try:
                plan = _plan(item)
            except PathSyntaxError:
                continue
            if type(plan) is _Inline:
                paths = [piece[1] for piece in plan.pieces if type(piece) is tuple]
            else:
                paths = [plan.path] if type(plan) is not _Literal else []
            for path in paths:
                root = path.root_key
                if root is None:
                    return None
                if whole is not None and type(plan) is not _Inline and path.names_root_only:
                    whole.add(root)
                else:
                    roots.add(root)
    return roots


def resolve_string(text: str, document: Any, where: str = "template") -> Any:
    """Evaluate one template string against ``document``; ``where`` names it in errors."""
    try:
        plan = _plan(text)
    except PathSyntaxError as error:
        raise TemplateError(
            f"{where}: template {shortened(text)} does not hold a valid JSONPath ({error}); "
            "write it like {$.meta.key}, or remove the braces if it is not a template"
        ) from None
    return plan.render(document)


def resolve(value: Any, document: Any, where: str = "template") -> Any:
    """Resolve every string inside ``value`` (through objects and lists) as a template.

    Non-string leaves are returned as they are; ``value`` itself is never modified. The
    walk keeps its own stack rather than recursing, so a config may nest as deeply as the
    JSON parser allows, like any other part of a message.
    """
    kind = type(value)
    if kind is str:
        return resolve_string(value, document, where)
    if kind is not dict and kind is not list:
        return value
    result: Any = {} if kind is dict else []
    pending = [(value, result, where)]
    while pending:
        source, target, inside = pending.pop()
        if type(source) is dict:
            items: Any = source.items()
            add = target.__setitem__
        else:
            items = enumerate(source)
            add = _appender(target)
        for key, item in items:
            kind = type(item)
            if kind is str:
                add(key, resolve_string(item, document, _inside(inside, source, key)))
            elif kind is dict or kind is list:
                child: Any = {} if kind is dict else []
                add(key, child)
                pending.append((item, child, _inside(inside, source, key)))
            else:
                add(key, item)
    return result


def _appender(target: list) -> Any:
    append = target.append
    return lambda index, item: append(item)


def _inside(where: str, container: Any, key: Any) -> str:
    return f"{where}.{key}" if type(container) is dict else f"{where}[{key}]"
