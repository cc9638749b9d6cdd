"""Bin packing of tokenised documents into fixed-length sequences."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from definemed.training.packing import best_fit_decreasing, chop_cuts, open_packed, pack_corpus, pack_window


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


def packed_words(tmp_path, length=64):
    texts = [" ".join(["wort"] * n) for n in range(5, 200)]
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts}), part)
    pack_corpus([part], WordTokenizer(), length, tmp_path / "packed")
    return tmp_path / "packed"


@pytest.mark.parametrize(
    "file,cut",
    [
        ("tokens.u32", lambda size, length: size - 3 * length * 4),  # at a sequence boundary (reshapes)
        ("tokens.u32", lambda size, length: size - 100),  # mid-sequence (reshape fails)
        ("lengths.u32", lambda size, length: size - 4),
    ],
    ids=["tokens-at-sequence-boundary", "tokens-mid-sequence", "lengths"],
)
def test_a_truncated_packed_corpus_is_refused_with_its_path_and_the_advice(tmp_path, file, cut):
    """A packed corpus cut short (a kill, a failed copy) is refused before any training: the file
    named, with the advice to delete the packed folder and rerun its packing. An O(1) check, exact
    for truncation: file sizes against the sequence count stats.json recorded at packing time."""
    from definemed.training.cpt import PackedDataset
    from definemed.training.packing import DamagedPackedCorpus

    packed = packed_words(tmp_path)
    path = packed / file
    with open(path, "r+b") as f:
        f.truncate(cut(path.stat().st_size, 64))
    for read in (open_packed, PackedDataset):  # the reader, and what train() builds first
        with pytest.raises(DamagedPackedCorpus) as e:
            read(packed)
        message = str(e.value)
        assert f"{path}: " in message and "truncated" in message, message
        assert f"Delete the folder {packed} and rerun" in message and "pack_corpus" in message, message


def test_train_refuses_a_truncated_corpus_instead_of_resuming_from_its_checkpoint(tmp_path):
    """tokens.u32 cut at a sequence boundary with checkpoints in the work folder: train() stops
    naming the file rather than resuming (the resume fingerprint hashes stats.json and
    lengths.u32, not the tokens); the checkpoints stay for the rerun after the corpus is packed again."""
    from conftest import build_tiny_cpt_inputs, cpt_job_settings

    from definemed.training.cpt import CptSettings, train
    from definemed.training.packing import DamagedPackedCorpus

    root = build_tiny_cpt_inputs(tmp_path)
    settings = CptSettings.from_config(
        cpt_job_settings(epochs=1, effective_batch_sequences=2, micro_batch_size=1, save_steps=1, warmup_steps=1)
    )
    work = tmp_path / "work"
    train(root / "packed", root / "base", tmp_path / "out", work, settings, seed=0, max_steps=2)
    assert (work / "checkpoint-2" / "trainer_state.json").exists()
    tokens = root / "packed" / "tokens.u32"
    with open(tokens, "r+b") as f:
        f.truncate(tokens.stat().st_size - 64 * 4)  # one sequence of 64 tokens fewer
    with pytest.raises(DamagedPackedCorpus, match=f"{tokens}: .* truncated .* Delete the folder"):
        train(root / "packed", root / "base", tmp_path / "out2", work, settings, seed=0, max_steps=2)
    assert (work / "checkpoint-2" / "trainer_state.json").exists()
