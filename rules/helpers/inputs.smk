# Helpers of rules/inputs.smk: pinned revisions, the lm-eval dataset specs and the record of the
# run's inputs (LOCK, HUB_INPUTS, LM_EVAL_LOCK are set in rules/inputs.smk before this is included).


def pinned(section, key):
    """The commit a fetch rule downloads (config's SHA, else the lock's)."""
    return pinned_revision(LOCK, HUB_INPUTS[(section, key)])


def lm_eval_dataset_spec(slug):
    repos = {lm_eval_repo_slug(r): r for r in LM_EVAL_LOCK["datasets"]}
    return {"repo": repos[slug], **LM_EVAL_LOCK["datasets"][repos[slug]]}


def input_targets():
    return [f"{ROOT}results/inputs.json"]


def inputs_record():
    """What results/inputs.json records: every pinned input and the FineWeb2 files the run reads."""
    record = {i.where: {"repo": i.repo, "revision": pinned(i.section, i.key)} for i in HUB_INPUTS.values()}
    record["lm_eval"] = LM_EVAL_LOCK
    if not FIXTURE:
        from definemed.dataset.fineweb import read_manifest

        listed = len(read_manifest(config["fineweb"]["manifest"]))
        record["fineweb_files"] = {
            "manifest": config["fineweb"]["manifest"],
            "listed": listed,
            "read": len(SHARDS),
            "shard_subset": config["fineweb"]["shard_subset"],
        }
    return record
