"""Benchmark: seconds to build the paper run's DAG (`snakemake -n`) for the committed manifest and
for a synthetic manifest of N shards (offline; nothing runs).

    python scripts/benchmark_dag.py --shards 2000
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--shards", type=int, default=2000)
args = p.parse_args()

repo = Path(__file__).resolve().parents[1]
snakemake = [sys.executable, "-m", "snakemake"]


def dry_run(extra):
    start = time.perf_counter()
    proc = subprocess.run([*snakemake, "-n", "--quiet", "rules", *extra], cwd=repo, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    jobs = next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("total"))
    return elapsed, jobs


elapsed, jobs = dry_run([])
print(f"manifest=committed jobs={jobs} seconds={elapsed:.2f}")
with tempfile.TemporaryDirectory() as tmp:
    manifest = Path(tmp) / "manifest.tsv"
    rows = [
        f"train-{i // 100:03d}_{i % 100:05d}\tdata/deu_Latn/train/{i // 100:03d}_{i % 100:05d}.parquet\t-\t-"
        for i in range(args.shards)
    ]
    manifest.write_text("shard\tpath\tsize\tsha256\n" + "\n".join(rows) + "\n")
    cfg = yaml.safe_load((repo / "config.yaml").read_text())
    cfg["fineweb"]["manifest"] = str(manifest)
    (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    elapsed, jobs = dry_run(["--configfile", str(Path(tmp) / "config.yaml"), "--replace-workflow-config"])
    print(f"manifest=synthetic shards={args.shards} jobs={jobs} seconds={elapsed:.2f}")
