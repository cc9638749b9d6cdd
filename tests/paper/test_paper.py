"""The paper's tables, figures and reproduction report (rules/paper.smk): unit tests on synthetic
results, the miniature's tables against the result files they come from, the DAG of one figure,
the Snakemake report and the determinism check."""

import base64
import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, copy_repo, snakemake

from definemed.determinism import compare_trees
from definemed.io import read_jsonl
from definemed.paper import reproduction as rp
from definemed.paper import tables

PY = sys.executable
REPORTED = REPO / "paper" / "reported"


def run_script(*args):
    proc = subprocess.run([PY, *map(str, args)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def md_rows(text):
    """Body rows of every Markdown table in `text`, as lists of cells."""
    rows = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


# ---------------------------------------------------------------- the reported numbers


@pytest.mark.parametrize("table", ["table4", "table9", "table11"])
def test_reported_averages_follow_the_papers_rule(table):
    """Transcription check: every Average cell is the row mean with se sqrt(sum se^2)/k, to rounding."""
    rows = rp.read_reported(REPORTED / f"{table}.csv")
    assert rows
    for row in rows:
        cells = [rp.parse_acc(v) for k, v in row.items() if k not in ("Model", "display", "Average")]
        mean, se = tables.average(cells)
        paper_mean, paper_se = rp.parse_acc(row["Average"])
        assert abs(mean - paper_mean) <= 0.006 + 1e-9, row["Model"]
        assert abs(se - paper_se) <= 0.011, row["Model"]


def test_reported_tables_agree_where_they_share_rows():
    t4 = {r["display"]: r for r in rp.read_reported(REPORTED / "table4.csv")}
    t9 = rp.read_reported(REPORTED / "table9.csv")
    shared = [r for r in t9 if r["display"] in t4]
    assert len(shared) == 3
    for r in shared:
        a = t4[r["display"]]
        assert [a["Anatomy"], a["Clinical Knowledge"], a["College Medicine"], a["MedQA-de"], a["Average"]] == [
            r["Anatomy"],
            r["Clinical Knowledge"],
            r["College Medicine"],
            r["MedQA"],
            r["Average"],
        ]


def test_reported_rows_map_to_the_papers_config_display_names():
    from definemed.config import display_name, load

    config = load(REPO / "config.yaml")
    names = set(display_name(config, k) for k in config["models"])
    runs = config["cpt"]["runs"]
    names |= {display_name(config, r) for r in runs} | {display_name(config, f"{r}-slerp") for r in runs}
    for table in ("table4", "table8", "table9", "table11"):
        for row in rp.read_reported(REPORTED / f"{table}.csv"):
            assert row["display"] in names, (table, row["display"])
    # the paper's column headers are those the config maps to tasks
    for table, columns in config["paper"]["reported_columns"].items():
        header = next(csv.reader(open(REPORTED / f"{table}.csv", encoding="utf-8")))
        assert header == ["Model", "display", *columns, "Average"]
    assert rp.parse_quantity("25.1B") == pytest.approx(25.1e9) and rp.parse_quantity("72h") == 72


# ---------------------------------------------------------------- tables and figures from synthetic results


def synthetic_benchmarks(root: Path, models, tasks):
    values = {}
    for i, m in enumerate(models):
        for j, t in enumerate(tasks):
            acc = 0.3 + 0.05 * i + 0.01 * j
            se = math.sqrt(acc * (1 - acc) / (100 + 50 * j))
            d = {"model": m, "task": t, "accuracy": acc, "stderr": se, "n": 100 + 50 * j}
            (root / m).mkdir(parents=True, exist_ok=True)
            (root / m / f"{t}.json").write_text(json.dumps(d))
            values[m, t] = (acc, se)
    return values


def test_benchmark_table_prints_accuracy_and_average_as_the_paper(tmp_path):
    models, tasks = ["base", "cpt-slerp"], ["anatomy", "medqa_de"]
    values = synthetic_benchmarks(tmp_path / "benchmarks", models, tasks)
    md, tex = tmp_path / "t.md", tmp_path / "t.tex"
    run_script(
        "scripts/make_table.py", "benchmark", "--rows", *models, "--columns", *tasks,
        "--display", json.dumps({"base": "Base-7B", "cpt-slerp": "DeFineMed-7B-SLERP"}),
        "--headers", json.dumps({"anatomy": "Anatomy", "medqa_de": "MedQA-de"}),
        "--results-dir", tmp_path / "benchmarks", "--out-md", md, "--out-tex", tex,
    )  # fmt: skip
    rows = md_rows(md.read_text())
    assert rows[0] == ["Model", "Anatomy", "MedQA-de", "Average"]
    for row, m in zip(rows[1:], models):
        cells = [values[m, t] for t in tasks]
        assert row[1:3] == [f"{100 * a:.2f} ± {100 * s:.2f}" for a, s in cells]
        mean = sum(a for a, _ in cells) / 2
        se = math.sqrt(sum(s * s for _, s in cells)) / 2
        assert row[3] == f"{100 * mean:.2f} ± {100 * se:.2f}"
    assert [r[0] for r in rows[1:]] == ["Base-7B", "DeFineMed-7B-SLERP"]
    text = tex.read_text()
    assert r"\toprule" in text and r"\bottomrule" in text and r"$\pm$" in text and "MedQA-de" in text


def synthetic_winrate(models):
    matrix = {a: {b: {"wins": 6, "losses": 3, "ties": 1, "invalid": 0, "n": 10, "win_rate": 0.2 + 0.1 * i}
                  for b in models if b != a} for i, a in enumerate(models)}  # fmt: skip
    return {"judge": "gpt-4.1-mini", "models": models, "display": {m: m.upper() for m in models}, "matrix": matrix}


def synthetic_curve() -> dict:
    """A threshold curve with precision 0.5 + t / 2 and recall 1 - t, chosen at 0.9."""
    t = [k / 20 for k in range(21)]
    precision, recall = [0.5 + x / 2 for x in t], [1 - x for x in t]
    return {"chosen_threshold": 0.9, "threshold": t, "precision": precision, "recall": recall}


def synthetic_counts(models):
    modes = ["language_mixing", "typo", "hallucination"]
    return {
        "judge": "gpt-4.1",
        "modes": modes,
        "descriptions": {m: m for m in modes},
        "models": {
            m: {"display": m, "responses": 20, "judged": 20, "invalid": 0,
                "counts": {mode: i + k for k, mode in enumerate(modes)},
                "shares": {mode: (i + k) / 20 for k, mode in enumerate(modes)}}
            for i, m in enumerate(models)
        },
    }  # fmt: skip


@pytest.mark.parametrize("figure", ["figure2", "figure3", "figure4", "figure5"])
def test_figures_are_written_without_timestamps_and_reproducibly(tmp_path, figure):
    models = ["a", "b-slerp", "c"]
    if figure == "figure2":
        (tmp_path / "in.json").write_text(json.dumps(synthetic_winrate(models)))
        args = ["--winrate", tmp_path / "in.json"]
    elif figure == "figure3":
        (tmp_path / "in.json").write_text(json.dumps(synthetic_counts(models)))
        args = ["--counts", tmp_path / "in.json"]
    elif figure == "figure4":
        (tmp_path / "in.json").write_text(json.dumps(synthetic_curve()))
        args = ["--curve", tmp_path / "in.json"]
    else:
        args = ["--unit", "nodes", "--points"]
        for n in (1, 2, 4):
            p = tmp_path / f"nodes-{n}.json"
            p.write_text(
                json.dumps({"run": "r", "nodes": n, "tokens_per_s": 1000.0 * n, "tokens_per_s_per_device": 1000.0})
            )
            args.append(p)
    outs = []
    for k in (1, 2):
        pdf, png = tmp_path / f"{k}.pdf", tmp_path / f"{k}.png"
        run_script("scripts/make_figure.py", figure, *args, "--display", json.dumps({"a": "Model A"}),
                   "--out-pdf", pdf, "--out-png", png)  # fmt: skip
        outs.append((pdf.read_bytes(), png.read_bytes()))
    assert outs[0] == outs[1]
    pdf, png = outs[0]
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"Matplotlib" not in png


def svg_texts(fig) -> list[str]:
    """Every text the figure draws (ticks, labels, annotations, legend), from an SVG rendering
    with text kept as text."""
    import io
    import xml.etree.ElementTree as ET

    import matplotlib
    import matplotlib.pyplot as plt

    from definemed.paper import figures

    buf = io.StringIO()
    with figures.paper_style():
        matplotlib.rcParams["svg.fonttype"] = "none"
        fig.savefig(buf, format="svg")
    plt.close(fig)
    return [
        "".join(t.itertext()).strip() for t in ET.fromstring(buf.getvalue()).iter("{http://www.w3.org/2000/svg}text")
    ]


def test_figures_draw_their_numbers_and_display_names():
    """The content of each figure, against numbers worked out here from the synthetic inputs."""
    from definemed.paper import figures

    models = ["a", "b-slerp", "c"]
    # Figure 2: a row model's win rate is 0.2, 0.3, 0.4 against each opponent, printed x100
    texts = svg_texts(figures.figure2(synthetic_winrate(models), {"a": "Model A"}))
    assert texts.count("Model A") == 2 and texts.count("B-SLERP") == 2 and texts.count("C") == 2  # x and y ticks
    assert "a" not in texts and "A" not in texts  # the display map wins over the file's own names
    assert sorted(t for t in texts if t.isdigit() and t not in ("0", "25", "50", "75", "100")) == [
        "20",
        "20",
        "30",
        "30",
        "40",
        "40",
    ]
    assert "Pairwise win rates (judge: gpt-4.1-mini)" in texts

    # Figure 3: model i shows mode k in i + k of its 20 responses
    texts = svg_texts(figures.figure3(synthetic_counts(models), {"c": "Model C"}))
    assert {"a", "b-slerp", "Model C", "Language mixing", "Typo", "Hallucination"} <= set(texts)
    assert sorted(int(t) for t in texts if t.isdigit()) == sorted(i + k for i in range(3) for k in range(3))
    assert "Failure modes (judge: gpt-4.1; 20 judged responses per model)" in texts

    # Figure 4: at the chosen 0.9, precision 0.5 + 0.9 / 2 and recall 1 - 0.9
    texts = svg_texts(figures.figure4(synthetic_curve()))
    assert {"threshold 0.9", "P = 0.95, R = 0.10", "Precision", "Recall"} <= set(texts), texts

    # Figure 5: runs under their display names, per-device throughput at each point, node ticks
    points = [{"run": "r", "nodes": n, "tokens_per_s": 1000.0 * n * 0.9 ** n, "tokens_per_s_per_device": 1234.0 * n}
              for n in (1, 2, 4)]  # fmt: skip
    texts = svg_texts(figures.figure5(points, {"r": "Run R"}, "nodes"))
    assert {
        "Run R",
        "linear scaling",
        "Number of nodes",
        "1,234 per device",
        "2,468 per device",
        "4,936 per device",
    } <= set(texts)
    assert {"1", "2", "4"} <= set(texts)


# ---------------------------------------------------------------- the reproduction report


def test_reproduction_flags_cells_beyond_two_standard_errors():
    reported = rp.read_reported(REPORTED / "table9.csv")
    columns = {"Anatomy": "anatomy", "Clinical Knowledge": "clinical_knowledge",
               "College Medicine": "college_medicine", "MedQA": "medqa_de"}  # fmt: skip
    display = {"qwen": "tiny Qwen2.5-7B-Instruct", "cpt": "tiny DeFineMed-Qwen2.5-7B"}
    index = rp.display_index(display, "tiny ")
    results = {}
    for row in reported[:2]:
        key = index[row["display"]]
        results[key] = {}
        for header, task in columns.items():
            acc, se = rp.parse_acc(row[header])
            results[key][task] = {"accuracy": acc / 100, "stderr": se / 100}
    # shift one cell by three standard errors of the difference
    acc, se = rp.parse_acc(reported[1]["Anatomy"])
    results["cpt"]["anatomy"]["accuracy"] = (acc + 3 * math.sqrt(2) * se) / 100
    cells = rp.compare_benchmark("table9", reported, columns, results, index)
    compared = [c for c in cells if c.z is not None]
    assert len(compared) == 2 * 5
    flagged = [(c.row, c.column) for c in cells if c.flagged]
    assert flagged == [("DeFineMed-Qwen2.5-7B", "Anatomy")]
    assert next(c for c in cells if c.flagged).z == pytest.approx(3, abs=0.01)
    # the unshifted row reproduces exactly; the rows without a model are named as such
    assert all(abs(c.z) < 0.01 for c in compared if c.row == "Qwen2.5-7B-Instruct")
    missing = [c for c in cells if c.status.startswith("not reproduced")]
    assert {c.row for c in missing} == {r["Model"] for r in reported[2:]}
    text = rp.render({"table9": cells}, True, 2, 0.05, {})
    assert "not comparable to the paper" in text and text.count("**FLAG**") == 1


def test_reproduction_of_table8_by_relative_difference():
    reported = rp.read_reported(REPORTED / "table8.csv")
    summary = {"device": "NVIDIA A100-SXM4-40GB", "world_size": 64, "steps": 2970, "tokens_seen": 25.1e9}
    log = [{"step": 1, "seconds": 72 * 3600 * 0.5}, {"step": 2, "seconds": 72 * 3600 * 0.5}]
    index = rp.display_index({"definemed-mistral-7b": "DeFineMed-Mistral-7B"})
    cells = rp.compare_table8(reported, {"definemed-mistral-7b": (summary, log)}, index)
    mine = [c for c in cells if c.key == "definemed-mistral-7b" and c.relative is not None]
    assert {c.column for c in mine} == {"Num GPUs", "Time", "Steps", "Tokens"}
    assert all(abs(c.relative) < 1e-9 and not c.flagged for c in mine)


def test_table8_names_each_runs_cluster_and_the_report_compares_it():
    summary = {"device": "NVIDIA A100-SXM4-40GB", "world_size": 64, "steps": 2970, "tokens_seen": 25.1e9}
    log = [{"step": 1, "seconds": 3600.0}]
    [table] = tables.table8([("Mistral-7B-Instruct-v0.3", "Karolina", summary, log)])
    assert table.columns[:3] == ["Model", "Cluster", "Accelerator"]
    assert table.rows[0][:3] == ["Mistral-7B-Instruct-v0.3", "Karolina", "NVIDIA A100-SXM4-40GB"]

    reported = rp.read_reported(REPORTED / "table8.csv")
    index = rp.display_index({"definemed-mistral-7b": "DeFineMed-Mistral-7B"})
    for cluster, status in (("Karolina", "the paper's site"), ("Leonardo", "another site")):
        cells = rp.compare_table8(
            reported, {"definemed-mistral-7b": (summary, log)}, index, 0.05, {"definemed-mistral-7b": cluster}
        )
        [cell] = [c for c in cells if c.key == "definemed-mistral-7b" and c.column == "Cluster"]
        assert (cell.reproduced, cell.status) == (cluster, f"as configured: {status}")


def test_paper_config_names_table8s_clusters():
    from definemed.config import load

    config = load(REPO / "config.yaml")
    cpt = config["cpt"]
    clusters = {r["display"]: r["Cluster"] for r in rp.read_reported(REPORTED / "table8.csv")}
    for run, spec in cpt["runs"].items():
        if spec.get("display") in clusters:
            assert spec.get("cluster", cpt["cluster"]) == clusters[spec["display"]], run


def test_table5_prints_randolphs_kappa_beside_fleiss():
    validation = {"precision": 0.9, "recall": 0.8, "f1": 0.847, "accuracy": 0.85, "items": 200}
    validation |= {"llm_medical_items": 100, "annotators": 3, "fleiss_kappa": 0.625, "randolph_kappa": 2 / 3}
    [table] = tables.table5(validation)
    cells = dict(table.rows)
    assert cells["Inter-annotator kappa (Randolph, free-marginal)"] == "0.667"
    assert cells["Inter-annotator kappa (Fleiss)"] == "0.625"
    [table] = tables.table5({**validation, "fleiss_kappa": None, "randolph_kappa": None})
    assert dict(table.rows)["Inter-annotator kappa (Fleiss)"] == "n/a"


# ---------------------------------------------------------------- the miniature


def test_miniature_tables_come_from_their_results(miniature, miniature_config):
    res, tab = miniature / "results", miniature / "paper" / "tables"
    split = json.loads((res / "labels" / "split_stats.json").read_text())
    finemed = json.loads((res / "finemed" / "statistics.json").read_text())
    rows = md_rows((tab / "table2.md").read_text())
    upper = {r[0]: r[1:] for r in rows if r[0] in ("Test", "Train", "Total")}
    for name in ("test", "train", "total"):
        s = split[name]
        expected = [s["documents"]["medical"], s["documents"]["other"], s["words"]["medical"], s["words"]["other"]]
        assert [int(c.replace(",", "")) for c in upper[name.capitalize()]] == expected
    lower = {r[0]: r[1:] for r in rows if r[0] in ("FineMed-de", "FineWeb2-de")}
    for name in ("FineMed-de", "FineWeb2-de"):
        assert [int(c.replace(",", "")) for c in lower[name]] == [finemed[name]["documents"], finemed[name]["words"]]

    validation = json.loads((res / "labels" / "label_validation.json").read_text())
    scores = {r[0]: float(r[1]) for r in md_rows((tab / "table5.md").read_text())[1:] if r[1] != "n/a"}
    for metric, key in (("Precision", "precision"), ("Recall", "recall"), ("F1-score", "f1"), ("Accuracy", "accuracy")):
        assert scores[metric] == pytest.approx(validation[key], abs=5e-4)
    assert scores["Inter-annotator kappa (Randolph, free-marginal)"] == pytest.approx(
        validation["randolph_kappa"], abs=5e-4
    )

    body = md_rows((tab / "table8.md").read_text())[1:]
    runs = miniature_config["paper"]["table8"]["runs"]
    assert len(body) == len(runs)
    for row, run in zip(body, runs):
        summary = json.loads((res / "cpt" / run / "summary.json").read_text())
        log = read_jsonl(res / "cpt" / run / "training_log.jsonl")
        cpt = miniature_config["cpt"]
        assert row[1] == cpt["runs"][run].get("cluster", cpt["cluster"])
        assert row[2] == summary["device"] and int(row[3]) == summary["world_size"]
        assert int(row[5].replace(",", "")) == summary["steps"]
        # the cells read back as numbers (Table 8 prints "25.1B" tokens and "72h"), not re-formatted
        number, unit = float(row[6][:-1]), row[6][-1]
        scale = {"B": 1e9, "M": 1e6, "k": 1e3}[unit]
        assert 1 <= number < 1000 and abs(number * scale - summary["tokens_seen"]) <= 0.05 * scale
        assert row[4].endswith("h") and abs(float(row[4][:-1]) - sum(r["seconds"] for r in log) / 3600) <= 0.005
    assert (tab / "table8.tex").read_text().count(r"\\") == len(runs) + 1


def test_miniature_figures_and_reproduction_report(miniature, miniature_config, tmp_path):
    figures = miniature / "paper" / "figures"
    for name in ("figure4", "figure5"):
        assert (figures / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (figures / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    # Figure 4 is drawn from the threshold curve and marks the precision and recall that the
    # classifier's evaluation measured at the config's threshold
    from definemed.paper import figures as draw

    curve = json.loads((miniature / "results" / "classifier" / "threshold_curve.json").read_text())
    metrics = json.loads((miniature / "results" / "classifier" / "metrics.json").read_text())
    draw.save(draw.figure4(curve), tmp_path / "figure4.pdf", tmp_path / "figure4.png")
    assert (figures / "figure4.png").read_bytes() == (tmp_path / "figure4.png").read_bytes()
    threshold = miniature_config["classifier"]["threshold"]["value"]
    texts = svg_texts(draw.figure4(curve))
    assert f"threshold {threshold:g}" in texts
    assert f"P = {metrics['precision']:.2f}, R = {metrics['recall']:.2f}" in texts
    scaling = miniature_config["paper"]["scaling"]
    for n in scaling["nodes"]:
        point = json.loads((miniature / "results" / "scaling" / scaling["runs"][0] / f"nodes-{n}.json").read_text())
        assert point["processes"] == n * scaling["processes_per_node"]
        assert point["measured_steps"] == scaling["steps"] - scaling["warmup_steps"]
        assert point["tokens_per_s"] > 0
    report = (miniature / "paper" / "reproduction.md").read_text()
    assert "not comparable to the paper" in report
    assert "## Table 8" in report and "| Mistral-7B-Instruct-v0.3 | Steps | 2970 |" in report


@pytest.fixture(scope="module")
def finished_copy(miniature, tmp_path_factory):
    """A scratch copy of the repository holding the finished miniature (its work/ left out)."""
    work = copy_repo(tmp_path_factory.mktemp("paper-dag"))
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    metadata = miniature.parent / ".snakemake" / "metadata"
    if metadata.is_dir():
        shutil.copytree(metadata, work / ".snakemake" / "metadata")
    return work


def planned_jobs(proc):
    lines = proc.stdout.split("Job stats:")[1].splitlines()[3:]
    jobs = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def test_a_deleted_figure_reruns_only_its_plotting_job(finished_copy):
    target = "miniature/paper/figures/figure4.pdf"
    (finished_copy / target).unlink()
    proc = snakemake(finished_copy, "--profile", "profiles/miniature", "-n", target)
    assert planned_jobs(proc) == {"figure4": 1}
    proc = snakemake(finished_copy, "--profile", "profiles/miniature", "-n")
    assert planned_jobs(proc) == {"figure4": 1, "all": 1}
    snakemake(finished_copy, "--profile", "profiles/miniature", target)
    assert (finished_copy / target).exists()
    # a changed upstream input would rerun the classifier; --allowed-rules keeps it out. (Snakemake
    # 9 compares checksums of small inputs, so the file's bytes must change, not only its mtime.)
    upstream = finished_copy / "miniature" / "results" / "labels" / "test.parquet"
    stat, original = upstream.stat(), upstream.read_bytes()
    pq.write_table(pq.read_table(upstream), upstream, compression="gzip")
    try:
        (finished_copy / target).unlink()
        proc = snakemake(finished_copy, "--profile", "profiles/miniature", "-n", target)
        assert "evaluate_classifier" in planned_jobs(proc)
        proc = snakemake(
            finished_copy, "--profile", "profiles/miniature", "-n", "--allowed-rules", "figure4", "--", target
        )
        assert planned_jobs(proc) == {"figure4": 1}
    finally:
        upstream.write_bytes(original)
        os.utime(upstream, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        snakemake(finished_copy, "--profile", "profiles/miniature", target)


def test_report_contains_every_figure_and_table(finished_copy, miniature_config):
    snakemake(finished_copy, "--profile", "profiles/miniature", "--report", "report.html")
    html = (finished_copy / "report.html").read_text(errors="replace")
    for name in ("figure1.png", "figure4.png", "figure5.png", "table2.md", "table3.md", "table5.md", "table6.md",
                 "table7.md", "table8.md", "table10.md", "reproduction.md"):  # fmt: skip
        assert name in html, name
    # the figures themselves are embedded, not only named
    png = (finished_copy / "miniature" / "paper" / "figures" / "figure4.png").read_bytes()
    assert base64.b64encode(png)[:200].decode() in html


# ---------------------------------------------------------------- determinism check


def make_tree(root: Path, files: dict):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_determinism_check_finds_differences_and_skips_only_timings(tmp_path):
    base = {
        "results/labels/split_stats.json": b'{"a": 1}\n',
        "results/cpt/run/summary.json": b'{"steps": 3}\n',
        "results/cpt/run/training_log.jsonl": b'{"seconds": 0.5}\n',
        "results/scaling/run/nodes-1.json": b'{"tokens_per_s": 10}\n',
        "paper/tables/table2.md": b"| a |\n",
        "paper/tables/table8.md": b"| 0.01h |\n",
        "paper/figures/figure4.png": b"\x89PNG\0\1\2",
        "paper/reproduction.md": b"report",
        "models/x/model.safetensors": b"weights",
    }
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, base)
    # timings differ, and files outside results/, paper/ tables and figures and models/
    make_tree(b, {**base, "results/cpt/run/training_log.jsonl": b'{"seconds": 0.7}\n',
                  "results/scaling/run/nodes-1.json": b'{"tokens_per_s": 12}\n',
                  "paper/tables/table8.md": b"| 0.02h |\n", "paper/reproduction.md": b"other report"})  # fmt: skip
    script = REPO / "scripts" / "check_determinism.py"
    ok = subprocess.run([PY, script, a, b], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    result = compare_trees(a, b)
    assert len(result.identical) == 5 and len(result.excluded) == 3
    # a differing result, a differing figure byte, a file only one run made, and a model's weights
    # or card all fail the check
    make_tree(b, {"results/cpt/run/summary.json": b'{"steps": 4}\n', "paper/figures/figure4.png": b"\x89PNG\0\1\3",
                  "results/labels/extra.json": b"{}", "models/x/model.safetensors": b"other",
                  "models/x/README.md": b"# x"})  # fmt: skip
    bad = subprocess.run([PY, script, a, b], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "DIFFERENT  results/cpt/run/summary.json: line 1" in bad.stdout
    assert "DIFFERENT  paper/figures/figure4.png: byte 6" in bad.stdout
    assert "DIFFERENT  models/x/model.safetensors" in bad.stdout
    assert "ONLY IN B  results/labels/extra.json" in bad.stdout
    assert "ONLY IN B  models/x/README.md" in bad.stdout


def test_judge_figures_are_drawn_by_their_rules(finished_copy, tmp_path):
    """Figures 2 and 3 from the miniature's judge results, through their Snakemake rules alone,
    with the config's display names."""
    judges = finished_copy / "miniature" / "results" / "judges"
    assert (judges / "pairwise" / "winrate.json").exists() and (judges / "failure_modes" / "counts.json").exists()
    targets = [f"miniature/paper/figures/{f}.{ext}" for f in ("figure2", "figure3") for ext in ("pdf", "png")]
    for t in targets:
        (finished_copy / t).unlink(missing_ok=True)
    proc = snakemake(finished_copy, "--profile", "profiles/miniature", "-n", *targets)
    assert planned_jobs(proc) == {"figure2": 1, "figure3": 1}
    snakemake(finished_copy, "--profile", "profiles/miniature", *targets)
    for t in targets:
        assert (finished_copy / t).stat().st_size > 1000
    # the rule's figures are those drawn from its result file with the config's display names, and
    # they show those names, not the model keys
    from definemed.config import display_name, load
    from definemed.paper import figures

    config = load(finished_copy / "config" / "miniature.yaml")
    winrate = json.loads((judges / "pairwise" / "winrate.json").read_text())
    counts = json.loads((judges / "failure_modes" / "counts.json").read_text())
    names = {m: display_name(config, m) for m in winrate["models"]}
    assert "tiny DeFineMed-Mistral-7B-SLERP" in names.values()
    keys = {m: m for m in names}
    for figure, draw in (
        ("figure2", lambda d: figures.figure2(winrate, d)),
        ("figure3", lambda d: figures.figure3(counts, d)),
    ):
        figures.save(draw(names), tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png")
        drawn = (finished_copy / f"miniature/paper/figures/{figure}.png").read_bytes()
        assert drawn == (tmp_path / f"{figure}.png").read_bytes(), figure
        texts = svg_texts(draw(names))
        assert set(names.values()) <= set(texts) and not set(names) & set(texts), figure
        assert svg_texts(draw(keys)) != texts


def test_classifier_log_keeps_no_wall_clock_entries():
    from definemed.dataset.classifier import without_timings

    history = [
        {"loss": 0.6, "step": 5, "epoch": 0.1},
        {"eval_loss": 0.03, "eval_runtime": 0.45, "eval_samples_per_second": 534.0, "eval_steps_per_second": 33.4},
        {"train_runtime": 53.1, "train_samples_per_second": 60.3, "total_flos": 3.5e11, "train_loss": 0.33},
    ]
    assert without_timings(history) == [
        {"loss": 0.6, "step": 5, "epoch": 0.1},
        {"eval_loss": 0.03},
        {"total_flos": 3.5e11},
    ]


def test_saved_tokenizer_config_does_not_depend_on_hf_hub_offline(tmp_path):
    from definemed.io import drop_load_flags

    config = {"model_max_length": 512, "local_files_only": True, "tokenizer_class": "X"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    drop_load_flags(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text()) == {
        "model_max_length": 512,
        "tokenizer_class": "X",
    }
    drop_load_flags(tmp_path / "absent")  # a model without tokenizer files is left alone


def test_determinism_check_compares_large_files_in_blocks(tmp_path, monkeypatch):
    """models/ holds the paper's weights (tens of GB a file): compared block by block, the first
    differing byte named, never a whole file read to name a line."""
    from definemed import determinism

    monkeypatch.setattr(determinism, "DETAIL_BYTES", 100)
    monkeypatch.setattr(determinism, "_BLOCK", 64)
    weights = bytes(range(256)) * 4
    a, b = tmp_path / "a", tmp_path / "b"
    make_tree(a, {"models/m/model.safetensors": weights})
    make_tree(b, {"models/m/model.safetensors": weights})
    assert compare_trees(a, b).identical == ["models/m/model.safetensors"]
    make_tree(b, {"models/m/model.safetensors": weights[:700] + b"\xff" + weights[701:]})
    assert compare_trees(a, b).details == {"models/m/model.safetensors": "byte 700 of 1024 / 1024"}
    make_tree(b, {"models/m/model.safetensors": weights[:1000]})  # truncated
    assert compare_trees(a, b).details == {"models/m/model.safetensors": "byte 1000 of 1024 / 1000"}
