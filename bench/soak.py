"""A soak: a library of many small photos through the whole workflow, killed at random points.

Builds a library of ``--photos`` small, distinct JPEGs (the sample's photos scaled to 160 px,
each with its number drawn in, in albums of 100), runs the workflow on it once uninterrupted
(the reference), then on a second copy starts it ``--kills`` times and sends SIGKILL to the
run's process group at a random moment of each start (after the reference's start-up, its
time to its first metadata record, plus a uniform share of up to twice its work over the
kills, so that every kill lands in work left), and finally runs it to the end. Passes when the
final run exits 0, a dry run has nothing to do, no temp file is left, and every per-photo
output (metadata, places, captions, preprocessed, styled, final) is byte-identical to the
reference's. Prints, for the reference
run: wall time, peak memory (RSS) of the Snakemake process, jobs and jobs per second; for the
soak: each kill's moment and finals made so far, then the verdict. Exit status 1 on failure.
Outside CI (tests/test_long_runs.py is its small version). From the repository root:

    python bench/soak.py --photos 2000 --kills 10 --seed 1
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from i2i.run.runcontrol import is_temp_name  # noqa: E402

from conftest import SCONTROL_STUB, copy_workflow, stage_outputs  # noqa: E402

PER_ALBUM = 100
CONFIG = ["--config", "albums_dir=library", "styles=[cartoon]"]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def make_library(folder: Path, photos: int) -> None:
    """``photos`` distinct small JPEGs in albums of ``PER_ALBUM``."""
    sources = sorted(
        p for p in (REPO / "sample" / "albums").glob("*/*") if p.suffix.lower() == ".jpg"
    )
    bases = []
    for source in sources:
        with Image.open(source) as image:
            base = image.convert("RGB")
            base.thumbnail((160, 160))
            bases.append(base)
    for number in range(photos):
        image = bases[number % len(bases)].copy()
        ImageDraw.Draw(image).text((4, 4), str(number), fill=(255, 255, 0))
        album = folder / f"Album {number // PER_ALBUM:03d}"
        album.mkdir(parents=True, exist_ok=True)
        image.save(album / f"photo_{number:05d}.jpg", quality=90)


def workflow(destination: Path, library: Path) -> Path:
    workdir = copy_workflow(destination)
    shutil.copytree(library, workdir / "library")
    return workdir


def no_slurm_wait(folder: Path) -> None:
    """Where Slurm's clients are installed and no controller runs, every Snakemake start waits
    10 s for ``scontrol show config`` (tests/conftest.py): the same stand-in here."""
    real = shutil.which("scontrol")
    if real is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scontrol").write_text(SCONTROL_STUB.format(real=real), encoding="utf-8")
    (folder / "scontrol").chmod(0o755)
    os.environ["PATH"] = os.pathsep.join([str(folder), os.environ["PATH"]])


def start(workdir: Path) -> subprocess.Popen:
    with (workdir / "run.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", str(os.cpu_count()), *CONFIG],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"},
        )


def watch(
    process: subprocess.Popen, until: float | None = None, first: Path | None = None
) -> tuple[int, float | None]:
    """Wait for ``process`` (at most until the monotonic time ``until``): its peak RSS in
    bytes, sampled every 0.2 s, and when a file first stood under ``first`` (monotonic)."""
    peak, seen = 0, None
    handle = psutil.Process(process.pid)
    while process.poll() is None and (until is None or time.monotonic() < until):
        try:
            peak = max(peak, handle.memory_info().rss)
        except psutil.Error:
            break
        if first is not None and seen is None and any(first.rglob("*.json")):
            seen = time.monotonic()
        time.sleep(0.2)
    return peak, seen


def jobs_done(workdir: Path) -> int:
    logs = sorted((workdir / ".snakemake" / "log").glob("*.log"))
    return len(re.findall(r"^Finished jobid", logs[-1].read_text(errors="replace"), re.M))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="i2i-soak-"))
    no_slurm_wait(root / "bin")
    try:
        make_library(root / "library", args.photos)
        reference = workflow(root / "reference", root / "library")
        began = time.monotonic()
        process = start(reference)
        peak, seen = watch(process, first=reference / "results" / "metadata")
        wall = time.monotonic() - began
        startup = (seen or began) - began
        if process.returncode != 0:
            say(f"reference run failed ({process.returncode}): see {reference / 'run.log'}")
            return 1
        jobs = jobs_done(reference)
        say(
            f"reference: {args.photos} photos, {jobs} jobs in {wall:.0f} s "
            f"({jobs / wall:.1f} jobs/s), Snakemake peak RSS {peak / 2**20:.0f} MiB, "
            f"{os.cpu_count()} cores; {startup:.0f} s to its first metadata record"
        )
        expected = stage_outputs(reference)

        soak = workflow(root / "soak", root / "library")
        began = time.monotonic()
        for kill in range(args.kills):
            moment = startup + rng.uniform(0.0, 2 * (wall - startup) / args.kills)
            process = start(soak)
            watch(process, until=time.monotonic() + moment)
            ended = process.poll() is not None
            if not ended:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            finals = len(list((soak / "results" / "final").rglob("*.webp")))
            say(
                f"  start {kill + 1}: SIGKILL at {moment:5.1f} s"
                f"{' (the run had ended)' if ended else ''}, {finals} finals so far"
            )
        process = start(soak)
        watch(process)
        total = time.monotonic() - began
        errors = []
        if process.returncode != 0:
            errors.append(f"the final run exited {process.returncode}")
        dry = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", *CONFIG],
            cwd=soak,
            capture_output=True,
            text=True,
        )
        if "Nothing to be done" not in dry.stdout:
            errors.append("a dry run after it still has work")
        left = [p for p in (soak / "results").rglob("*") if is_temp_name(p.name)]
        if left:
            errors.append(f"{len(left)} temp files left, e.g. {left[0]}")
        found = stage_outputs(soak)
        differ = sorted(
            k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)
        )
        if differ:
            errors.append(f"{len(differ)} of {len(expected)} outputs differ, e.g. {differ[0]}")
        say(
            f"soak: {args.kills} kills, then a run to the end: {total:.0f} s in all; "
            f"{len(found)} per-photo outputs compared: "
            + ("byte-identical" if not errors else "FAILED: " + "; ".join(errors))
        )
        return 1 if errors else 0
    finally:
        if args.keep:
            say(f"work folders in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
