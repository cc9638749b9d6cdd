"""`medqa_de.source: file` (README, benchmarks): the user's own German MedQA file replaces the
seeded sample and its machine translation. In the paper run's DAG the file is the input of
import_medqa_de, whose output every MedQA-de benchmark job reads, and neither sample_medqa nor
translate_medqa is planned; the job's own shell command installs a good file as the benchmark data
and refuses one with another item count, naming the config key. About 15 s (a DAG build of the
paper run, a dry run, two imports)."""

import json
import os
import re
import shlex
import subprocess

import yaml
from conftest import BIN, copy_repo, snakemake

from definemed.config import load
from definemed.evaluation.medqa import COLUMNS
from definemed.io import write_jsonl


def medqa_rows(n):
    return [
        {"id": f"q{i}", "sent1": f"Eine Patientin {i} hat Fieber. Was ist die Ursache?", "label": i % 4}
        | {f"ending{j}": f"Antwort {j} zu {i}" for j in range(4)}
        for i in range(n)
    ]


def test_medqa_de_from_a_file_replaces_sample_and_translation(tmp_path):
    work = copy_repo(tmp_path / "repo")
    items = load(work / "config.yaml")["benchmarks"]["tasks"]["medqa_de"]["items"]
    mine = tmp_path / "my_medqa_de.jsonl"
    rows = medqa_rows(items)
    write_jsonl(mine, list(reversed(rows)))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"medqa_de": {"source": "file", "file": str(mine)}}))

    dot = snakemake(work, "--configfile", str(overlay), "--nolock", "--forceall", "--dag", timeout=300).stdout
    rules = {m.group(1): m.group(2).split("\\n")[0] for m in re.finditer(r'^\s*(\d+)\[label = "([^"]+)"', dot, re.M)}
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M))
    assert not {"sample_medqa", "translate_medqa"} & set(rules.values())
    (imported,) = [n for n, r in rules.items() if r == "import_medqa_de"]
    medical = [n for n, r in rules.items() if r == "benchmark_medical"]
    assert medical and all((imported, n) in edges for n in medical)

    # the job as Snakemake would run it: its shell command from a dry run
    target = "data/benchmarks/medqa_de.jsonl"
    dry = snakemake(work, "--configfile", str(overlay), "-n", "-p", "--forceall", target, timeout=300).stdout
    (command,) = [
        line.strip().removeprefix("Shell command:").strip()
        for line in dry.splitlines()
        if "scripts/import_medqa_de.py" in line
    ]
    assert f"--file {mine}" in command and f"--items {items}" in command, command
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", "-c", command.split(" > ")[0]], cwd=work, check=True, capture_output=True, env=env)
    installed = [json.loads(x) for x in (work / target).read_text().splitlines()]
    assert sorted(installed, key=lambda r: int(r["id"][1:])) == rows and len(installed) == items
    assert all(set(COLUMNS) <= set(r) for r in installed)

    write_jsonl(mine, rows[:-1])  # one question short of benchmarks.tasks.medqa_de.items
    proc = subprocess.run(["bash", "-c", command.split(" > ")[0]], cwd=work, capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and f"{items - 1} questions, but benchmarks.tasks.medqa_de.items is {items}" in (
        proc.stderr
    ), proc.stderr[-2000:]
    assert shlex.split(command)[0] == "python"
