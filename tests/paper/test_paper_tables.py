"""Tables 3, 7 and 10 from the run's own files: model folders, the run's config, the judge's
failure-mode schema."""

import csv
import json

import pytest
from conftest import REPO

from definemed.config import load
from definemed.model_facts import card_license, parameter_count, vocabulary_size
from definemed.paper import tables


def test_table3_facts_come_from_the_model_folder(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a.weight": torch.zeros(3, 5), "b.bias": torch.zeros(7)}, tmp_path / "model-00001.safetensors")
    save_file({"c.weight": torch.zeros(2, 2, 2)}, tmp_path / "model-00002.safetensors")
    assert parameter_count(tmp_path) == 15 + 7 + 8
    tok = {"model": {"vocab": {"a": 0, "b": 1, "c": 2}}, "added_tokens": [{"id": 2}, {"id": 3}]}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tok))
    assert vocabulary_size(tmp_path) == 4
    assert card_license(tmp_path) is None
    (tmp_path / "README.md").write_text(
        "---\nlibrary_name: transformers\nlicense: apache-2.0\n---\n# Model\nlicense: mit\n"
    )
    assert card_license(tmp_path) == "apache-2.0"
    facts = {"parameters": 7_248_023_552, "vocabulary": 32768, "license": "apache-2.0", "citation": "Jiang et al."}
    [table] = tables.table3([("M", facts)])
    assert table.columns == ["Model", "Parameters", "Vocab Size", "License", "Source"]  # the paper's columns
    assert table.rows == [["M", "7.2B", "32,768", "apache-2.0", "Jiang et al."]]


def test_table3_sources_are_the_papers_references_from_config():
    """Each Table 3 model cites what the paper's references cite for Table 3; the miniature's tiny
    models cite the models they stand in for."""
    config, miniature = load(REPO / "config.yaml"), load(REPO / "config" / "miniature.yaml")
    expected = {"mistral-7b-instruct-v0.3": "2310.06825", "qwen2.5-7b-instruct": "2412.15115",
                "mistral-small-24b-instruct-2501": "mistral.ai/news/mistral-small-3"}  # fmt: skip
    for model, reference in expected.items():
        assert reference in config["models"][model]["citation"], model
    tiny = {run["base"] for run in miniature["cpt"]["runs"].values() if run["corpus"] == "finemed"}
    assert all(miniature["models"][m].get("citation") for m in tiny)


def test_table3_counts_match_the_loaded_models(miniature, miniature_config):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = {r[0]: r for r in _md_rows(miniature / "paper" / "tables" / "table3.md")}
    assert len(rows) == 3
    for base in ("tiny-qwen2.5-7b-instruct", "tiny-mistral-small-24b-instruct"):
        folder = miniature / "models" / base
        model = AutoModelForCausalLM.from_pretrained(folder)
        assert parameter_count(folder) == sum(p.numel() for p in model.parameters())
        assert vocabulary_size(folder) == len(AutoTokenizer.from_pretrained(folder))
        name = miniature_config["models"][base]["display"]
        assert rows[name][2] == tables.fmt_int(vocabulary_size(folder))


def _md_rows(path):
    lines = [x for x in path.read_text().splitlines() if x.startswith("| ") and not x.startswith("|---")]
    return [[c.strip() for c in x.strip().strip("|").split(" | ")] for x in lines[1:]]


def test_table7_prints_the_papers_five_rows_from_the_runs_config():
    cpt = load(REPO / "config.yaml")["cpt"]
    [table] = tables.table7(cpt)
    assert table.columns == ["Parameter", "PT"]
    assert [r[0] for r in table.rows] == [
        "Learning Rate", "Weight Decay", "Warmup Steps", "Effective Batch Size", "Sequence Length"
    ]  # fmt: skip
    cells = dict(table.rows)
    assert cells["Warmup Steps"] == "500"  # the one value the paper's text kept (4.2, A.3)
    assert cells["Sequence Length"] == "4,096"
    assert cells["Effective Batch Size"] == "2,048 sequences (8,388,608 tokens)"  # Table 8's 2^23 tokens per step
    assert cells["Learning Rate"] == "1e-05"
    changed = tables.table7({**cpt, "learning_rate": 3e-5})
    assert dict(changed[0].rows)["Learning Rate"] == "3e-05"


def test_table10_is_the_judges_schema_and_the_papers_text():
    from definemed.judges.prompts import FAILURE_MODES

    counts = {
        "modes": [m for m, _, _ in FAILURE_MODES],
        "descriptions": {m: d for m, _, d in FAILURE_MODES},
        "description_source": {m: s for m, s, _ in FAILURE_MODES},
    }
    [table] = tables.table10(counts)
    assert "irrelevance" in table.notes[0]
    # the paper's Table 10 as printed (paper/reported/table10.csv, transcribed from its text)
    with open(REPO / "paper" / "reported" / "table10.csv", encoding="utf-8", newline="") as f:
        printed = [tuple(r) for r in csv.reader(f)]
    assert printed[0] == ("Failure Mode", "Description")
    described = [
        (n, d) for n, d in table.rows if counts["description_source"][n.lower().replace(" ", "_")] == "Table 10"
    ]
    assert described == printed[1:]  # the paper's eleven modes, its order, its words


def _tex_has_rows(tex_path, rows):
    """Each row, its cells LaTeX-escaped and joined by ` & `, is a line of the .tex beside the .md."""
    tex = tex_path.read_text().splitlines()
    for row in rows:
        assert " & ".join(tables.latex_escape(c) for c in row) + r" \\" in tex, (tex_path.name, row)


def test_miniature_table3_prints_each_base_models_facts(miniature, miniature_config):
    """Table 3 in the miniature: one row per instruct base the FineMed-de runs train (cpt.runs'
    order), each cell what that model's folder gives: parameters counted from the loaded weights,
    vocabulary from the loaded tokenizer, the card's licence, the config's citation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from definemed.config import display_name

    bases = list(dict.fromkeys(r["base"] for r in miniature_config["cpt"]["runs"].values() if r["corpus"] == "finemed"))
    expected = []
    for base in bases:
        folder = miniature / "models" / base
        n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(folder).parameters())
        assert 1e3 <= n < 1e6, n  # tiny models print in k
        vocab = len(AutoTokenizer.from_pretrained(folder))
        expected.append(
            [
                display_name(miniature_config, base),
                f"{n / 1e3:.1f}k",
                f"{vocab:,}",
                card_license(folder) or "not in the model card",
                miniature_config["models"][base]["citation"],
            ]
        )
    md = miniature / "paper" / "tables" / "table3.md"
    assert md.read_text().splitlines()[0] == "| Model | Parameters | Vocab Size | License | Source |"
    assert _md_rows(md) == expected
    _tex_has_rows(miniature / "paper" / "tables" / "table3.tex", expected)


def test_miniature_table7_prints_the_runs_cpt_config(miniature, miniature_config):
    """Table 7 in the miniature: the paper's five rows, each the value of the miniature's cpt config."""
    cpt = miniature_config["cpt"]
    seqs, length = cpt["effective_batch_sequences"], cpt["sequence_length"]
    expected = [
        ["Learning Rate", f"{cpt['learning_rate']:g}"],
        ["Weight Decay", f"{cpt['weight_decay']:g}"],
        ["Warmup Steps", str(cpt["warmup_steps"])],
        ["Effective Batch Size", f"{seqs:,} sequences ({seqs * length:,} tokens)"],
        ["Sequence Length", f"{length:,}"],
    ]
    md = miniature / "paper" / "tables" / "table7.md"
    assert md.read_text().splitlines()[0] == "| Parameter | PT |"
    assert _md_rows(md) == expected
    _tex_has_rows(miniature / "paper" / "tables" / "table7.tex", expected)


def test_miniature_table10_prints_the_judges_failure_modes(miniature):
    """Table 10 in the miniature: every failure mode the judge used (counts.json, its order) with
    the description it was given; the paper's eleven as printed (paper/reported/table10.csv)."""
    counts = json.loads((miniature / "results" / "judges" / "failure_modes" / "counts.json").read_text())
    expected = [[m.replace("_", " ").title(), counts["descriptions"][m]] for m in counts["modes"]]
    md = miniature / "paper" / "tables" / "table10.md"
    assert _md_rows(md) == expected
    _tex_has_rows(miniature / "paper" / "tables" / "table10.tex", expected)
    with open(REPO / "paper" / "reported" / "table10.csv", encoding="utf-8", newline="") as f:
        printed = [r for r in csv.reader(f)][1:]
    rows = {name: description for name, description in expected}
    assert all(rows.get(name) == description for name, description in printed)
    ours = [m for m in counts["modes"] if counts["description_source"][m] != "Table 10"]
    assert f"(descriptions ours): {', '.join(ours)}." in md.read_text()


def test_miniature_figure5_draws_the_scaling_measurements(miniature, miniature_config, tmp_path):
    """Figure 5 in the miniature: drawn from its scaling files (results/scaling/<run>/nodes-<n>.json)
    and nothing else: each run's line goes through its measured throughputs, its linear-scaling line
    starts at the smallest node count, each point is labelled with its per-device throughput; the
    PNG on disk is byte for byte the figure those files give."""
    from definemed.config import display_name
    from definemed.paper.figures import figure5, save

    scaling = miniature_config["paper"]["scaling"]
    points = [
        json.loads((miniature / "results" / "scaling" / run / f"nodes-{n}.json").read_text())
        for run in scaling["runs"]
        for n in scaling["nodes"]
    ]
    display = {run: display_name(miniature_config, run) for run in scaling["runs"]}
    fig = figure5(points, display, scaling.get("unit", "nodes"))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    texts = [t.get_text() for t in ax.texts]
    for run in scaling["runs"]:
        pts = sorted((p for p in points if p["run"] == run), key=lambda p: p["nodes"])
        line = lines[display[run]]
        assert list(line.get_xdata()) == [p["nodes"] for p in pts]
        assert list(line.get_ydata()) == [p["tokens_per_s"] for p in pts]
        ideal = [line2 for line2 in ax.get_lines() if line2.get_color() == line.get_color() and line2 is not line]
        assert [list(i.get_ydata()) for i in ideal] == [
            [pts[0]["tokens_per_s"] * p["nodes"] / pts[0]["nodes"] for p in pts]
        ]
        assert all(f"{p['tokens_per_s_per_device']:,.0f} per device" in texts for p in pts)
    assert ax.get_xlabel() == f"Number of {scaling.get('unit', 'nodes')}"
    save(fig, tmp_path / "figure5.pdf", tmp_path / "figure5.png")
    figures = miniature / "paper" / "figures"
    assert (tmp_path / "figure5.png").read_bytes() == (figures / "figure5.png").read_bytes()


DOT = """digraph snakemake_dag {
    node[shape=box, style=rounded];
\t0[label = "all", color = "0.00 0.6 0.85", style="rounded"];
\t1[label = "train_cpt", color = "0.1 0.6 0.85", style="rounded"];
\t2[label = "pack_corpus", color = "0.2 0.6 0.85", style="rounded"];
\t3[label = "merge_slerp", color = "0.3 0.6 0.85", style="rounded"];
\t4[label = "fetch_model", color = "0.4 0.6 0.85", style="rounded"];
\t1 -> 0
\t2 -> 1
\t4 -> 1
\t1 -> 3
\t4 -> 3
\t3 -> 0
}
"""


def test_figure1_draws_the_papers_process_from_the_workflows_stages():
    from definemed.paper.figures import PAGE_WIDTH, figure1, parse_rulegraph, process_stages

    labels, edges = parse_rulegraph(DOT)
    # only the stages whose rules the graph has, in the paper's order
    assert [(name, rules) for name, _, rules in process_stages(labels, edges)] == [
        ("Continual pre-training", ["train_cpt"]),
        ("Merging", ["merge_slerp"]),
    ]
    fig = figure1(DOT)
    width, height = fig.get_size_inches()
    assert width == PAGE_WIDTH and height < 2.5  # one row at the page width
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    assert {t.get_text() for t in texts} >= {"Continual\npre-training", "Merging"}
    assert min(t.get_fontsize() for t in texts) >= 6  # readable at print size (the rule graph had 5.5 pt)
    # a workflow that merged before training would no longer draw the paper's process
    swapped = DOT.replace("\t1 -> 3", "\t3 -> 1")
    with pytest.raises(ValueError, match="does not lead from Continual pre-training"):
        figure1(swapped)
    with pytest.raises(ValueError, match="no rules"):
        parse_rulegraph("digraph {}")


def test_paper_runs_figure1_has_every_stage_of_the_papers_process():
    """The paper run's own rule graph (config.yaml) leads through all seven stages in order."""
    from conftest import snakemake

    from definemed.paper.figures import PROCESS_STAGES, parse_rulegraph, process_stages

    dot = snakemake(REPO, "--rulegraph", timeout=300).stdout
    labels, edges = parse_rulegraph(dot[dot.index("digraph") :])
    stages = process_stages(labels, edges)
    assert [name for name, _, _ in stages] == [name for name, _, _ in PROCESS_STAGES]
    assert dict((name, rules) for name, _, rules in stages)["FineWeb2-de"] == ["download_fineweb_shard"]


def test_miniature_figure1_is_the_papers_process_from_the_rule_graph(miniature):
    from definemed.paper.figures import parse_rulegraph, process_stages

    figures = miniature / "paper" / "figures"
    labels, edges = parse_rulegraph((figures / "rulegraph.dot").read_text())
    names = [name for name, _, _ in process_stages(labels, edges)]
    assert names == ["FineWeb2-de", "LLM labels", "Classifier", "FineMed-de", "Continual pre-training", "Merging",
                     "Evaluation"]  # fmt: skip
    assert (figures / "figure1.png").read_bytes().startswith(b"\x89PNG")


def test_table6_counts_the_kinds_of_the_llms_false_positives(tmp_path):
    from definemed.dataset.annotation import excerpt, false_positives, kind_counts, kind_examples

    key = {"i1": 1, "i2": 1, "i3": 0, "i4": 1}
    votes = [{"i1": 0, "i2": 1, "i3": 0, "i4": 1}, {"i1": 0, "i2": 0, "i3": 1, "i4": 1}]
    assert false_positives(key, votes) == ["i1", "i2"]  # a tie is not medical, as Table 5 counts it
    sheet = tmp_path / "false_positives.csv"
    sheet.write_text("item,id,text,kind\ni1,a,x,news\ni2,b,y,wellness\ni5,c,z,news\n")
    assert kind_counts(sheet) == [("news", 2), ("wellness", 1)]
    [table] = tables.table6(kind_examples(sheet))
    assert table.columns == ["Count", "False Positive Example"]  # the paper's layout
    assert table.rows == [["2", "x"], ["1", "y"]]  # each kind's first document
    assert "news, wellness" in table.notes[0]
    long = " ".join(["Wort"] * 100)
    assert excerpt(long) == " ".join(["Wort"] * 48) + " …"  # cut at the last word boundary before 240
    sheet.write_text("item,id,text,kind\ni1,a,x,news\ni2,b,y, \n")
    with pytest.raises(ValueError, match=r"false_positives\.csv: row 3 \(item i2\) has no kind"):
        kind_counts(sheet)


def test_miniature_table6_counts_table5s_false_positives(miniature):
    validation = json.loads((miniature / "results" / "labels" / "label_validation.json").read_text())
    rows = _md_rows(miniature / "paper" / "tables" / "table6.md")
    assert sum(int(count) for count, _ in rows) == validation["confusion"]["fp"]
    assert all(len(example) <= 242 for _, example in rows)


def test_weights_hash_follows_the_weights_not_the_folder(tmp_path):
    from definemed.model_facts import weights_sha256

    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"weights")
        (tmp_path / name / "config.json").write_text(name)
    (tmp_path / "c" / "model.safetensors").write_bytes(b"weightz")
    assert weights_sha256(tmp_path / "a") == weights_sha256(tmp_path / "b") != weights_sha256(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no weight files"):
        weights_sha256(tmp_path)


def test_rows_of_the_benchmark_tables_evaluated_distinct_weights(miniature, miniature_config):
    """Base, CPT model and merge of every row of Tables 4, 9 and 11 are different weights, and each
    result records the weights it evaluated."""
    from definemed.evaluation.benchmarks import group_tasks, table_rows
    from definemed.model_facts import weights_sha256

    for table, group in (("table4", "medical"), ("table9", "medical"), ("table11", "general")):
        rows = table_rows(miniature_config, table)
        hashes = {m: weights_sha256(miniature / "models" / m) for m in rows}
        assert len(set(hashes.values())) == len(rows), (table, hashes)
        for model in rows:
            for task in group_tasks(miniature_config, group):
                result = json.loads((miniature / "results" / "benchmarks" / model / f"{task}.json").read_text())
                assert result["model_weights_sha256"] == hashes[model], (table, model, task)


def test_benchmark_tables_mark_a_row_answering_one_constant_option(tmp_path):
    """A row whose model picks the same option for every item of a column measures the gold
    letters' distribution: the table marks it (from the per-sample log) and says which column."""
    from definemed.evaluation.effects import constant_answer

    folder = tmp_path / "benchmarks" / "m"
    folder.mkdir(parents=True)
    picks = {"m": [[["-1.0", "0"], ["-0.5", "0"], ["-3.0", "0"]]] * 4}  # option B every time
    (folder / "anatomy.samples.jsonl").write_text(
        "\n".join(json.dumps({"filtered_resps": r, "acc": 0.0}) for r in picks["m"]) + "\n"
    )
    option = constant_answer(tmp_path, "m", "anatomy")
    assert option == 1
    results = {"m": {"anatomy": {"accuracy": 0.25, "stderr": 0.2}}, "n": {"anatomy": {"accuracy": 0.5, "stderr": 0.2}}}
    [table] = tables.benchmark_table(
        results, ["m", "n"], ["anatomy"], {"m": "M", "n": "N"}, {"anatomy": "Anatomy"}, {"m": {"anatomy": option}}
    )
    assert [r[0] for r in table.rows] == ["M †", "N"]
    assert table.notes == ["† M answers one option for every item of Anatomy (B)."]
    [unmarked] = tables.benchmark_table(results, ["m", "n"], ["anatomy"], {"m": "M", "n": "N"}, {"anatomy": "Anatomy"})
    assert [r[0] for r in unmarked.rows] == ["M", "N"] and not unmarked.notes


def test_figure5_draws_both_7b_runs_in_the_miniature():
    """A.3: "In both cases" (the two 7B models): the miniature measures and draws both, cheaply."""
    from definemed.paper.figures import figure5

    miniature = load(REPO / "config" / "miniature.yaml")
    runs = miniature["cpt"]["runs"]
    small = [r for r, s in runs.items() if s["corpus"] == "finemed" and r != miniature["paper"]["claims"]["large_run"]]
    assert sorted(miniature["paper"]["scaling"]["runs"]) == sorted(small) and len(small) == 2
    assert miniature["paper"]["scaling"]["steps"] <= 3 and miniature["paper"]["scaling"]["nodes"] == [1, 2]  # cheap
    points = [
        {"run": run, "nodes": n, "tokens_per_s": 1000.0 * n, "tokens_per_s_per_device": 1000.0}
        for run in small
        for n in (1, 2)
    ]
    fig = figure5(points, {r: runs[r]["display"] for r in small})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [runs[r]["display"] for r in sorted(small)] + ["linear scaling"]
