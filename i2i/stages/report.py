"""Progress of a run: images done and pending per stage and style, seconds per image, an ETA.

Counts come from the target files that exist, with one ``stat`` per file: about a second for
10,000 photos × 6 styles, where ``snakemake -n`` first builds 220,000 job objects
(bench/dryrun_scale.py). A missing file is pending, and so is every stage that reads it
(Snakemake reruns what depends on a job it reruns). That is exact for what an interrupted
run left to do and for deleted outputs, since targets are written atomically; a file that
exists but is out of date (changed params, code or input content) still counts as done, and
``snakemake -n`` tells those apart. Timings come from the rules' ``benchmark:`` files where
a rule has them (a resident backend's stylize rule), else from the last line of the jobs' logs,
where :func:`i2i.run.logs.job_log` writes each job's seconds.
"""

from __future__ import annotations

import csv
import glob
import html
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import backends
from i2i.core.joblog import FINISHED
from i2i.core.paths import PHOTO_STAGES, STYLE_STAGES
from i2i.core.quality import UNCHANGED_WARNING
from i2i.stages.library.albums import Photo

_FINISHED = re.compile(re.escape(FINISHED) + r" ([0-9.]+) s$")


@dataclass(frozen=True)
class Row:
    """One line of the summary: a stage (and style), its counts and timings."""

    stage: str
    style: str
    done: int
    pending: int
    mean_seconds: float | None
    serial: bool = False

    @property
    def eta_seconds(self) -> float | None:
        """Seconds of work left on one core (None when nothing has been timed yet)."""
        return None if self.mean_seconds is None else self.pending * self.mean_seconds


def benchmark_seconds(files: Sequence[Path]) -> list[float]:
    """Wall seconds (column ``s``) of each Snakemake benchmark file that can be read."""
    seconds = []
    for path in files:
        try:
            with path.open(encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle, delimiter="\t"))
            seconds.append(float(rows[0]["s"]))
        except (OSError, KeyError, IndexError, ValueError):
            continue
    return seconds


def log_seconds(files: Sequence[Path]) -> list[float]:
    """Seconds from the ``job finished in`` line that ends each successful job's log."""
    seconds = []
    for path in files:
        try:
            last = path.read_text(encoding="utf-8").rstrip().rsplit("\n", 1)[-1]
        except OSError:
            continue
        match = _FINISHED.search(last)
        if match:
            seconds.append(float(match.group(1)))
    return seconds


def stage_seconds(workdir: Path, stage: str, pattern: str) -> list[float]:
    """Per-job seconds of a stage: benchmark files if the rule writes them, else job logs."""
    timings = benchmark_seconds(sorted((workdir / "benchmarks" / stage).glob(pattern + ".tsv")))
    return timings or log_seconds(sorted((workdir / "logs" / stage).glob(pattern + ".log")))


def unchanged_renders(workdir: Path) -> list[Path]:
    """Job logs of styled images that the quality gate found unchanged from their photo."""
    return [
        path
        for path in sorted((workdir / "logs" / "stylize").rglob("*.log"))
        if UNCHANGED_WARNING in path.read_text(encoding="utf-8", errors="replace")
    ]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


# The stages each stage reads: a pending stage makes every stage that reads it pending too,
# since Snakemake reruns whatever depends on a job it reruns.
UPSTREAM = {
    "metadata": (),
    "places": ("metadata",),
    "captions": ("metadata", "places"),
    "preprocess": (),
    "stylize": ("preprocess",),
    "watermark": ("stylize", "metadata", "captions"),
    "publish": ("watermark",),
}


def pending_stages(
    workdir: Path, photo: Photo, styles: Sequence[str]
) -> tuple[set[str], dict[str, set[str]]]:
    """The photo's pending stages, and each style's pending per-style stages.

    A stage is pending when its file is missing or a stage it reads is pending.
    """
    photo_pending: set[str] = set()
    for stage, pattern in PHOTO_STAGES.items():
        missing = not (workdir / pattern.format(album=photo.album, photo=photo.photo)).exists()
        if missing or photo_pending.intersection(UPSTREAM[stage]):
            photo_pending.add(stage)
    per_style: dict[str, set[str]] = {}
    for style in styles:
        pending = set(photo_pending)
        for stage, pattern in STYLE_STAGES.items():
            path = workdir / pattern.format(album=photo.album, photo=photo.photo, style=style)
            if not path.exists() or pending.intersection(UPSTREAM[stage]):
                pending.add(stage)
        per_style[style] = pending - photo_pending
    return photo_pending, per_style


def summarise(
    workdir: Path,
    photos: Sequence[Photo],
    styles: Mapping[str, Mapping[str, Any]],
) -> list[Row]:
    """The summary rows for ``photos`` × ``styles`` under ``workdir``."""
    photo_counts = dict.fromkeys(PHOTO_STAGES, 0)
    style_counts = {(style, stage): 0 for style in styles for stage in STYLE_STAGES}
    for photo in photos:
        photo_pending, per_style = pending_stages(workdir, photo, list(styles))
        for stage in photo_pending:
            photo_counts[stage] += 1
        for style, pending in per_style.items():
            for stage in pending:
                style_counts[(style, stage)] += 1
    rows = []
    for stage, pending in photo_counts.items():
        timings = stage_seconds(workdir, stage, "*/*")
        rows.append(Row(stage, "", len(photos) - pending, pending, _mean(timings)))
    for style, definition in styles.items():
        known = backends.load().get(definition.get("backend", ""))
        serial = known is not None and known.resident
        for stage in STYLE_STAGES:
            pending = style_counts[(style, stage)]
            timings = stage_seconds(workdir, stage, f"*/{glob.escape(style)}/*")
            rows.append(
                Row(
                    stage,
                    style,
                    len(photos) - pending,
                    pending,
                    _mean(timings),
                    serial and stage == "stylize",
                )
            )
    return rows


def eta_seconds(rows: Sequence[Row], cores: int) -> float:
    """Wall seconds left: parallel work spread over ``cores``, GPU work one image at a time."""
    parallel = sum(r.eta_seconds or 0.0 for r in rows if not r.serial)
    serial = sum(r.eta_seconds or 0.0 for r in rows if r.serial)
    return max(parallel / max(1, cores), serial)


def format_duration(seconds: float) -> str:
    """``1h 02m 03s`` style."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_table(rows: Sequence[Row], cores: int) -> str:
    """A plain-text table of the summary with the ETA below it."""
    lines = [f"{'stage':<11} {'style':<22} {'done':>6} {'pending':>8} {'s/image':>8}"]
    for row in rows:
        mean = "-" if row.mean_seconds is None else f"{row.mean_seconds:.2f}"
        lines.append(f"{row.stage:<11} {row.style:<22} {row.done:>6} {row.pending:>8} {mean:>8}")
    done = sum(r.done for r in rows)
    pending = sum(r.pending for r in rows)
    lines.append(f"{'total':<11} {'':<22} {done:>6} {pending:>8}")
    lines.append(f"ETA on {cores} core(s): {format_duration(eta_seconds(rows, cores))}")
    return "\n".join(lines) + "\n"


def format_rejected(rejected: Sequence[Mapping[str, Any]]) -> str:
    """Lines naming each photo the inventory set aside, with its reason."""
    if not rejected:
        return ""
    lines = [f"set aside by the inventory: {len(rejected)} photo(s)"]
    lines += [f"  {r['file']}: {r['reason']}" for r in rejected]
    return "\n".join(lines) + "\n"


def format_export(export: Mapping[str, Any]) -> str:
    """Lines naming the originals missing from the Photos library and the photos it could not
    export (nothing without a Photos export)."""
    lines = []
    missing, errors = export.get("missing", []), export.get("errors", [])
    if missing:
        lines.append(f"originals missing in Photos: {len(missing)} (not downloaded from iCloud?)")
        lines += [f"  {m['file']}" for m in missing]
    if errors:
        lines.append(f"not exported from Photos: {len(errors)}")
        lines += [f"  {e['file']}: {e['error']}" for e in errors]
    return "\n".join(lines) + "\n" if lines else ""


def format_html(rows: Sequence[Row], cores: int, rejected: Sequence[Mapping[str, Any]] = ()) -> str:
    """The summary as an HTML page for the Snakemake report."""
    aside = "".join(
        f"<li>{html.escape(r['file'])}: {html.escape(r['reason'])}</li>" for r in rejected
    )
    aside = f"<h2>Set aside ({len(rejected)})</h2><ul>{aside}</ul>" if rejected else ""
    cells = "".join(
        f"<tr><td>{html.escape(r.stage)}</td><td>{html.escape(r.style)}</td><td>{r.done}</td>"
        f"<td>{r.pending}</td><td>{'' if r.mean_seconds is None else f'{r.mean_seconds:.2f}'}"
        "</td></tr>"
        for r in rows
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>i2i progress</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:right}"
        "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}</style></head><body>"
        "<h1>Progress and timings</h1><table><tr><th>stage</th><th>style</th><th>done</th>"
        f"<th>pending</th><th>seconds per image</th></tr>{cells}</table>"
        f"<p>ETA on {cores} core(s): {format_duration(eta_seconds(rows, cores))}</p>"
        f"{aside}</body></html>\n"
    )
