"""MINIATURE ONLY: precision and recall of FineMed against the fixture's ground truth."""

import argparse

import pyarrow as pa
import pyarrow.parquet as pq

from _cli import setup_logging
from definemed.io import write_json
from definemed.miniature.fixtures import read_truth

log = setup_logging()
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--finemed", nargs="+", required=True)
p.add_argument("--truth", nargs="+", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()

kept = set(pa.concat_tables(pq.read_table(f, columns=["id"]) for f in args.finemed).column("id").to_pylist())
is_medical = read_truth(args.truth)
medical = {i for i, m in is_medical.items() if m}
tp = len(kept & medical)
result = {
    "corpus_documents": len(is_medical),
    "finemed_documents": len(kept),
    "true_medical_documents": len(medical),
    "precision": tp / len(kept) if kept else None,
    "recall": tp / len(medical) if medical else None,
}
write_json(args.out, result)
log.info("FineMed precision %s recall %s (%d documents)", result["precision"], result["recall"], len(kept))
