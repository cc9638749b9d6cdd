"""Tables 5 and 6 from filled annotation sheets: the paper run's route (README, "Table 5 needs the
human annotation"), on a scratch copy of the finished miniature with its simulated annotators
switched off. The blinded sheets are filled by hand with a known majority (3 of the LLM's medical
labels wrong, 2 of its other labels wrong, one annotator dissenting on 4 items), listed under
label_validation.annotation_files, and the workflow writes Table 5 and the false-positive sheet;
the sheet's kinds are named, label_validation.false_positive_kinds set, and it writes Table 6. Each
cell is checked against the numbers those sheets give. About 30 s (two Snakemake calls of a few
small jobs each)."""

import csv
import shutil

import yaml
from conftest import REPO, copy_repo, snakemake

from definemed.dataset.annotation import excerpt
from tests.paper.test_paper_tables import _md_rows

PROFILE = ("--profile", "profiles/miniature")
ANNOTATION = "miniature/results/labels/annotation"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def agreement(ratings: list[list[int]], classes=(0, 1)) -> float:
    n, items = len(ratings[0]), len(ratings)
    counts = [[r.count(c) for c in classes] for r in ratings]
    p_bar = sum((sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts) / items
    p_e = sum((sum(row[j] for row in counts) / (items * n)) ** 2 for j in range(len(classes)))
    return p_bar, p_e


def test_tables_5_and_6_from_filled_annotation_sheets(miniature, tmp_path):
    work = copy_repo(tmp_path / "repo")
    shutil.copytree(miniature, work / "miniature", ignore=shutil.ignore_patterns("work"), symlinks=True)
    config = yaml.safe_load((REPO / "config" / "miniature.yaml").read_text())
    validation = config["label_validation"]
    validation.pop("simulate_annotators")  # the paper's route: sheets filled by people

    # the filled sheets: a majority the test knows
    key = read_csv(work / ANNOTATION / "key.csv")
    llm = {r["item"]: int(r["llm_label"]) for r in key}
    medical = [i for i in llm if llm[i] == 1]
    other = [i for i in llm if llm[i] == 0]
    fp, fn = medical[:3], other[:2]
    truth = {i: (1 - label if i in fp + fn else label) for i, label in llm.items()}
    dissent = medical[5:7] + other[5:7]  # annotator 3 only: the majority stands
    sheets = []
    for k in range(1, validation["annotators"] + 1):
        rows = read_csv(work / ANNOTATION / f"annotator-{k}.csv")
        assert rows and all(r["is_medical"] == "" for r in rows)  # blinded and empty, as handed out
        for r in rows:
            answer = truth[r["item"]] if not (k == 3 and r["item"] in dissent) else 1 - truth[r["item"]]
            r["is_medical"] = "yes" if answer else "no"
        sheets.append(tmp_path / f"filled-{k}.csv")
        write_csv(sheets[-1], rows)
    validation["annotation_files"] = [str(s) for s in sheets]
    validation["false_positive_kinds"] = None
    overlay = tmp_path / "config.yaml"
    overlay.write_text(yaml.safe_dump(config, allow_unicode=True))

    table5 = "miniature/paper/tables/table5.md"
    sheet = f"{ANNOTATION}/false_positives.csv"
    rules = ["evaluate_labels", "false_positive_sheet", "table5"]
    snakemake(work, *PROFILE, "--configfile", str(overlay), "--forcerun", *rules, "--allowed-rules", *rules, "--",
              table5, sheet)  # fmt: skip

    tp, n_fp, n_fn = len(medical) - len(fp), len(fp), len(fn)
    tn = len(other) - n_fn
    precision, recall = tp / (tp + n_fp), tp / (tp + n_fn)
    ratings = [[truth[i] if not (k == 3 and i in dissent) else 1 - truth[i] for k in (1, 2, 3)] for i in llm]
    p_bar, p_e = agreement(ratings)  # observed and (Fleiss) chance agreement
    assert _md_rows(work / table5) == [
        ["Precision", f"{precision:.3f}"],
        ["Recall", f"{recall:.3f}"],
        ["F1-score", f"{2 * precision * recall / (precision + recall):.3f}"],
        ["Accuracy", f"{(tp + tn) / len(llm):.3f}"],
        ["Inter-annotator kappa (Randolph, free-marginal)", f"{(p_bar - 0.5) / 0.5:.3f}"],
        ["Inter-annotator kappa (Fleiss)", f"{(p_bar - p_e) / (1 - p_e):.3f}"],
    ]
    text5 = (work / table5).read_text()
    assert "simulated" not in text5 and f"{len(llm)} documents ({len(medical)} labelled medical" in text5

    # the false-positive sheet lists exactly the LLM's false positives, kinds to be named
    listed = read_csv(work / sheet)
    assert sorted(r["item"] for r in listed) == sorted(fp) and all(not r["kind"].strip() for r in listed)
    kinds = {r["item"]: kind for r, kind in zip(listed, ["news", "wellness", "news"])}
    for r in listed:
        r["kind"] = kinds[r["item"]]
    filled = tmp_path / "false_positives_filled.csv"
    write_csv(filled, listed)
    validation["false_positive_kinds"] = str(filled)
    overlay.write_text(yaml.safe_dump(config, allow_unicode=True))
    table6 = "miniature/paper/tables/table6.md"
    snakemake(work, *PROFILE, "--configfile", str(overlay), "--forcerun", "table6", "--allowed-rules", "table6",
              "--", table6)  # fmt: skip
    first = {kind: next(r["text"] for r in listed if r["kind"] == kind) for kind in ("news", "wellness")}
    assert _md_rows(work / table6) == [["2", excerpt(first["news"])], ["1", excerpt(first["wellness"])]]
    assert "3 false positives; the rows' kinds, in order: news, wellness." in (work / table6).read_text()
