"""CITATION.cff (README, "Licence and citation") says what the README, pyproject.toml and LICENSE say:
the paper's title and arXiv id, the workflow's name, version and licence. Its schema is checked in CI
by `cffconvert --validate` in its own environment (.ci/run)."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CFF = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ARXIV_ID = r"\d{4}\.\d{4,5}"


def words(text):
    return " ".join(text.split())


def test_the_paper_is_the_one_the_readme_reproduces():
    paper = CFF["preferred-citation"]
    # README's opening sentence names the paper in italics, across a line break
    named = re.search(r"reproducing \*([^*]+)\*", README)
    assert named, "README no longer names the paper in its first sentence"
    assert words(paper["title"]) == words(named.group(1))
    first = paper["authors"][0]["family-names"]
    assert f"({first} et al., DeFineMed)" in README
    assert f"{first} et al. ({paper['year']})" in README


def test_one_arxiv_id_everywhere():
    paper = CFF["preferred-citation"]
    ids = {
        "url": re.fullmatch(rf"https://arxiv\.org/abs/({ARXIV_ID})", paper["url"]),
        "doi": re.fullmatch(rf"10\.48550/arXiv\.({ARXIV_ID})", paper["doi"]),
        **{
            f"identifier {i['value']}": re.fullmatch(rf"arXiv:({ARXIV_ID})", i["value"])
            for i in paper["identifiers"]
            if i["value"].startswith("arXiv:")
        },
        "README": re.search(rf"arXiv:({ARXIV_ID})", README),
    }
    assert all(ids.values()), {k: bool(v) for k, v in ids.items()}
    assert len({m.group(1) for m in ids.values()}) == 1, {k: m.group(1) for k, m in ids.items()}


def test_the_workflow_entry_matches_readme_pyproject_and_licence():
    assert CFF["cff-version"] == "1.2.0"
    assert CFF["type"] == "software"
    assert f"# {CFF['title']}\n" in README
    assert str(CFF["version"]) == PROJECT["version"]
    assert CFF["license"] == PROJECT["license"] == "Apache-2.0"
    licence = (REPO / "LICENSE").read_text()
    assert words(licence).startswith("Apache License Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in licence, "the full text, not a notice"
    assert [a["name"] for a in CFF["authors"]] == ["DeFineMed workflow contributors"]
