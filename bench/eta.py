"""The console's ETA on a FLUX-like run: estimate / real time left at 10 % and 50 % of the jobs.

    python bench/eta.py [--photos 20] [--cores 8] [--seed 1]

A stand-in schedule, no Snakemake and no GPU: per photo metadata, places, captions and
preprocess (sub-second), six classic styles (under a second each), two FLUX styles (about 95 s
each, one at a time on the GPU, the first also loading the model) and a watermark per style,
then the catalog and gallery jobs. Ready jobs start in random order on ``--cores``, as the
greedy scheduler picks them. True seconds differ from the plugin's priors (log-normal noise).

Rows: ``before``, the mean rate since the first job (every job alike); ``priors``, weighted by
rule with the priors only (a first run); ``history``, weighted with the durations a previous
run of the same schedule (another seed) left in ``.i2i/durations.json``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "snakemake-logger-plugin-i2i"))

from snakemake_logger_plugin_i2i import Progress
from snakemake_logger_plugin_i2i.durations import Durations

# True mean seconds a job of each rule in the stand-in (the priors are in durations.PRIORS).
TRUE = {
    "metadata": 0.05,
    "places": 0.08,
    "captions": 0.03,
    "preprocess": 0.4,
    "stylize_classic": 0.7,
    "stylize_flux": 95.0,
    "watermark": 0.2,
    "style_manifest": 0.05,
    "album_catalog": 0.1,
    "catalog": 0.3,
    "gallery_album": 0.3,
    "gallery": 0.6,
    "all": 0.0,
}
MODEL_LOAD = 40.0  # the first FLUX job also loads the model
CLASSIC, FLUX = 6, 2
POINTS = (0.1, 0.5)


@dataclass
class Job:
    rule: str
    seconds: float
    needs: list[int] = field(default_factory=list)


def schedule(photos: int, rng: random.Random) -> list[Job]:
    """The stand-in DAG: jobs with their true seconds and the jobs they need."""
    jobs: list[Job] = []

    def add(rule: str, needs: list[int] | None = None, extra: float = 0.0) -> int:
        seconds = TRUE[rule] * rng.lognormvariate(0, 0.3) + extra
        jobs.append(Job(rule, seconds, needs or []))
        return len(jobs) - 1

    watermarks: list[int] = []
    first_flux = True
    for _ in range(photos):
        captions = add("captions", [add("places", [add("metadata")])])
        preprocess = add("preprocess")
        for rule, count in (("stylize_classic", CLASSIC), ("stylize_flux", FLUX)):
            for _ in range(count):
                load = MODEL_LOAD if rule == "stylize_flux" and first_flux else 0.0
                first_flux = first_flux and rule != "stylize_flux"
                styled = add(rule, [preprocess], load)
                watermarks.append(add("watermark", [styled, captions]))
    manifest = add("style_manifest")
    catalog = add("catalog", [add("album_catalog", watermarks), manifest])
    add("all", [add("gallery", [add("gallery_album", watermarks)]), catalog])
    return jobs


def replay(
    jobs: list[Job], cores: int, durations: Durations, rng: random.Random
) -> tuple[dict[float, tuple[float, float]], float, Durations]:
    """Run the schedule through ``Progress``; at each point the weighted and unweighted seconds
    left and the clock; the run's end; the durations it measured."""
    now = [0.0]
    progress = Progress(clock=lambda: now[0], durations=durations, cores=cores)
    progress.run_info({**Counter(job.rule for job in jobs), "total": len(jobs)})
    waiting = {n: set(job.needs) for n, job in enumerate(jobs)}
    needed_by: dict[int, list[int]] = {}
    for n, job in enumerate(jobs):
        for need in job.needs:
            needed_by.setdefault(need, []).append(n)
    ready = [n for n, needs in waiting.items() if not needs]
    running: list[tuple[float, int]] = []
    taken: dict[float, tuple[float, float, float]] = {}
    done = 0
    while ready or running:
        rng.shuffle(ready)
        gpu_busy = any(jobs[n].rule == "stylize_flux" for _, n in running)
        for n in list(ready):
            flux = jobs[n].rule == "stylize_flux"
            if len(running) < cores and not (flux and gpu_busy):
                ready.remove(n)
                gpu_busy = gpu_busy or flux
                heapq.heappush(running, (now[0] + jobs[n].seconds, n))
                progress.job_info(n, jobs[n].rule, None, {"gpu": int(flux)})
        now[0], n = heapq.heappop(running)
        progress.job_finished(n)
        done += 1
        progress.progress(done, len(jobs))
        for after in needed_by.get(n, []):
            waiting[after].discard(n)
            if not waiting[after]:
                ready.append(after)
        for point in POINTS:
            if point not in taken and done >= point * len(jobs):
                taken[point] = (left(progress.left), left(progress.rate_left), now[0])
    end = now[0]
    ratios = {p: (w / (end - t), u / (end - t)) for p, (w, u, t) in taken.items()}
    return ratios, end, progress.durations


def left(estimate: Callable[[], float | None]) -> float:
    value = estimate()
    return float("nan") if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--cores", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    jobs = schedule(args.photos, rng)
    ratios, end, first = replay(jobs, args.cores, Durations(), rng)
    # A second run of the same schedule (new noise) with the first run's durations as history.
    again = schedule(args.photos, rng)
    history = Durations(history=first.merged(), serial=set(first.serial))
    ratios_again, end_again, _ = replay(again, args.cores, history, rng)
    counts = Counter(job.rule for job in jobs)
    write(
        f"{len(jobs)} jobs ({counts['stylize_flux']} FLUX), {args.cores} cores; "
        f"real run {end:.0f} s (second run {end_again:.0f} s)"
    )
    write("ETA / real time left   " + "  ".join(f"at {p:.0%}" for p in POINTS))
    rows = (
        ("before (unweighted)", {p: r[1] for p, r in ratios.items()}),
        ("after, priors", {p: r[0] for p, r in ratios.items()}),
        ("after, history", {p: r[0] for p, r in ratios_again.items()}),
    )
    for name, values in rows:
        write(f"{name:<22} " + "  ".join(f"{values[p]:>6.2f}" for p in POINTS))


def write(line: str) -> None:
    sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
