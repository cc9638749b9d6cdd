"""Compare two run trees byte by byte (issues: two miniature runs from scratch, and a run killed
and resumed, must give identical results/, paper/ tables and figures, and models/: every model's
weights and card).

Only files that are timing measurements by nature are left out, each named with its reason in
EXCLUDED; everything else under the compared folders must match exactly.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

SCOPE = ["results", "paper/tables", "paper/figures", "models"]

# pattern (relative to the run root, fnmatch: * also crosses /) -> why it cannot be identical
EXCLUDED = {
    "results/cpt/*/training_log.jsonl": "per-step wall seconds, tokens/s and MFU of the CPT runs",
    "results/scaling/*": "Figure 5's throughput measurements (step seconds, tokens/s)",
    "paper/tables/table8.*": "Table 8's Time column: the CPT runs' training wall time",
    "paper/figures/figure5.*": "Figure 5 plots the throughput measurements",
}


@dataclass
class Comparison:
    identical: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.different or self.only_in_a or self.only_in_b)


def _files(root: Path, scope: list[str]) -> set[str]:
    out = set()
    for part in scope:
        base = root / part
        if base.is_file():
            out.add(part)
        elif base.is_dir():
            out.update(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file())
    return out


def _first_difference(a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    if b"\0" not in a[:4096] and b"\0" not in b[:4096]:
        line = a[:i].count(b"\n") + 1
        la = a.splitlines()[line - 1] if line <= len(a.splitlines()) else b""
        lb = b.splitlines()[line - 1] if line <= len(b.splitlines()) else b""
        return f"line {line}: {la[:160].decode(errors='replace')!r} != {lb[:160].decode(errors='replace')!r}"
    return f"byte {i} of {len(a)} / {len(b)}"


def compare_trees(a, b, scope: list[str] | None = None, excluded: dict[str, str] | None = None) -> Comparison:
    a, b = Path(a), Path(b)
    scope = SCOPE if scope is None else scope
    excluded = EXCLUDED if excluded is None else excluded
    fa, fb = _files(a, scope), _files(b, scope)
    result = Comparison()
    for rel in sorted(fa | fb):
        if any(fnmatch.fnmatch(rel, pattern) for pattern in excluded):
            result.excluded.append(rel)
        elif rel not in fb:
            result.only_in_a.append(rel)
        elif rel not in fa:
            result.only_in_b.append(rel)
        else:
            at = _first_differing_byte(a / rel, b / rel)
            if at is None:
                result.identical.append(rel)
            else:
                result.different.append(rel)
                if (a / rel).stat().st_size <= DETAIL_BYTES and (b / rel).stat().st_size <= DETAIL_BYTES:
                    result.details[rel] = _first_difference((a / rel).read_bytes(), (b / rel).read_bytes())
                else:
                    result.details[rel] = f"byte {at} of {(a / rel).stat().st_size} / {(b / rel).stat().st_size}"
    return result


# files up to this size are read whole to name the differing line; larger ones (models/ holds the
# paper's weights, tens of GB a file) are compared in blocks and the first differing byte is named
DETAIL_BYTES = 16 << 20
_BLOCK = 8 << 20


def _first_differing_byte(pa: Path, pb: Path) -> int | None:
    """Offset of the first byte in which two files differ (the shorter one's end when one is a
    prefix of the other), or None when they are identical; read in blocks."""
    with open(pa, "rb") as fa, open(pb, "rb") as fb:
        offset = 0
        while True:
            ba, bb = fa.read(_BLOCK), fb.read(_BLOCK)
            if ba != bb:
                n = min(len(ba), len(bb))
                return offset + next((k for k in range(n) if ba[k] != bb[k]), n)
            if not ba:
                return None
            offset += len(ba)


def render(result: Comparison, a, b) -> str:
    lines = [
        f"compared {a} and {b}: {len(result.identical)} identical, {len(result.different)} different,"
        f" {len(result.only_in_a)} only in the first, {len(result.only_in_b)} only in the second,"
        f" {len(result.excluded)} excluded (timing measurements)",
    ]
    lines += [f"DIFFERENT  {rel}: {result.details[rel]}" for rel in result.different]
    lines += [f"ONLY IN A  {rel}" for rel in result.only_in_a]
    lines += [f"ONLY IN B  {rel}" for rel in result.only_in_b]
    return "\n".join(lines)
