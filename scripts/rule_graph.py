"""Figure 1's input: the workflow's own rule graph (DOT) for the config this run uses.

    python scripts/rule_graph.py --snakefile Snakefile --config '<config as JSON>' --out paper/figures/rulegraph.dot

Runs `snakemake --rulegraph` of the env's own Snakemake (imported here, so the rule's env must
carry it) on the workflow with exactly that config; the DOT text is written to a temporary name
and renamed.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import snakemake  # noqa: F401  the rule graph is Snakemake's own

import _cli
from definemed.io import write_text

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--snakefile", required=True)
p.add_argument("--config", required=True, help="the run's config as JSON")
p.add_argument("--out", required=True)
args = p.parse_args()
log = _cli.setup_logging()

with tempfile.TemporaryDirectory() as tmp:
    configfile = Path(tmp) / "config.json"
    configfile.write_text(args.config)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", args.snakefile, "--configfile", str(configfile)]
    cmd += ["--replace-workflow-config", "--rulegraph", "--nolock", "--quiet", "all"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
if proc.returncode != 0:
    sys.exit(f"snakemake --rulegraph failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
# Snakemake prints the edges in set order, which changes between runs: sorted, the same graph is the
# same bytes (and Figure 1, drawn from it, the same picture)
lines = proc.stdout.rstrip("\n").splitlines()
edges = sorted((line for line in lines if " -> " in line), key=lambda e: [int(n) for n in re.findall(r"\d+", e)])
if not lines or lines[-1].strip() != "}":
    sys.exit(f"snakemake --rulegraph printed no DOT graph:\n{proc.stdout[-2000:]}")
dot = [line for line in lines[:-1] if " -> " not in line] + edges + [lines[-1]]
write_text(args.out, "\n".join(dot) + "\n")
log.info("rule graph: %d lines -> %s", proc.stdout.count("\n"), args.out)
