# Helpers of rules/judges.smk: the judged models, their chat templates, generations and targets.

from definemed.judges.generation import generation_settings


def judged_models():
    """Models of Figures 2 and 3 in plot order: generation.models, or the instruct bases and the
    SLERP merges of the runs on generation.corpora (definemed.judges.generation.generation_models).
    """
    from definemed.judges.generation import generation_models

    names = generation_models(config)
    for n in names:
        evaluated_model_dir(n)  # fails early on a name that is no model, run or merge
    return names


def chat_template_dir(name):
    """The base instruct model whose chat template `name` answers in (A.7.1)."""
    from definemed.judges.generation import instruct_base

    return model_dir(instruct_base(config, name))


def generation_resources(name):
    """Slurm resources of one generation job: under vllm, one GPU per tensor-parallel rank
    (definemed.judges.generation.tensor_parallel), else generation.resources as written."""
    from definemed.judges.generation import tensor_parallel

    spec = dict(GENERATION["resources"])
    if GENERATION["backend"] == "vllm":
        spec["gpu"] = tensor_parallel(config, name)
    return stage_resources(spec)


def generation_files():
    return expand(f"{ROOT}results/generations/{{model}}.jsonl", model=judged_models())


def judge_targets():
    return [
        f"{ROOT}results/judges/cost_estimate.json",
        f"{ROOT}results/judges/pairwise/winrate.json",
        f"{ROOT}results/judges/failure_modes/counts.json",
    ] + generation_files()
