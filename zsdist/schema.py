"""Declarative TOML tables: a dataclass field declares its key (help, default, bounds, how to parse it), and one
validator, one JSON Schema and one Markdown key table are derived from the fields, so that a key is written once.

    batch_size: int = key("Images per proxy batch.", default=64, minimum=1)

Plain types (str, int, float, bool, tuple[str, ...], dict) are checked from the annotation; a field with an
irregular shape (a string or a table) gives `parse` (raw value, where → value) and `json` (its JSON Schema).
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any

from zsdist.errors import ZsdistError


@dataclass(frozen=True)
class Key:
    help: str
    minimum: float | None = None  # inclusive lower bound of a number, or of a list's length
    exclusive_minimum: float | None = None
    parse: Callable[[Any, str], Any] | None = None
    json: dict | None = None
    hashed: bool = True  # part of the run's identity (a setting that changes a number or the shard layout)


def key(text: str, *, default: Any = MISSING, **options: Any) -> Any:
    """A dataclass field that is a TOML key; `text` is its help."""
    return dataclasses.field(default=default, metadata={"key": Key(text, **options)})


def keys(cls: type) -> dict[str, tuple[dataclasses.Field, Key]]:
    return {f.name: (f, f.metadata["key"]) for f in dataclasses.fields(cls) if "key" in f.metadata}


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                 "list": "a list", "dict": "a table"}
        raise ZsdistError(f"{where} must be {' or '.join(names.get(k.__name__, k.__name__) for k in kinds)}, "
                          f"not {value!r}")
    return value


def _bounded(value: Any, spec: Key, where: str) -> Any:
    if isinstance(value, (tuple, dict)):
        if spec.minimum is not None and len(value) < spec.minimum:
            raise ZsdistError(f"{where} must list at least {spec.minimum:g} item(s), not {value!r}")
        return value
    if spec.minimum is not None and value < spec.minimum:
        raise ZsdistError(f"{where} must be at least {spec.minimum:g}, not {value!r}")
    if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
        raise ZsdistError(f"{where} must be greater than {spec.exclusive_minimum:g}, not {value!r}")
    return value


def _convert(value: Any, hint: Any, where: str) -> Any:
    if hint is str:
        return expect(value, str, where)
    if hint is int:
        return expect(value, int, where)
    if hint is float:
        return float(expect(value, (int, float), where))
    if hint is bool:
        return expect(value, bool, where)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(expect(value, list, where))]
        if len(set(items)) != len(items):
            raise ZsdistError(f"{where} repeats an entry: {value!r}")
        return tuple(items)
    raise TypeError(f"{where}: no conversion for {hint}; give the key a parse function")


def unknown_keys(given: set[str], allowed: set[str] | dict, where: str) -> None:
    extra = sorted(given - set(allowed))
    if extra:
        close = difflib.get_close_matches(extra[0], list(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ZsdistError(f"{where} has unknown key(s) {', '.join(extra)}{hint} (allowed: "
                          f"{', '.join(sorted(allowed))})")


def build(cls: type, raw: Any, where: str, **extra: Any) -> Any:
    """An instance of `cls` from a TOML table: unknown keys refused, each key parsed, checked and bounded."""
    table = expect(raw, dict, where)
    declared = keys(cls)
    unknown_keys(set(table), declared, where)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, (field, spec) in declared.items():
        if name not in table:
            if field.default is MISSING and field.default_factory is MISSING:
                raise ZsdistError(f"{where} is missing '{name}' ({spec.help.rstrip('.')})")
            continue
        at = f"{where}.{name}"
        value = spec.parse(table[name], at) if spec.parse else _convert(table[name], hints[name], at)
        values[name] = _bounded(value, spec, at)
    return cls(**values, **extra)


def identity(obj: Any) -> dict:
    """The hashed keys of a built table, nested tables included, as JSON-ready values."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return list(value) if isinstance(value, tuple) else value
    return {name: plain(getattr(obj, name)) for name, (_, spec) in keys(type(obj)).items() if spec.hashed}


_JSON_TYPES = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
               bool: {"type": "boolean"}}


def json_schema(cls: type) -> dict:
    """The JSON Schema of one table (for editors: taplo / Even Better TOML read it)."""
    hints = typing.get_type_hints(cls)
    properties, required = {}, []
    for name, (field, spec) in keys(cls).items():
        hint = hints[name]
        if spec.json is not None:
            prop = dict(spec.json)
        elif typing.get_origin(hint) is tuple:
            prop = {"type": "array", "items": _JSON_TYPES[typing.get_args(hint)[0]], "uniqueItems": True}
        else:
            prop = dict(_JSON_TYPES[hint])
        bound = "minItems" if prop.get("type") == "array" else "minimum"
        if spec.minimum is not None:
            prop[bound] = spec.minimum
        if spec.exclusive_minimum is not None:
            prop["exclusiveMinimum"] = spec.exclusive_minimum
        prop["description"] = spec.help
        if field.default is not MISSING:
            prop["default"] = _default(field, spec)
        else:
            required.append(name)
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def markdown_table(cls: type, table: str) -> str:
    """| key | default | meaning | rows for the README."""
    lines = [f"| `{table}` key | default | meaning |", "|---|---|---|"]
    for name, (field, spec) in keys(cls).items():
        default = "required" if field.default is MISSING else f"`{_toml(_default(field, spec))}`"
        lines.append(f"| `{name}` | {default} | {spec.help} |")
    return "\n".join(lines)


def _default(field: dataclasses.Field, spec: Key) -> Any:
    """A field's default as the file would write it (a table stored as key-value pairs is written `{}`)."""
    default: Any = field.default  # callers pass fields that have one
    if (spec.json or {}).get("type") == "object":
        return dict(default)
    return list(default) if isinstance(default, tuple) else default


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return f"{value:g}" if isinstance(value, float) else str(value)
