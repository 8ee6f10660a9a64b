"""JSON Schema checks of a task's input, config and output.

A request's ``schemas`` maps ``input``/``config``/``output`` to schema files relative to
``LAMBDA_TASK_ROOT`` (else the working directory); an unmapped type uses
``schemas/<type>.json`` when that file exists. A ``$ref`` to another file is resolved
relative to the folder of the schema that holds it, as editors and other validators do.
Each file is compiled once per process and jsonschema is imported only when a schema file
exists. Which file applies is looked up once per (task root, type, mapping) and
remembered for the next ``LOOKUPS_KEPT`` distinct ones: tasks do not gain or lose schema
files while they run, and the lookup would otherwise cost a few file-system calls per
message. A mapped file that does not exist is reported on stderr once per path.
Failures raise ``jsonschema.ValidationError`` (tasks catch that type) whose message names
the schema type and the failing location; a schema that cannot be used raises
``MessageError`` naming the file.
"""

import os
import sys
from typing import Any

from message_adapter.errors import MessageError

SCHEMA_TYPES = ("input", "config", "output")
LOOKUPS_KEPT = 1024
"""Schema-file lookups (and compiled schemas) remembered; beyond, the oldest are dropped."""

_compiled: dict[str, Any] = {}
_located: dict[tuple[str, str, Any], str | None] = {}
_warned: set[str] = set()


def schema_file(schemas: dict | None, schema_type: str) -> str | None:
    """The schema file that applies to ``schema_type``, or ``None`` when there is none."""
    root = os.environ.get("LAMBDA_TASK_ROOT", "")
    mapped = schemas.get(schema_type) if schemas else None
    cache_key = (root, schema_type, mapped)
    try:
        return _located[cache_key]
    except (KeyError, TypeError):
        pass
    if mapped is not None and not isinstance(mapped, str):
        raise MessageError(f"schemas.{schema_type} must be a file path string, got {mapped!r}")
    path = os.path.join(root, mapped if mapped else f"schemas/{schema_type}.json")
    found = path if os.path.isfile(path) else None
    _remember(_located, cache_key, found)
    if found is None and mapped:
        _warn_missing(schema_type, path)
    return found


def _remember(cache: dict, key: Any, value: Any) -> None:
    """Keep at most ``LOOKUPS_KEPT`` entries, dropping the oldest (dicts keep order)."""
    if len(cache) >= LOOKUPS_KEPT:
        del cache[next(iter(cache))]
    cache[key] = value


def _warn_missing(schema_type: str, path: str) -> None:
    if path in _warned or len(_warned) > LOOKUPS_KEPT:
        return
    _warned.add(path)
    if len(_warned) > LOOKUPS_KEPT:
        sys.stderr.write(
            f"warning: more than {LOOKUPS_KEPT} mapped schema files do not exist; "
            "no more are reported\n"
        )
        return
    sys.stderr.write(
        f"warning: {schema_type} schema {path!r} does not exist; {schema_type} is not "
        "validated (set LAMBDA_TASK_ROOT or fix the path in 'schemas'); this is reported "
        "once per path\n"
    )


def validate(document: Any, schema_type: str, path: str) -> None:
    """Check ``document`` against the ``schema_type`` schema in ``path`` (see schema_file)."""
    validator = _validator(path)
    error = _first_error(validator, document, schema_type, path)
    if error is None:
        return
    from jsonschema import ValidationError

    where = "$" + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in error.absolute_path
    )
    raise ValidationError(
        f"{schema_type} schema: {error.message} (at {schema_type} {where}; schema {path})",
        validator=error.validator,
        path=error.path,
        schema_path=error.schema_path,
        instance=error.instance,
        validator_value=error.validator_value,
    )


def _first_error(validator: Any, document: Any, schema_type: str, path: str) -> Any:
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        return best_match(validator.iter_errors(document))
    except Unresolvable as error:
        raise MessageError(
            f"{schema_type} schema {path}: {_unresolvable(error)}; a $ref to another file is "
            "relative to the folder of the schema that holds it"
        ) from None
    except RecursionError:
        raise MessageError(
            f"{schema_type} schema {path}: the {schema_type} nests too deeply (or the schema "
            "refers to itself endlessly) for the validator to follow; flatten the "
            f"{schema_type} or simplify the schema"
        ) from None


def _unresolvable(error: Exception) -> str:
    """Why a ``$ref`` failed, naming the reference and, when it is one, the file."""
    from referencing.exceptions import PointerToNowhere

    error = getattr(error, "_wrapped", error)  # jsonschema wraps referencing's errors
    ref = getattr(error, "ref", None)
    described = f"$ref {ref!r} cannot be resolved" if ref else "a $ref cannot be resolved"
    if isinstance(error, PointerToNowhere):
        return f"$ref pointer {ref!r} points at nothing in the schema it names"
    cause = error.__cause__ or error.__context__
    while cause is not None:
        if isinstance(cause, (MessageError, LookupError)) and not type(cause).__module__.startswith(
            "referencing"
        ):
            return f"{described}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return f"{described} (no schema with that address is known)"


def _validator(path: str) -> Any:
    cached = _compiled.get(path)
    if cached is not None:
        return cached
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    schema = _read_schema(path)
    try:
        cls = validator_for(schema)
        cls.check_schema(schema)
    except SchemaError as error:
        raise MessageError(
            f"schema file {path} is not a valid JSON Schema: {error.message}"
        ) from None
    validator = cls(_with_base(schema, cls, path), registry=_registry(cls, path))
    _remember(_compiled, path, validator)
    return validator


def _read_schema(path: str) -> Any:
    from message_adapter.jsonio import loads

    try:
        with open(path, "rb") as handle:
            schema = loads(handle.read())
    except OSError as error:
        raise MessageError(f"schema file {path} cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise MessageError(f"schema file {path} is not JSON: {error}") from None
    if not isinstance(schema, (dict, bool)):
        raise MessageError(
            f"schema file {path} must hold a JSON Schema (an object, or true/false), "
            f"got {type(schema).__name__}"
        )
    return schema


def _with_base(schema: Any, cls: Any, path: str) -> Any:
    """``schema`` with the file's URI as its id when it has none, so relative ``$ref``s
    resolve against the schema's own folder."""
    if not isinstance(schema, dict) or cls.ID_OF(schema):
        return schema
    from pathlib import Path

    id_key = "$id" if cls.ID_OF({"$id": "x"}) == "x" else "id"
    return {**schema, id_key: Path(path).resolve().as_uri()}


def _registry(cls: Any, path: str) -> Any:
    """Where ``$ref``s to other files are found: local files (``file:`` URIs) only."""
    from referencing import Registry, Resource
    from referencing.jsonschema import specification_with

    dialect = cls.META_SCHEMA.get("$schema") or cls.META_SCHEMA.get("$id") or ""
    specification = specification_with(dialect.rstrip("#") + "#", default=None) or (
        specification_with(dialect.rstrip("#"))
    )

    def retrieve(uri: str) -> Any:
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise LookupError(
                f"{uri} is not a local file; only files next to the schema are loaded"
            )
        return Resource.from_contents(
            _read_schema(url2pathname(parts.path)), default_specification=specification
        )

    return Registry(retrieve=retrieve)
