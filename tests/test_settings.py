"""Each stage's settings: a frozen dataclass built from its config section, the schema the one
place a default lives (definemed.config.Settings)."""

import dataclasses
import json

import pytest

from definemed.config import Settings, subschema


@dataclasses.dataclass(frozen=True)
class Labelling(Settings):
    SECTION = "labelling"
    model: str
    batch_size: int
    vllm: dict
    chat_template_date: str = dataclasses.field(metadata={"schema": "chat_template_date"})


@dataclasses.dataclass(frozen=True)
class Stage(Settings):
    SECTION = "judges.failure_modes"
    judge: "Judge"
    output_tokens: int


@dataclasses.dataclass(frozen=True)
class Judge(Settings):
    SECTION = "$defs.judge"
    backend: str
    model: str
    max_tokens: int


def test_missing_keys_take_the_schema_default_nested_ones_too():
    s = Labelling.from_config({"model": "mixtral"})
    assert s.batch_size == subschema("labelling.batch_size")["default"] == 16
    assert s.vllm["max_model_len"] == subschema("labelling.vllm")["properties"]["max_model_len"]["default"]
    assert s.chat_template_date == subschema("chat_template_date")["default"]
    assert Labelling.from_json(json.dumps(s.to_dict())) == s
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch_size = 2


@pytest.mark.parametrize(
    "values, message",
    [
        ({}, "labelling.model: missing"),
        ({"model": "m", "batch": 8}, "labelling: unknown setting(s) ['batch']"),
        ({"model": "m", "batch_size": 0}, "labelling.batch_size: 0 is less than the minimum of 1"),
        ({"model": "m", "vllm": {"dtype": 3}}, "labelling.vllm.dtype: 3 is not of type 'string'"),
        (["model"], "labelling: settings must be a mapping"),
    ],
)
def test_a_bad_setting_stops_with_its_key_named(values, message):
    with pytest.raises(ValueError) as e:
        Labelling.from_config(values)
    assert message in str(e.value)


def test_a_field_typed_as_settings_is_built_from_its_value():
    s = Stage.from_config({"judge": {"backend": "rubric", "model": "rules"}})
    assert s.judge == Judge(backend="rubric", model="rules", max_tokens=1024) and s.output_tokens == 300
    assert s.to_dict() == {"judge": {"backend": "rubric", "model": "rules", "max_tokens": 1024}, "output_tokens": 300}
    with pytest.raises(ValueError, match=r"\$defs.judge.backend: 'gpt' is not one of"):
        Stage.from_config({"judge": {"backend": "gpt", "model": "rules"}})
