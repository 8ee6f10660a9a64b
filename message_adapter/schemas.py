"""JSON Schema checks of a task's input, config and output.

A request's ``schemas`` maps ``input``/``config``/``output`` to schema files relative to
``LAMBDA_TASK_ROOT`` (else the working directory); an unmapped type uses
``schemas/<type>.json`` when that file exists. Each file is compiled once per process
and jsonschema is imported only when a schema file exists. Which file applies is looked up
once per process for each (task root, type, mapping): tasks do not gain or lose schema
files while they run, and the lookup would otherwise cost a few file-system calls per
message.
Failures raise ``jsonschema.ValidationError`` (tasks catch that type) whose message names
the schema type and the failing location.
"""

import os
import sys
from typing import Any

from message_adapter.errors import MessageError

SCHEMA_TYPES = ("input", "config", "output")

_compiled: dict[str, Any] = {}
_located: dict[tuple[str, str, Any], str | None] = {}


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
    _located[cache_key] = found
    if found is None and mapped:
        sys.stderr.write(
            f"warning: {schema_type} schema {path!r} does not exist; {schema_type} is not "
            "validated (set LAMBDA_TASK_ROOT or fix the path in 'schemas')\n"
        )
    return found


def validate(document: Any, schema_type: str, path: str) -> None:
    """Check ``document`` against the ``schema_type`` schema in ``path`` (see schema_file)."""
    validator = _validator(path)
    error = _first_error(validator, document)
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


def _first_error(validator: Any, document: Any) -> Any:
    from jsonschema.exceptions import best_match

    return best_match(validator.iter_errors(document))


def _validator(path: str) -> Any:
    cached = _compiled.get(path)
    if cached is not None:
        return cached
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    from message_adapter.jsonio import loads

    try:
        with open(path, "rb") as handle:
            schema = loads(handle.read())
        cls = validator_for(schema)
        cls.check_schema(schema)
    except (ValueError, SchemaError) as error:
        message = getattr(error, "message", None) or str(error)
        raise MessageError(f"schema file {path} is not a valid JSON Schema: {message}") from None
    validator = cls(schema)
    _compiled[path] = validator
    return validator
