"""Facts about a model, read from its folder: what identifies it (definemed-source.json, written by
the fetch and build rules), and Table 3's: parameters counted from the weights' shapes
(safetensors headers, no tensor loaded), vocabulary from the tokenizer, licence from the model
card's front matter. Only the standard library: the paper's tables run in a small env."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

SOURCE_FILE = "definemed-source.json"  # written into every model folder by fetch/build rules


def model_fingerprint(model_dir) -> dict:
    """What identifies a model folder's weights: the Hub repo and revision, or the tiny build spec."""
    path = Path(model_dir) / SOURCE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; model folders are made by the fetch/build rules")
    return json.loads(path.read_text())


def safetensors_shapes(path: Path | str) -> dict[str, list[int]]:
    """Tensor name -> shape from a .safetensors file's header (8-byte length, then JSON)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return {name: meta["shape"] for name, meta in header.items() if name != "__metadata__"}


def parameter_count(folder: Path | str) -> int:
    """Parameters of the model in `folder`, summed over every safetensors shard's tensors."""
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors weights")
    return sum(math.prod(shape) for f in files for shape in safetensors_shapes(f).values())


def vocabulary_size(folder: Path | str) -> int:
    """Entries of the tokenizer (tokenizer.json's model vocabulary plus added tokens not in it);
    Mistral's tekken.json: its declared vocabulary size."""
    folder = Path(folder)
    if (folder / "tokenizer.json").exists():
        tok = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = tok["model"]["vocab"]
        ids = set(vocab.values()) if isinstance(vocab, dict) else set(range(len(vocab)))
        return len(ids | {t["id"] for t in tok.get("added_tokens", [])})
    if (folder / "tekken.json").exists():
        return json.loads((folder / "tekken.json").read_text(encoding="utf-8"))["config"]["default_vocab_size"]
    raise FileNotFoundError(f"{folder}: no tokenizer.json or tekken.json")


def card_license(folder: Path | str) -> str | None:
    """`license:` of the model card's YAML front matter (README.md), or None."""
    card = Path(folder) / "README.md"
    if not card.exists():
        return None
    match = re.match(r"---\n(.*?)\n---", card.read_text(encoding="utf-8"), re.S)
    if not match:
        return None
    found = re.search(r"^license:\s*(\S+)", match.group(1), re.M)
    return found.group(1).strip("'\"") if found else None


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "consolidated*.pth")


def weights_sha256(folder: Path | str) -> str:
    """Content hash of a model's weights: sha256 over (file name, sha256 of its bytes) of every
    weight file in `folder`, names sorted. Two result rows with different hashes evaluated
    different weights; the same hash, the same weights whatever the folder is called."""
    import hashlib

    folder = Path(folder)
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_PATTERNS)})")
    outer = hashlib.sha256()
    for path in files:
        inner = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                inner.update(block)
        outer.update(f"{path.name}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()
