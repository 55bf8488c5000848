"""The GXO v1 JSON Schema (``gxo_schema_v1.json``), and every violation of it in plain English.

The whole document is checked at once by a fastjsonschema validator, compiled on first use
and cached (about 11 ms here, with the ``description`` texts left out of the compiled copy).
That is the whole cost for a valid playbook.

fastjsonschema stops at the first violation, so when the document is invalid it is walked
again, object by object: unknown and missing keys are found directly, and each property
value is checked on its own by a small validator for that property (compiled on demand and
cached). Every violation becomes a :class:`~gxo.errors.Problem` with a message written for
a person (``'timeout' must be a duration like 30s, 1m30s or 500ms, got '10 seconds'``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Final

from gxo.config.problems import (
    Path,
    Problems,
    close_matches,
    describe_kind,
    describe_value,
    did_you_mean,
    quote_list,
)

__all__ = ["SCHEMA", "validate_schema"]

Schema = dict[str, Any]
Validator = Callable[[Any], Any]


def _load_schema() -> Schema:
    import pkgutil  # the package's loader reads it (importlib.resources would import zipfile)

    data = pkgutil.get_data("gxo.config", "gxo_schema_v1.json")
    if data is None:  # pragma: no cover - a loader without get_data
        raise RuntimeError("gxo.config: gxo_schema_v1.json cannot be read")
    text = data.decode("utf-8")
    schema: Schema = json.loads(text)
    return schema


#: The schema as a dict (read-only by convention).
SCHEMA: Final[Schema] = _load_schema()
_DEFINITIONS: Final[Schema] = SCHEMA["definitions"]


def _strip(node: Any) -> Any:
    """The schema without the keys that only document it (smaller, faster compiled code)."""
    if isinstance(node, dict):
        return {
            key: _strip(value)
            for key, value in node.items()
            if key not in {"description", "title", "$schema"}
        }
    if isinstance(node, list):
        return [_strip(value) for value in node]
    return node


@functools.cache
def _compile(pointer: str) -> Validator:
    """A validator for the sub-schema at ``pointer`` (``#`` is the whole document)."""
    import fastjsonschema

    if pointer == "#":
        schema = _strip(SCHEMA)
    else:
        schema = {"definitions": _strip(_DEFINITIONS), **_strip(_at(pointer))}
    validator: Validator = fastjsonschema.compile(schema)
    return validator


def _at(pointer: str) -> Schema:
    node: Any = SCHEMA
    for step in pointer.removeprefix("#/").split("/"):
        if step:
            node = node[step]
    result: Schema = node
    return result


def _resolve(schema: Schema, pointer: str) -> tuple[Schema, str]:
    while "$ref" in schema:
        pointer = schema["$ref"]
        schema = _at(pointer)
    return schema, pointer


_TYPE_WORDS: Final = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}

_REQUIRED_HINTS: Final = {
    ("name",): "give the playbook a name, for example 'name: nightly_backup'",
    ("schemaVersion",): "add 'schemaVersion: \"v1.0.0\"'",
    ("tasks",): "add a 'tasks:' list with at least one task",
    ("tasks", "type"): "every task needs a 'type': the module it runs (`gxo modules` lists them)",
}

# Keys people write by habit (other tools, GXO's docs) and what gxo calls them.
_KEY_ALIASES: Final = {
    "needs": "depends_on",
    "depends": "depends_on",
    "dependencies": "depends_on",
    "after": "depends_on",
    "module": "type",
    "args": "params",
    "with_items": "loop",
    "retries": "retry",
    "vars_files": "vars",
}


def validate_schema(data: Any, problems: Problems) -> set[Path]:
    """Check ``data`` against the schema; report every violation to ``problems``.

    Returns the paths whose values are invalid, so that later stages can leave them out
    instead of reporting them again.
    """
    import fastjsonschema

    try:
        _compile("#")(data)
    except fastjsonschema.JsonSchemaValueException as error:
        first = error
    else:
        return set()
    bad: set[Path] = set()
    before = len(problems)
    _Walker(problems, bad).walk(SCHEMA, "#", data, ())
    if len(problems) == before:  # the walk should always find it; never hide a violation
        path = tuple(_error_path(first))
        problems.add(path, first.message)
        bad.add(path)
    return bad


def _error_path(error: Any) -> list[str | int]:
    """The failing value's path below the validated value (list indexes as ints)."""
    return [
        int(part) if isinstance(part, str) and part.isdigit() else part
        for part in list(error.path)[1:]
    ]


class _Walker:
    def __init__(self, problems: Problems, bad: set[Path]) -> None:
        self.problems = problems
        self.bad = bad

    def walk(self, schema: Schema, pointer: str, value: Any, path: Path) -> None:
        schema, pointer = _resolve(schema, pointer)
        if "properties" in schema:
            self.walk_object(schema, pointer, value, path)
        elif schema.get("type") == "array" and "items" in schema:
            self.walk_array(schema, pointer, value, path)
        else:
            self.check_leaf(pointer, value, path)

    def walk_object(self, schema: Schema, pointer: str, value: Any, path: Path) -> None:
        label = _label(path)
        if not isinstance(value, dict):
            if not path:
                message = (
                    "a playbook must be a mapping with 'name', 'schemaVersion' and 'tasks', "
                    f"got {describe_kind(value)}"
                )
            else:
                message = f"{label} must be a mapping, got {describe_value(value)}"
            self.problems.add(path, message, _object_hint(schema))
            self.bad.add(path)
            return
        properties: Schema = schema["properties"]
        for key in value:
            if key not in properties:
                self.problems.add(
                    (*path, key),
                    f"unknown key '{key}'" + (f" in {label}" if path else ""),
                    _unknown_key_hint(str(key), properties, path),
                    at="key",
                )
                self.bad.add((*path, key))
        for key in schema.get("required", ()):
            if key not in value:
                generic = tuple(part for part in path if isinstance(part, str))
                hint = _REQUIRED_HINTS.get((*generic, key), "")
                where = f" in {label}" if path else ""
                self.problems.add(path, f"missing required key '{key}'{where}", hint)
                self.bad.add((*path, key))
        for key, item in value.items():
            sub = properties.get(key)
            if sub is not None:
                self.walk(sub, f"{pointer}/properties/{key}", item, (*path, key))

    def walk_array(self, schema: Schema, pointer: str, value: Any, path: Path) -> None:
        label = _label(path)
        if not isinstance(value, list):
            self.problems.add(path, f"{label} must be a list, got {describe_value(value)}")
            self.bad.add(path)
            return
        minimum = schema.get("minItems", 0)
        if len(value) < minimum:
            self.problems.add(
                path,
                f"{label} must have at least {minimum} item{'s' if minimum != 1 else ''}",
            )
            self.bad.add(path)
        before = len(self.bad)
        for index, item in enumerate(value):
            self.walk(schema["items"], f"{pointer}/items", item, (*path, index))
        items, _ = _resolve(schema["items"], f"{pointer}/items")
        if len(self.bad) > before and "properties" not in items:
            self.bad.add(path)  # a list of names with a bad entry is left out as a whole

    def check_leaf(self, pointer: str, value: Any, path: Path) -> None:
        import fastjsonschema

        try:
            _compile(pointer)(value)
        except fastjsonschema.JsonSchemaValueException as error:
            where = (*path, *_error_path(error))
            message, hint = _describe(pointer, path, where, error)
            self.problems.add(where, message, hint)
            self.bad.add(path)


def _label(path: Path) -> str:
    """How a message names the value at ``path``: ``'timeout'``, ``'stream_inputs[1]'``."""
    if not path:
        return "the playbook"
    names = [part for part in path if isinstance(part, str)]
    last = path[-1]
    if isinstance(last, int):
        if len(path) == 2 and path[0] == "tasks":
            return f"task {last}"
        return f"'{names[-1] if names else ''}[{last}]'"
    return f"'{last}'"


def _object_hint(schema: Schema) -> str:
    keys = list(schema.get("properties", ()))
    return f"allowed keys: {quote_list(keys)}" if keys else ""


def _unknown_key_hint(key: str, properties: Schema, path: Path) -> str:
    allowed = list(properties)
    alias = _KEY_ALIASES.get(key)
    if alias in properties:
        return f"did you mean '{alias}'?"
    in_task = len(path) == 2 and path[0] == "tasks"
    if in_task and key in SCHEMA["properties"]:
        return f"'{key}' belongs at the top level of the playbook, not in a task"
    hint = did_you_mean(key, allowed)
    if hint:
        return hint
    if not path:
        task_keys = _DEFINITIONS["task"]["properties"]
        matches = [key] if key in task_keys else close_matches(key, task_keys, limit=1)
        if matches:
            return f"'{matches[0]}' is a task key: put it inside a task, under 'tasks:'"
    return f"allowed keys: {quote_list(allowed)}"


def _article_types(types: list[str]) -> str:
    if len(types) == 1:
        return _TYPE_WORDS.get(types[0], types[0])
    words = ["a boolean" if t == "boolean" else _TYPE_WORDS.get(t, t) for t in types]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(pointer: str, prop: Path, where: Path, error: Any) -> tuple[str, str]:
    """A plain-English message and a hint for one violation of the leaf at ``pointer``."""
    label = _label(where)
    failing = error.value
    shown = describe_value(failing)
    rule = error.rule
    definition = pointer.removeprefix("#/definitions/") if pointer.startswith("#/def") else ""
    if definition == "taskNameList" and len(where) > len(prop):
        definition = "taskName"  # one entry of the list is wrong
    if prop == ("schemaVersion",):
        if isinstance(failing, int | float) and not isinstance(failing, bool):
            return (
                f"'schemaVersion' must be a string like \"v1.0.0\", got the number {failing!r}",
                'quote it: schemaVersion: "v1.0.0"',
            )
        return (
            "'schemaVersion' must be a version like v1.0.0 (SemVer, major.minor.patch), "
            f"got {shown}",
            'write schemaVersion: "v1.0.0"',
        )
    if definition == "duration":
        return (
            f"{label} must be a duration like 30s, 1m30s or 500ms, got {shown}",
            "units are ns, us, ms, s, m and h; a plain number means seconds (timeout: 90)",
        )
    if definition == "size":
        return (
            f"{label} must be a size like 1GiB, 512MiB or 64KB, got {shown}",
            "units are B, KB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024); "
            "a plain number means bytes",
        )
    if definition == "taskName":
        return (
            f"{label} must be a task name (letters, digits, '_' and '-'), got {shown}",
            "",
        )
    if definition == "identifier":
        return (
            f"{label} must be a name made of letters, digits and '_', not starting with a "
            f"digit, got {shown}",
            "",
        )
    if rule == "type":
        expected = error.rule_definition
        types = expected if isinstance(expected, list) else [expected]
        return f"{label} must be {_article_types(types)}, got {shown}", _unquote_hint(failing)
    if rule == "enum":
        choices = ", ".join(str(choice) for choice in error.rule_definition)
        return f"{label} must be one of: {choices}, got {shown}", ""
    if rule == "minimum":
        return f"{label} must be at least {error.rule_definition}, got {shown}", ""
    if rule == "exclusiveMinimum":
        return f"{label} must be more than {error.rule_definition}, got {shown}", ""
    if rule == "propertyNames":
        return (
            f"{label}: every key must be a name made of letters, digits and '_', not "
            "starting with a digit",
            "",
        )
    if rule in {"maximum", "exclusiveMaximum"}:
        return f"{label} must be at most {error.rule_definition}, got {shown}", ""
    if rule == "pattern" and "tags" in where:
        return (
            f"{label} must be a tag made of letters, digits, '_', '-', '.' and ':', got {shown}",
            "",
        )
    if rule == "minLength":
        return f"{label} must not be empty", ""
    if rule == "minItems":
        return f"{label} must have at least {error.rule_definition} item(s)", ""
    if rule in {"anyOf", "oneOf"}:
        types = [alt.get("type", "") for alt in error.rule_definition if isinstance(alt, dict)]
        return f"{label} must be {_article_types(types)}, got {shown}", _unquote_hint(failing)
    return f"{label}: {error.message}", ""


def _unquote_hint(value: Any) -> str:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "false"}:
            return f"write {lowered} without quotes"
        try:
            float(value)
        except ValueError:
            return ""
        return "write the number without quotes"
    return ""
