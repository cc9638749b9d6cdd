"""Bin packing of tokenised documents into fixed-length sequences."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from definemed.packing import best_fit_decreasing, chop_cuts, open_packed, pack_corpus, pack_window


def test_best_fit_decreasing_respects_capacity_and_places_every_piece():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 500).tolist()
    bins = best_fit_decreasing(lengths, 128)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    assert len(bins) <= 1.1 * sum(lengths) / 128 + 1  # near the lower bound


def test_chop_cuts_counts_documents_crossing_block_boundaries():
    assert chop_cuts([3, 3, 3], 4) == 2  # [0,3) [3,6) [6,9): the 2nd and 3rd cross 4 and 8
    assert chop_cuts([4, 4], 4) == 0
    assert chop_cuts([4, 4], 4, offset=2) == 2


def test_long_documents_become_full_sequences_and_nothing_is_lost():
    docs = [list(range(10)), list(range(100, 103)), list(range(200, 205))]
    seqs, carry, cut = pack_window(docs, 4)
    assert cut == 2 and not carry and all(len(s) <= 4 for s in seqs)
    assert sorted(t for s in seqs for t in s) == sorted(t for d in docs for t in d)


class WordTokenizer:
    eos_token_id, pad_token_id = 1, 0

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[2 + len(w) for w in t.split()] for t in texts]}


def test_pack_corpus_memmaps_sequences_with_eos_between_documents(tmp_path):
    rng = np.random.default_rng(1)
    texts = [" ".join("x" * int(k) for k in rng.integers(1, 9, rng.integers(5, 120))) for _ in range(1000)]
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(1000)], "text": texts}), part)
    stats = pack_corpus([part], WordTokenizer(), 512, tmp_path / "packed", window_documents=300, exclude={"d0"})
    tokens, lengths = open_packed(tmp_path / "packed")
    assert tokens.shape == (stats["sequences"], 512) and len(lengths) == stats["sequences"]
    assert stats["documents"] == 999 and stats["skipped_documents"] == 1
    assert int(lengths.sum()) == stats["tokens"] == sum(len(t.split()) + 1 for t in texts[1:])
    assert int((tokens == 1).sum()) == 999  # one EOS per document
    assert all((tokens[r, lengths[r] :] == 0).all() for r in range(len(lengths)))
    assert stats["padding_share"] < 0.01
    assert stats["documents_cut"] < stats["chop_documents_cut"]


def test_pack_corpus_refuses_an_empty_corpus_by_name(tmp_path):
    part = tmp_path / "finemed.parquet"
    pq.write_table(pa.table({"id": ["d0"], "text": ["held out"]}), part)
    with pytest.raises(ValueError, match=r"finemed\.parquet\) hold 0 documents after 1 held out"):
        pack_corpus([part], WordTokenizer(), 16, tmp_path / "packed", exclude={"d0"})
