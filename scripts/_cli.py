"""Shared command-line plumbing of the scripts: make the repository importable and set up logging."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def setup_logging() -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return logging.getLogger(Path(sys.argv[0]).stem)


def set_torch_threads(threads: int | None) -> None:
    """Use the cores Snakemake gave the job, not every core of the node."""
    if threads:
        import torch

        torch.set_num_threads(threads)
