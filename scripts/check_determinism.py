"""Check that two runs gave byte-identical results/, paper/ tables and figures, and models/.

    python scripts/check_determinism.py runA/miniature runB/miniature
Each argument is a run's root (the folder holding results/, paper/ and models/: miniature/ or the
repository for the paper run). Exit status 1 when a compared file differs or exists in one run
only. Left out, by design, are only files that are timing measurements (definemed.determinism.EXCLUDED):
"""

import argparse
import sys

import _cli  # noqa: F401
from definemed.determinism import EXCLUDED, SCOPE, compare_trees, render

p = argparse.ArgumentParser(
    description=__doc__.split("\n")[0],
    epilog="\n".join(f"  {k}: {v}" for k, v in EXCLUDED.items()),
    formatter_class=argparse.RawDescriptionHelpFormatter,
)
p.add_argument("a")
p.add_argument("b")
p.add_argument("--scope", nargs="+", default=SCOPE, help=f"folders compared (default: {' '.join(SCOPE)})")
args = p.parse_args()

result = compare_trees(args.a, args.b, args.scope)
print(render(result, args.a, args.b))
sys.exit(0 if result.ok else 1)
