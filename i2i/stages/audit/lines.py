"""The audit as text: the plan of ``i2i publish --dry-run`` and the check of ``--verify``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from i2i.stages.audit.keys import BadMarker, Change


def plan_lines(changes: Sequence[Change], target: str) -> list[str]:
    """The plan as text: one line per image to upload or object left over, then a summary."""
    lines = [
        f"{c.action:<8} {c.key}" + (f"  ({c.detail})" if c.detail else "")
        for c in changes
        if c.action in {"new", "changed", "removed"}
    ]
    counts = {action: 0 for action in ("new", "changed", "unchanged", "removed", "not built")}
    for c in changes:
        counts[c.action] += 1
    summary = ", ".join(f"{n} {action}" for action, n in counts.items())
    lines.append(f"dry run for {target}: {summary}; nothing was written or deleted")
    if counts["removed"]:
        lines.append(
            "removed: no current photo, style or album maps to them (publishing deletes nothing; "
            "with publish.prune: true the next snakemake run deletes them)"
        )
    return lines


def verify_lines(checked: int, bad: Sequence[BadMarker], workdir: Path, removed: bool) -> list[str]:
    """The check as text: one line per problem (a gallery marker has one per file), then a
    summary that counts markers."""
    lines = [f"bad {relative(item.marker, workdir)}: {item.reason}" for item in bad]
    markers = len({item.marker for item in bad})
    summary = f"{checked} marker(s) checked, {checked - markers} good, {markers} bad"
    if bad:
        summary += (
            "; removed them: the next snakemake run publishes what they stand for again"
            if removed
            else "; dry run: kept them"
        )
    return [*lines, summary]


def relative(path: Path, workdir: Path) -> str:
    """``path`` relative to ``workdir`` when it is inside it."""
    try:
        return str(path.relative_to(workdir))
    except ValueError:
        return str(path)
