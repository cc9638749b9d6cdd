"""The workflow's config schema, for code that runs outside Snakemake: fill in the defaults of
schemas/config.schema.yaml exactly as snakemake.utils.validate does at workflow start; and
`Settings`, the base of each stage's typed settings, built once from its config section with the
schema as the only place a default lives."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


def _with_defaults(cls):
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


def _filled(obj, schema: dict):
    """A copy of `obj` validated against `schema` (its $refs resolved against the config schema's
    $defs), with defaults filled in. Raises jsonschema.ValidationError naming the offending key."""
    schema = {"$defs": _schema()["$defs"], **schema}
    obj = copy.deepcopy(obj)
    _with_defaults(jsonschema.validators.validator_for(schema))(schema).validate(obj)
    return obj


def validated(obj: dict, definition: str | None = None) -> dict:
    """A copy of `obj` validated against the whole schema, or against one of its $defs, with
    defaults filled in. Raises jsonschema.ValidationError naming the offending key."""
    return _filled(obj, {"$ref": f"#/$defs/{definition}"} if definition else _schema())


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def subschema(path: str) -> dict:
    """The schema of a config key: "cpt", "judges.pairwise", "cpt.runs", or "$defs.judge"."""
    node, parts = _schema(), path.split(".")
    if parts[0] == "$defs":
        node, parts = node["$defs"][parts[1]], parts[2:]
    else:
        node = {"properties": node["properties"]}
    for part in parts:
        node = node["properties"][part]
        while "$ref" in node:  # "#/$defs/<name>", with the keys written beside it (a default)
            ref = node["$ref"].rsplit("/", 1)[-1]
            node = {**_schema()["$defs"][ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _validated_value(value, schema: dict, where: str):
    """`value` validated against `schema` (defaults of nested objects filled in), a failure named
    by its key."""
    try:
        return _filled(value, schema)
    except jsonschema.ValidationError as e:
        at = ".".join(str(p) for p in e.absolute_path)
        raise ValueError(f"{where}{'.' + at if at else ''}: {e.message}") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """A stage's settings: a frozen dataclass whose fields are keys of the config section SECTION
    (schemas/config.schema.yaml). `from_config` takes the section as the workflow passes it (JSON on
    the command line): each value is checked against its key's schema, a missing key takes the
    schema's default, and a key the class does not know (or a missing key without a default) stops
    with its name. A field the section lacks names its schema key in metadata["schema"] (e.g. the
    top-level chat_template_date). A field typed as another Settings class is built from its value.
    Defaults are never written in the classes: the schema is the one place they live."""

    SECTION: ClassVar[str]

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Self:
        if not isinstance(values, Mapping):
            raise ValueError(f"{cls.SECTION}: settings must be a mapping, got {type(values).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"{cls.SECTION}: unknown setting(s) {unknown} ({cls.__name__} takes {names})")
        hints = typing.get_type_hints(cls)
        built = {}
        for f in dataclasses.fields(cls):
            key = f.metadata.get("schema", f"{cls.SECTION}.{f.name}")
            where = f"{cls.SECTION}.{f.name}"
            try:
                schema = subschema(key)
            except KeyError:
                raise TypeError(f"{cls.__name__}.{f.name}: no schema key {key!r}") from None
            if f.name in values:
                value = values[f.name]
            elif "default" in schema:
                value = schema["default"]
            else:
                raise ValueError(f"{where}: missing, and schemas/config.schema.yaml gives it no default")
            kind = hints[f.name]
            if isinstance(kind, type) and issubclass(kind, Settings):
                built[f.name] = kind.from_config(value)
            else:
                built[f.name] = _validated_value(value, schema, where)
        return cls(**built)

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{cls.SECTION}: settings are not JSON ({e})") from None
        return cls.from_config(values)

    def to_dict(self) -> dict:
        """The settings as the config section holds them (nested settings as dicts)."""
        return {
            f.name: v.to_dict() if isinstance(v := getattr(self, f.name), Settings) else copy.deepcopy(v)
            for f in dataclasses.fields(self)
        }


def load(path) -> dict:
    return validated(yaml.safe_load(Path(path).read_text()))


def display_name(config: dict, name: str) -> str:
    """How the paper's tables and figures write a model: a `models` key, a CPT run, or a run's
    merge `<run>-slerp` (the paper appends -SLERP). Falls back to the key itself."""
    if name in config["models"]:
        return config["models"][name].get("display", name)
    runs = config["cpt"]["runs"]
    if name in runs:
        return runs[name].get("display", name)
    if name.endswith("-slerp") and name[: -len("-slerp")] in runs:
        return display_name(config, name[: -len("-slerp")]) + "-SLERP"
    raise KeyError(f"config: {name!r} is neither a model, a CPT run nor a merge '<run>-slerp'")
