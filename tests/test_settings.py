"""Each stage's settings: a frozen dataclass built from its config section, the schema the one
place a default lives (definemed.config.Settings)."""

import dataclasses
import importlib
import json
import pkgutil
import shlex

import pytest
from conftest import REPO, snakemake

import definemed
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


def stage_settings_classes() -> list[type[Settings]]:
    for module in pkgutil.walk_packages(definemed.__path__, "definemed."):
        importlib.import_module(module.name)
    found, todo = [], list(Settings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("definemed."):
            found.append(cls)
    return found


def test_every_stage_setting_is_a_schema_key_without_a_default_of_its_own():
    classes = stage_settings_classes()
    assert len(classes) >= 8, [c.__name__ for c in classes]
    for cls in classes:
        for f in dataclasses.fields(cls):
            key = f.metadata.get("schema", f"{cls.SECTION}.{f.name}")
            assert subschema(key), f"{cls.__name__}.{f.name}"
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (
                f"{cls.__name__}.{f.name}: a default in code; the schema holds it"
            )


# The typed settings each script builds from a command-line option (the rules pass JSON).
SCRIPT_SETTINGS = {
    ("label_documents.py", "--settings"): "definemed.dataset.labelling:LabellingSettings",
    ("build_tiny_model.py", "--labelling"): "definemed.dataset.labelling:LabellingSettings",
    ("build_tiny_model.py", "--fixture"): "definemed.miniature.fixtures:FixtureSettings",
    ("train_classifier.py", "--settings"): "definemed.dataset.classifier:ClassifierSettings",
    ("evaluate_classifier.py", "--settings"): "definemed.dataset.classifier:ClassifierSettings",
    ("train_cpt.py", "--settings"): "definemed.training.cpt:CptSettings",
    ("cpt_scaling.py", "--settings"): "definemed.training.cpt:CptSettings",
    ("merge_slerp.py", "--settings"): "definemed.training.merge:MergeSettings",
    ("run_benchmarks.py", "--settings"): "definemed.evaluation.benchmarks:BenchmarkSettings",
    ("reproduction_report.py", "--settings"): "definemed.paper.reproduction:ReportSettings",
    ("generate_responses.py", "--settings"): "definemed.judges.generation:GenerationSettings",
    ("judge_pairwise.py", "--settings"): "definemed.judges.requests:PairwiseSettings",
    ("judge_pairwise.py", "--judges"): "definemed.judges.cost:JudgesSettings",
    ("judge_failure_modes.py", "--settings"): "definemed.judges.requests:JudgeStageSettings",
    ("judge_failure_modes.py", "--judges"): "definemed.judges.cost:JudgesSettings",
    ("translate_medqa.py", "--settings"): "definemed.judges.requests:JudgeStageSettings",
    ("translate_medqa.py", "--judges"): "definemed.judges.cost:JudgeBudgetSettings",
    ("translate_queries.py", "--settings"): "definemed.judges.requests:JudgeStageSettings",
    ("translate_queries.py", "--judges"): "definemed.judges.cost:JudgeBudgetSettings",
    ("estimate_judge_cost.py", "--judges"): "definemed.judges.cost:JudgesSettings",
    ("estimate_judge_cost.py", "--translation"): "definemed.judges.requests:JudgeStageSettings",
}


SETTINGS_OPTIONS = {option for _, option in SCRIPT_SETTINGS}


def holds(full, given) -> bool:
    """`full` has every value of `given` (nested mappings may add the schema's defaults)."""
    if isinstance(given, dict):
        return isinstance(full, dict) and all(k in full and holds(full[k], v) for k, v in given.items())
    return full == given


def settings_class(path: str) -> type[Settings]:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def test_every_setting_a_rule_passes_builds_its_scripts_typed_settings():
    """Every JSON settings option in the paper's and the miniature's dry-run shell commands is one the
    script builds typed settings from, and builds them: rules and classes agree on every key."""
    built = {}
    for profile in ((), ("--profile", "profiles/miniature")):
        proc = snakemake(REPO, "-n", "-F", "-p", *profile)
        for line in proc.stdout.splitlines():
            if not line.startswith("Shell command: "):
                continue
            argv = shlex.split(line.removeprefix("Shell command: ").split(" > ")[0])
            script = next((a.rsplit("/", 1)[-1] for a in argv if a.startswith("scripts/") and a.endswith(".py")), None)
            for option, value in zip(argv, argv[1:]):
                if option not in SETTINGS_OPTIONS or (option == "--translation" and "--translation-sample" not in argv):
                    continue  # estimate_judge_cost reads --translation only with a translation sample
                key = (script, option)
                assert key in SCRIPT_SETTINGS, f"{script} {option}: no typed settings class"
                settings = settings_class(SCRIPT_SETTINGS[key]).from_json(value)
                assert holds(settings.to_dict(), json.loads(value)), key  # every value as the rule gave it
                built[key] = settings
    assert set(built) == set(SCRIPT_SETTINGS), sorted(set(SCRIPT_SETTINGS) ^ set(built))
