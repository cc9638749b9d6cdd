"""Where each setting comes from: the paper's section, or NOT IN PAPER with the reason.

config.yaml: every leaf setting (a key whose value is not a block mapping) carries its source in
a comment: on its own line, in the comment lines directly above it, or on the line of a key it
sits under (`mixtral-8x7b-instruct-v0.1:  # 3.2, A.1` covers that model's entries). A section's
heading comment (the block above `cpt:`) does not cover the keys inside it: it would let an
invented value pass as the paper's.

schemas/config.schema.yaml: every `default` has a description naming its section, or a
description saying NOT IN PAPER on the property or on one of the objects it sits in (a whole
object that is the workflow's own, such as the miniature's tiny models, says so once).

A source is a section or appendix number (3.2, A.1.1), a table or figure (Table 8, Figure 5), or
one of the markers: NOT IN PAPER (the paper does not have the setting; the reason follows) and
LOST (the paper had a number that its text lost; the default chosen and why follow).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

NOT_IN_PAPER = "NOT IN PAPER"
LOST = "LOST"
# 3.2, 4.2, 5.1 (sections with a subsection: a bare number is too easily anything else),
# A.1, A.1.1, Table 8, Figure 5, "section 5"
CITATION = re.compile(
    r"(?:^|[\s(,;/])(?:A\.\d+(?:\.\d+)*|[1-6]\.\d+(?:\.\d+)?|Tables? \d+|Figures? \d+|[Ss]ection \d+)\b"
)


def has_source(text: str | None) -> bool:
    """True when `text` cites the paper or says NOT IN PAPER / LOST."""
    if not text:
        return False
    return NOT_IN_PAPER in text or LOST in text or bool(CITATION.search(text))


def _comment(line: str) -> str | None:
    """The comment of one YAML line (a `#` outside quotes), else None."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1 :].strip()
    return None


def _block_above(lines: list[str], row: int) -> str:
    """The comment-only lines directly above line `row` (0-based), joined."""
    block = []
    i = row - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.append(lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(reversed(block))


def unsourced_config_settings(path: Path | str) -> list[str]:
    """Settings of a config file with no source: 'dotted.key (line N)' for each."""
    text = Path(path).read_text()
    lines = text.splitlines()
    node = yaml.compose(text)
    missing: list[str] = []

    def walk(mapping: yaml.MappingNode, prefix: str, inherited: bool) -> None:
        for key, value in mapping.value:
            row = key.start_mark.line
            name = f"{prefix}{key.value}"
            own = _comment(lines[row])
            # a value spanning lines (a literal block, a flow mapping) may carry its comment on its last line
            last = value.end_mark.line - (1 if value.end_mark.column == 0 else 0)
            tail = _comment(lines[last]) if last != row and last < len(lines) else None
            covered = inherited or has_source(own) or has_source(tail) or has_source(_block_above(lines, row))
            if isinstance(value, yaml.MappingNode) and not value.flow_style:
                walk(value, f"{name}.", inherited or has_source(own))
            elif not covered:
                missing.append(f"{name} (line {row + 1})")

    if not isinstance(node, yaml.MappingNode):
        raise ValueError(f"{path}: not a YAML mapping")
    walk(node, "", False)
    return missing


def unsourced_schema_defaults(path: Path | str) -> list[str]:
    """Schema properties with a `default` and no source: their JSON pointer for each."""
    schema = yaml.safe_load(Path(path).read_text())
    missing: list[str] = []

    def says_not_in_paper(node: dict) -> bool:
        description = node.get("description")
        if isinstance(description, str) and NOT_IN_PAPER in description:
            return True
        # {$ref: "#/$defs/resources", default: {}}: the definition speaks for it
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return says_not_in_paper(schema["$defs"][ref.removeprefix("#/$defs/")])
        return False

    def walk(node, pointer: str, covered: bool) -> None:
        if isinstance(node, dict):
            description = node.get("description")
            here = covered or says_not_in_paper(node)
            if "default" in node and not (here or has_source(description)):
                missing.append(pointer or "/")
            for key, child in node.items():
                if key not in ("default", "description", "enum", "const"):
                    walk(child, f"{pointer}/{key}", here)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{pointer}/{i}", covered)

    walk(schema, "", False)
    return missing
