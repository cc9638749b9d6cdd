"""Draw one of the paper's figures as PDF and PNG (no timestamps: byte-identical reruns).

    python scripts/make_figure.py figure1 --rulegraph paper/figures/rulegraph.dot --out-pdf ... --out-png ...
    python scripts/make_figure.py figure2 --winrate results/judges/pairwise/winrate.json \
        --out-pdf paper/figures/figure2.pdf --out-png paper/figures/figure2.png
    python scripts/make_figure.py figure3 --counts results/judges/failure_modes/counts.json --out-pdf ... --out-png ...
    python scripts/make_figure.py figure4 --curve results/classifier/threshold_curve.json --out-pdf ... --out-png ...
    python scripts/make_figure.py figure5 --unit nodes --points results/scaling/<run>/nodes-*.json \
        --out-pdf ... --out-png ...
--display: JSON model key -> printed name.
"""

import argparse
import json

import _cli  # noqa: F401
from definemed.io import read_json
from definemed.paper import figures

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("figure", choices=["figure1", "figure2", "figure3", "figure4", "figure5"])
p.add_argument("--rulegraph", help="figure1: `snakemake --rulegraph` output (DOT)")
p.add_argument("--winrate")
p.add_argument("--counts")
p.add_argument("--curve")
p.add_argument("--unit", default="nodes")
p.add_argument("--display", default="{}")
p.add_argument("--out-pdf", required=True)
p.add_argument("--out-png", required=True)
p.add_argument("--points", nargs="+", default=[], help="figure5: scaling result files")
args = p.parse_args()

display = json.loads(args.display)
if args.figure == "figure1":
    with open(args.rulegraph, encoding="utf-8") as f:
        fig = figures.figure1(f.read())
elif args.figure == "figure2":
    fig = figures.figure2(read_json(args.winrate), display)
elif args.figure == "figure3":
    fig = figures.figure3(read_json(args.counts), display)
elif args.figure == "figure4":
    fig = figures.figure4(read_json(args.curve))
else:
    fig = figures.figure5([read_json(f) for f in args.points], display, args.unit)
figures.save(fig, args.out_pdf, args.out_png)
