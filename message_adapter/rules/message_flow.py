"""The Cumulus message rules: the three adapter steps as functions on plain JSON values.

Nothing here mutates its arguments or deep-copies them: results share unchanged parts
with the input and copy only the containers on the way to what changed. The only I/O is
through the ``RemoteStore`` passed in (S3 in production, a dict or a folder in tests and
local runs), and schema checks go through the ``validate`` callable passed in.

Beside each rule stands what it reads (``*_reads``): the top-level keys of the event it
looks into. The sidecar decodes exactly those keys of a large request; the others may
arrive as raw JSON text, which the rules pass through untouched and never inspect.
"""

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from message_adapter.errors import MessageError
from message_adapter.rules.paths import (
    CompiledPath,
    PathSyntaxError,
    compile_path,
    set_at,
    set_creating,
)
from message_adapter.rules.templates import referenced_roots, resolve, resolve_string

if TYPE_CHECKING:
    from message_adapter.stores import RemoteStore

Validate = Callable[[Any, str], None]
Reads = Collection[str] | None
"""Top-level event keys a rule reads; ``None`` when it may read any of them."""


def _no_validation(document: Any, schema_type: str) -> None:
    return None


def _compile(path: Any, what: str) -> CompiledPath:
    if not isinstance(path, str):
        raise MessageError(f"{what} must be a JSONPath string like $.payload, got {path!r}")
    try:
        return compile_path(path)
    except PathSyntaxError as error:
        raise MessageError(f"{what}: {error}") from None


def _require_object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


# ---- loadAndUpdateRemoteEvent -------------------------------------------------------


def load_and_update_reads(event: Collection[str]) -> Reads:
    """``cma`` and ``replace`` rebuild the whole message; otherwise only ``meta`` is read."""
    return None if "cma" in event or "replace" in event else ("meta",)


def load_and_update_remote_event(event: dict, context: Any, store: "RemoteStore") -> dict:
    """Unwrap a ``cma`` message, load a ``replace``d part from the store, record the task."""
    _require_object(event, "event")
    cma = event.get("cma")
    if cma:
        _require_object(cma, "cma")
        inner = cma.get("event")
        if not isinstance(inner, dict):
            raise MessageError(
                "cma.event must hold the Cumulus message (an object) when the event has a "
                "'cma' key, as Step Functions parameters produce it"
            )
        message = dict(inner)
        message.update(_load_remote(inner, store))
        message.update((key, value) for key, value in cma.items() if key != "event")
    else:
        message = _load_remote(event, store)
    if context:
        message = _record_task(message, _require_object(context, "context"))
    return message


def _load_remote(message: dict, store: "RemoteStore") -> dict:
    replace = message.get("replace")
    if replace is None and "replace" not in message:
        return message
    if not isinstance(replace, dict) or not all(
        isinstance(replace.get(key), str) for key in ("Bucket", "Key", "TargetPath")
    ):
        raise MessageError(
            f"replace must be an object with string Bucket, Key and TargetPath, got {replace!r}"
        )
    bucket, key, target = replace["Bucket"], replace["Key"], replace["TargetPath"]
    matches = _compile(target, "replace.TargetPath").find(message)
    if len(matches) != 1:
        raise MessageError(
            f"replace.TargetPath {target!r} must match exactly one place in the message, "
            f"it matches {len(matches)}"
        )
    remote = store.get_json(bucket, key)
    node, location = matches[0]
    if not location and not isinstance(remote, dict):
        raise MessageError(
            f"s3://{bucket}/{key} holds a {type(remote).__name__}, but replace.TargetPath "
            "'$' needs a whole message (an object) there"
        )
    if isinstance(node, dict) and isinstance(remote, dict):
        merged = dict(node)
        merged.update(remote)
        remote = merged
    loaded = set_at(message, location, remote)
    if isinstance(loaded, dict):
        loaded.pop("replace", None)
        local_exception = message.get("exception")
        if local_exception and local_exception != "None":
            remote_exception = loaded.get("exception")
            if not remote_exception or remote_exception == "None":
                loaded["exception"] = local_exception
    return loaded


def _record_task(message: dict, context: dict) -> dict:
    meta = message.get("meta")
    if not isinstance(meta, dict):
        return message
    tasks = meta.get("workflow_tasks")
    if tasks is None:
        tasks = {}
    elif isinstance(tasks, dict):
        tasks = dict(tasks)
    else:
        raise MessageError(
            "meta.workflow_tasks must be an object keyed by step number "
            f'({{"0": {{"name", "version", "arn"}}, …}}), got {type(tasks).__name__}; '
            "remove it or fix the step that wrote it"
        )
    tasks[str(len(tasks))] = {
        "name": context.get("function_name", context.get("functionName")),
        "version": context.get("function_version", context.get("functionVersion")),
        "arn": context.get(
            "invoked_function_arn",
            context.get("invokedFunctionArn", context.get("activityArn")),
        ),
    }
    return {**message, "meta": {**meta, "workflow_tasks": tasks}}


# ---- loadNestedEvent ----------------------------------------------------------------


LOAD_NESTED_READS = ("task_config", "cumulus_meta")
"""Read by every loadNestedEvent; the templates may read more (``load_nested_reads``)."""


def load_nested_reads(task_config: Any, *, whole_may_stay_raw: bool = False) -> Reads:
    """The keys ``task_config``'s templates read, besides ``LOAD_NESTED_READS``.

    With ``whole_may_stay_raw``, a key the templates only take whole (``{$.payload}``) is
    left out: its value is moved into the nested event, never looked into, so it may stay
    the raw JSON text it came as (and nothing is decoded only to be written out again).
    """
    if not isinstance(task_config, dict):
        return ()
    config = {key: value for key, value in task_config.items() if key != "cumulus_message"}
    message_config = task_config.get("cumulus_message")
    if isinstance(message_config, dict) and "input" in message_config:
        config["input"] = message_config["input"]
    return referenced_roots(config, set() if whole_may_stay_raw else None)


def load_nested_event(event: dict, validate: Validate = _no_validation) -> dict:
    """Build the task's ``{input, config, messageConfig?, cumulus_config?}``."""
    _require_object(event, "event")
    task_config = event.get("task_config")
    if task_config is None:
        task_config = {}
    _require_object(task_config, "task_config")
    config = {key: value for key, value in task_config.items() if key != "cumulus_message"}
    config = resolve(config, event, "task_config")

    message_config = task_config.get("cumulus_message")
    if "cumulus_message" in task_config and message_config is not None:
        _require_object(message_config, "task_config.cumulus_message")
    if message_config and "input" in message_config:
        task_input = resolve(message_config["input"], event, "task_config.cumulus_message.input")
    else:
        task_input = event.get("payload")

    validate(task_input, "input")
    if config:
        validate(config, "config")
    nested: dict[str, Any] = {"input": task_input, "config": config}
    if "cumulus_message" in task_config:
        nested["messageConfig"] = message_config

    cumulus_meta = event.get("cumulus_meta")
    if isinstance(cumulus_meta, dict):
        cumulus_config = {}
        if "state_machine" in cumulus_meta and "execution_name" in cumulus_meta:
            cumulus_config["state_machine"] = cumulus_meta["state_machine"]
            cumulus_config["execution_name"] = cumulus_meta["execution_name"]
        if "cumulus_context" in cumulus_meta:
            cumulus_config["cumulus_context"] = cumulus_meta["cumulus_context"]
        if cumulus_config:
            nested["cumulus_config"] = cumulus_config
    return nested


# ---- createNextEvent ----------------------------------------------------------------


CREATE_NEXT_READS = ("exception", "replace", "ReplaceConfig", "task_config", "cumulus_meta")
"""Read by every createNextEvent; outputs and offloading read more (``create_next_reads``)."""


def create_next_reads(event: dict, message_config: Any) -> tuple[Reads, bool]:
    """``(event keys, whether the handler response is read)`` beyond ``CREATE_NEXT_READS``.

    ``outputs`` read the response and write anywhere; an offload measures and moves any
    part of the message: both need everything.
    """
    if event.get("ReplaceConfig") or (
        isinstance(message_config, dict) and "outputs" in message_config
    ):
        return None, True
    return (), False


def create_next_event(
    event: dict,
    handler_response: Any,
    message_config: Any,
    store: "RemoteStore",
    validate: Validate = _no_validation,
) -> dict:
    """Put the task's response into the message and offload per ``ReplaceConfig``."""
    _require_object(event, "event")
    validate(handler_response, "output")
    if message_config is not None and not isinstance(message_config, dict):
        raise MessageError("message_config must be an object (the task's cumulus_message)")
    message = dict(event)
    if message_config and "outputs" in message_config:
        outputs = message_config["outputs"] or []
        if not isinstance(outputs, list):
            raise MessageError(
                'message_config.outputs must be a list of {"source", "destination"} '
                f"objects, got {type(outputs).__name__}"
            )
        message["payload"] = {}
        for position, output in enumerate(outputs):
            message = _assign_output(message, handler_response, output, position)
    else:
        message["payload"] = handler_response
    if not message.get("exception"):
        message["exception"] = "None"
    message.pop("replace", None)
    if message.get("ReplaceConfig"):
        message = _offload(message, store)
    return message


def _assign_output(message: dict, response: Any, output: Any, position: int) -> dict:
    where = f"message_config.outputs[{position}]"
    if (
        not isinstance(output, dict)
        or not isinstance(output.get("source"), str)
        or not isinstance(output.get("destination"), str)
    ):
        raise MessageError(f"{where} must be an object with string 'source' and 'destination'")
    value = resolve_string(output["source"], response, f"{where}.source")
    destination = output["destination"]
    path = _compile(destination.lstrip("{").rstrip("}"), f"{where}.destination")
    if path.is_simple:
        return set_creating(message, path.steps, value, path_text=destination)
    matches = path.find(message)
    if not matches:
        raise MessageError(
            f"{where}.destination {destination!r} matches nothing; use a simple path like "
            "{$.meta.key} so missing objects can be created"
        )
    for _, location in matches:
        message = set_at(message, location, value)
    return message


def _offload(message: dict, store: "RemoteStore") -> dict:
    replace_config = message.pop("ReplaceConfig")
    _require_object(replace_config, "ReplaceConfig")
    if message.get("task_config"):
        del message["task_config"]
    if replace_config.get("FullMessage", False):
        source = "$"
    else:
        source = replace_config.get("Path")
        if source is None:
            raise MessageError(
                "ReplaceConfig needs a Path (a JSONPath string) or FullMessage: true"
            )
    target = replace_config.get("TargetPath", source)
    _compile(target, "ReplaceConfig.TargetPath")
    max_size = replace_config.get("MaxSize", 0)
    if not isinstance(max_size, (int, float)) or isinstance(max_size, bool):
        raise MessageError(f"ReplaceConfig.MaxSize must be a number of bytes, got {max_size!r}")
    cumulus_meta = message.get("cumulus_meta")
    if not isinstance(cumulus_meta, dict):
        raise MessageError("ReplaceConfig is set but the message has no cumulus_meta object")

    matches = _compile(source, "ReplaceConfig.Path").find(message)
    if len(matches) != 1:
        raise MessageError(
            f"ReplaceConfig.Path {source!r} must match exactly one place in the message, "
            f"it matches {len(matches)}"
        )
    node, location = matches[0]
    if max_size > 0 and historic_json_size(node) < max_size:
        return message

    bucket = cumulus_meta.get("system_bucket")
    if not isinstance(bucket, str) or not bucket:
        raise MessageError(
            "ReplaceConfig needs cumulus_meta.system_bucket: the bucket that stores "
            "offloaded message parts"
        )
    import uuid

    from message_adapter.jsonio import dumps

    key = f"events/{uuid.uuid4()}"
    store.put_json(bucket, key, dumps(node))
    replace = {"Bucket": bucket, "Key": key, "TargetPath": target}
    if not location:
        return {"cumulus_meta": cumulus_meta, "replace": replace}
    emptied = set_at(message, location, _empty_like(node))
    emptied["replace"] = replace
    return emptied


def _empty_like(value: Any) -> Any:
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return ""


def historic_json_size(value: Any) -> int:
    """Bytes of Python's default ``json.dumps(value)``: the historic adapter's size rule.

    A number beyond a float's range (a ``Decimal``) counts as its text in quotes.
    """
    import json

    try:
        return len(json.dumps(value, default=str))
    except RecursionError:
        raise MessageError(
            "ReplaceConfig.Path: the part to offload nests too deeply to measure; set "
            "MaxSize to 0 to offload it unmeasured, or flatten it"
        ) from None
