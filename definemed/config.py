"""The workflow's config schema, for code that runs outside Snakemake: fill in the defaults of
schemas/config.schema.yaml exactly as snakemake.utils.validate does at workflow start."""

from __future__ import annotations

import copy
from pathlib import Path

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


def validated(obj: dict, definition: str | None = None) -> dict:
    """A copy of `obj` validated against the whole schema, or against one of its $defs, with
    defaults filled in. Raises jsonschema.ValidationError naming the offending key."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    if definition:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    obj = copy.deepcopy(obj)
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    cls(schema).validate(obj)
    return obj


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
