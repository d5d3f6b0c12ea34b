"""Does one Snakemake process keep many cores busy? A many-core run emulated on few cores.

``bench/overhead.py`` measures on the cores this machine has. On a host with many, the image
work spreads over the cores while one Snakemake process starts and finishes every job, so
its own CPU per job (scheduling, job records, logs, dispatch) sets a ceiling on the jobs it
starts a second. This bench measures that ceiling here: every per-image job's work is
replayed (``bench/replay.py``) as a wait as long as that stage took in one plain process plus
a copy of the file it made, on both sides:

1. one plain process makes the reference outputs and times each stage (the work, in core
   seconds);
2. ``snakemake --cores N`` with the default profile, the image jobs replayed in its N worker
   processes;
3. a process pool of N workers, each photo's chain replayed (``overhead.photo_chain``), then
   the album and library outputs made for real, as in ``overhead.py``.

Waits take no CPU, so on a 2-core machine the Snakemake process gets about a core to itself,
as it would on a 16-core host. Not replayed, on both sides: checking the photos, publishing,
and the aggregating jobs (catalogs, contact sheets, gallery pages, progress page), which do
their real work on this machine's cores; on the Snakemake side each aggregate is a Python
process of its own (``script:``).

Prints, per photo count and core count: the work (one process), the wall seconds of each side, the
Snakemake process's own CPU per job; the image jobs a second Snakemake finished (from the
first image job's end to the last's) against what the cores allow (cores / the mean image
job's seconds); and, as Snakemake's own ceiling, the jobs a second of a run of as many no-op
jobs with the same scheduler changes (``overhead.floor``). Run from the repository root
(``--long-side 4032``: photos of a 12 MP camera's size instead of the sample's):

    python bench/manycore.py --photos 100 --cores 4 8 16
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead
import replay

from conftest import with_sitecustomize

IMAGE_RULE_LOGS = (
    "metadata",
    "places",
    "captions",
    "preprocess",
    "stylize",
    "watermark",
    "publish",
)


def image_rate(workdir: Path) -> float:
    """Image jobs a second in a finished run, from the first image job's end to the last's
    (each job's log is written when it ends; per-image logs lie in album folders, so a rule's
    run-wide log, publish's prune.log, is not counted)."""
    ends = sorted(
        p.stat().st_mtime
        for rule in IMAGE_RULE_LOGS
        for p in (workdir / "logs" / rule).glob("*/**/*.log")
    )
    return (len(ends) - 1) / (ends[-1] - ends[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    overhead.library_arguments(parser, [100])
    parser.add_argument("--cores", type=int, nargs="+", default=[4, 8, 16])
    args = overhead.parse_library_arguments(parser)
    rows = []
    same = True
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-manycore-") as tmp:
            root = Path(tmp)
            library, jobs = overhead.bench_library(root, count, args)
            reference = root / "reference"
            times = overhead.StageTimes()
            work = overhead.loop(library, args.styles, 1, reference, times)
            seconds = times.means()
            settings = root / "replay.json"
            replay.write_settings(settings, reference, seconds)
            sys.stdout.write(
                f"N={count}: one process {work:.1f}s; seconds a job: "
                + ", ".join(f"{s} {1000 * v:.1f} ms" for s, v in seconds.items())
                + "\n"
            )
            environment = {
                **os.environ,
                "PYTHONPATH": with_sitecustomize(root / "hook", replay.sitecustomize_source()),
                replay.ENVIRONMENT: str(settings),
            }
            for cores in args.cores:
                workdir = root / f"workflow-{cores}"
                smk, cpu = overhead.workflow(
                    library,
                    args.styles,
                    cores,
                    workdir,
                    args.snakemake_args.split(),
                    environment,
                )
                out = root / f"pool-{cores}"
                pool = overhead.loop(
                    library, args.styles, cores, out, replay.Replay(reference, seconds, out)
                )
                same = overhead.compare_outputs(count, jobs, workdir, [out]) and same
                ran, floor_seconds, _ = overhead.floor(
                    jobs, cores, root / f"floor-{cores}", scheduler_fixes=True
                )
                allowed = cores / times.mean()
                rows.append(
                    (
                        count,
                        jobs,
                        cores,
                        work,
                        smk,
                        cpu,
                        pool,
                        ran / floor_seconds,
                        image_rate(workdir),
                        allowed,
                    )
                )
                sys.stdout.write(
                    f"N={count} cores={cores}: snakemake {smk:.1f}s (its own CPU {cpu:.1f}s), "
                    f"pool {pool:.1f}s, {ran} no-op jobs {floor_seconds:.1f}s\n"
                )
                sys.stdout.flush()
    sys.stdout.write(
        "\n| photos | jobs | cores | work s (1 process) | work / cores s | snakemake s "
        "| its CPU ms/job | pool s | snakemake / pool | image jobs/s: snakemake "
        "| the cores allow | no-op floor jobs/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for count, jobs, cores, work, smk, cpu, pool, floor_rate, images, allowed in rows:
        sys.stdout.write(
            f"| {count} | {jobs} | {cores} | {work:.1f} | {work / cores:.1f} | {smk:.1f} "
            f"| {1000 * cpu / jobs:.1f} | {pool:.1f} | {smk / pool:.2f} | {images:.0f} "
            f"| {allowed:.0f} | {floor_rate:.0f} |\n"
        )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
