"""Tokenise and pack a corpus into fixed-length training sequences (paper 4.2, A.3).

Each document is tokenised with the model's own tokenizer and followed by its EOS token; documents
that fit in a sequence are placed whole by best-fit decreasing bin packing; longer documents, which
must be cut anyway, fill the remaining gaps and then whole sequences. Like the "Fewer truncations"
strategy the paper cites, this cuts far fewer documents than concatenating everything and
chopping it into blocks, and leaves almost no padding. Documents sharing a sequence
may attend to each other (the paper's choice); the EOS tokens mark their boundaries, so
document-masked attention can be derived from the tokens.

Output, memory-mapped so that 25B tokens never need RAM:
  tokens.u32   uint32 (sequences, length), padded with the pad (or EOS) token
  lengths.u32  uint32 (sequences,): real tokens per sequence, the rest is padding
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def best_fit_decreasing(piece_lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins (lists of piece indices), each holding at most `capacity` tokens: every piece goes to
    the fullest bin that still has room, longest pieces first."""
    order = sorted(range(len(piece_lengths)), key=lambda i: (-piece_lengths[i], i))
    room: list[tuple[int, int]] = []  # (remaining capacity, bin id), sorted
    bins: list[list[int]] = []
    for i in order:
        need = piece_lengths[i]
        k = bisect.bisect_left(room, (need, -1))
        if k < len(room):
            left, b = room.pop(k)
        else:
            left, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if left - need > 0:
            bisect.insort(room, (left - need, b))
    return bins


def chop_cuts(doc_lengths: list[int], length: int, offset: int = 0) -> int:
    """Documents that concatenate-and-chop would cut: those crossing a block boundary, for a
    stream whose first document starts at token `offset`."""
    ends = offset + np.cumsum(doc_lengths)
    starts = ends - np.asarray(doc_lengths)
    return int(((starts // length) != ((ends - 1) // length)).sum())


def pack_window(
    docs: list[list[int]], length: int, carry: list[list[int]] | None = None, final: bool = True
) -> tuple[list[list[int]], list[list[int]], int]:
    """Pack one window of tokenised documents (plus sequences carried over from the previous
    window). Returns (finished sequences, sequences carried to the next window, documents cut).

    Documents that fit in a sequence are placed whole by best-fit decreasing. Longer documents
    must be cut anyway: their tokens first fill the gaps the packing left, then whole sequences.
    Sequences with room for more than 1/256 of their length are carried unless `final`, so that
    padding accumulates only in the last window."""
    short = [d for d in docs if len(d) <= length] + list(carry or [])
    long = [d for d in docs if len(d) > length]
    bins = best_fit_decreasing([len(p) for p in short], length)
    seqs = [[t for i in b for t in short[i]] for b in bins]
    rest = [t for d in long for t in d]
    pos = 0
    for q in sorted(seqs, key=len):  # fullest last: the emptiest sequences are topped up first
        take = min(length - len(q), len(rest) - pos)
        q.extend(rest[pos : pos + take])
        pos += take
    seqs += [rest[k : k + length] for k in range(pos, len(rest), length)]
    if final:
        return seqs, [], len(long)
    slack = max(1, length // 256)
    done = [q for q in seqs if length - len(q) <= slack]
    return done, [q for q in seqs if length - len(q) > slack], len(long)


def pack_corpus(parts, tokenizer, length: int, out_dir, window_documents: int = 100_000, exclude=None) -> dict:
    """Pack the `text` of every parquet part into out_dir; returns statistics. Documents whose id
    is in `exclude` (held-out evaluation documents) are skipped."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {
        "documents": 0,
        "tokens": 0,
        "sequences": 0,
        "documents_cut": 0,
        "chop_documents_cut": 0,
        "sequence_length": length,
        "skipped_documents": 0,
    }
    lengths = []
    with open(out_dir / "tokens.u32", "wb") as f:
        window: list[list[int]] = []
        carry: list[list[int]] = []
        stream = [0]  # tokens before this window in the concatenate-and-chop baseline

        def flush(final):
            nonlocal carry
            seqs, carry, cut = pack_window(window, length, carry, final)
            block = np.full((len(seqs), length), pad, dtype=np.uint32)
            for r, q in enumerate(seqs):
                block[r, : len(q)] = q
                lengths.append(len(q))
            f.write(block.tobytes())
            stats["sequences"] += len(seqs)
            stats["documents_cut"] += cut
            stats["chop_documents_cut"] += chop_cuts([len(d) for d in window], length, stream[0])
            stream[0] += sum(len(d) for d in window)
            window.clear()

        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(columns=["id", "text"], batch_size=10_000):
                ids, texts = batch.column("id").to_pylist(), batch.column("text").to_pylist()
                if exclude:
                    keep = [k for k, i in enumerate(ids) if i not in exclude]
                    stats["skipped_documents"] += len(ids) - len(keep)
                    texts = [texts[k] for k in keep]
                for tokens in tokenizer(texts, add_special_tokens=False)["input_ids"]:
                    window.append([*tokens, eos])
                    stats["documents"] += 1
                    stats["tokens"] += len(tokens) + 1
                    if len(window) >= window_documents:
                        flush(final=False)
        flush(final=True)
    if not stats["sequences"]:
        raise ValueError(
            f"nothing to pack: {len(parts)} part(s) ({', '.join(map(str, parts[:3]))}"
            f"{', ...' if len(parts) > 3 else ''}) hold {stats['documents']} documents"
            f" after {stats['skipped_documents']} held out (an empty FineMed: did the classifier keep any?)"
        )
    np.asarray(lengths, dtype=np.uint32).tofile(out_dir / "lengths.u32")
    total = stats["sequences"] * length
    stats["padding_share"] = 1 - stats["tokens"] / total if total else 0.0
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


class DamagedPackedCorpus(ValueError):
    """A packed corpus whose files do not add up (a truncated copy, a kill while packing)."""


def packed_problem(out_dir) -> str | None:
    """Why the packed corpus in out_dir cannot be trained on, or None. Exact for truncation and in
    O(1): the byte sizes of tokens.u32 and lengths.u32 must be those of the sequence count and
    length stats.json recorded at packing time (hashing tokens.u32, tens of GB for the paper, on
    every start would cost minutes; a cut file is what a kill or a failed copy leaves)."""
    out_dir = Path(out_dir)
    try:
        stats = json.loads((out_dir / "stats.json").read_text())
        sequences, length = int(stats["sequences"]), int(stats["sequence_length"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{out_dir / 'stats.json'}: unreadable ({e})"
    for name, want in (("tokens.u32", sequences * length * 4), ("lengths.u32", sequences * 4)):
        path = out_dir / name
        if not path.is_file():
            return f"{path}: missing"
        size = path.stat().st_size
        if size != want:
            return (
                f"{path}: {size} bytes, but {out_dir / 'stats.json'} records {sequences} sequences of"
                f" {length if name == 'tokens.u32' else 1} uint32 ({want} bytes): the file is truncated or damaged"
            )
    return None


def open_packed(out_dir) -> tuple[np.memmap, np.ndarray]:
    """(tokens memmap of shape (sequences, length), real lengths) of a packed corpus. Raises
    DamagedPackedCorpus naming the file, with the advice to pack again, when the files do not add up."""
    out_dir = Path(out_dir)
    problem = packed_problem(out_dir)
    if problem:
        raise DamagedPackedCorpus(
            f"damaged packed corpus: {problem}. Delete the folder {out_dir} and rerun the workflow:"
            f" its rule pack_corpus packs it again"
        )
    stats = json.loads((out_dir / "stats.json").read_text())
    tokens = np.memmap(out_dir / "tokens.u32", dtype=np.uint32, mode="r").reshape(-1, stats["sequence_length"])
    return tokens, np.fromfile(out_dir / "lengths.u32", dtype=np.uint32)
