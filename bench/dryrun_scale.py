"""How ``snakemake -n`` grows with the library: seconds and peak memory of a dry run.

Builds a library of N tiny JPEG photos in albums of 500, runs the inventory checkpoint once
(so the dry run sees every job, as it does on a library that has run before), then times
``snakemake -n`` with the default profile and the given styles. ``--floor`` also
times the same dry run of a one-rule workflow with as many jobs (each job one output file from
one shared input), i.e. what Snakemake itself costs per job; ``--floor-inputs K`` gives each
of its jobs K shared inputs and a log file, the file count of this workflow's jobs (3.6 inputs,
one output and one log on average). Run from the repository root:

    python bench/dryrun_scale.py --photos 1000 10000 50000 --floor 22012 60000 220030
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import copy_workflow  # noqa: E402

ALBUM_SIZE = 500
INVENTORY = "results/inventory.json"
STYLES = ["cartoon", "oil_paint", "pencil_sketch", "watercolour", "detail_enhance", "soft_focus"]


def placeholder_library(root: Path, photos: int) -> Path:
    """``photos`` copies of one 64×64 JPEG in albums of ``ALBUM_SIZE``."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(buffer, "JPEG")
    for number in range(photos):
        album = root / f"Album {number // ALBUM_SIZE:03d}"
        album.mkdir(parents=True, exist_ok=True)
        (album / f"IMG_{number:06d}.jpg").write_bytes(buffer.getvalue())
    return root


def take_inventory(workdir: Path, extra: list[str]) -> None:
    """Run the inventory checkpoint (when the workflow has one), as a first run would."""
    if not (workdir / "rules" / "inventory.smk").exists():
        return
    command = [sys.executable, "-m", "snakemake", INVENTORY, "--quiet", "all", *extra]
    subprocess.run(command, cwd=workdir, check=True, capture_output=True)


ONE_RULE = """
import atexit
import gc

gc.set_threshold(1_000_000, 1_000, 1_000)  # the collector as i2i/run/dag_gc.py sets it
atexit.register(gc.freeze)


rule all:
    input:
        expand("out/{n}.txt", n=range(int(config["jobs"]))),


rule one:
    input:
        [f"in{i}.txt" for i in range(int(config.get("inputs", 1)))],
    output:
        "out/{n}.txt",
    log:
        "logs/{n}.log" if config.get("log") else [],
    shell:
        "cp {input[0]} {output}"
"""


def one_rule_workflow(root: Path, inputs: int = 1) -> Path:
    """A workflow of one rule with ``jobs`` (a config value) jobs, and ``all``; ``inputs``
    shared input files for its jobs."""
    root.mkdir(parents=True)
    (root / "Snakefile").write_text(ONE_RULE, encoding="utf-8")
    for number in range(inputs):
        (root / f"in{number}.txt").touch()
    return root


def dry_run(workdir: Path, extra: list[str], timeout: float) -> tuple[float, float, float]:
    """Seconds, CPU seconds (user + system, steadier than wall time on a busy machine) and peak
    RSS (MiB) of one ``snakemake -n`` in a fresh child process."""
    command = [sys.executable, "-m", "snakemake", "-n", "--quiet", "all", *extra]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=errors)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        if seconds >= timeout:
            raise subprocess.TimeoutExpired(command, timeout)
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(errors.read().decode(errors="replace")[-3000:])
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="*", default=[1000, 10000, 50000])
    parser.add_argument("--styles", nargs="+", default=STYLES)
    parser.add_argument("--floor", type=int, nargs="*", default=[], metavar="JOBS")
    parser.add_argument(
        "--floor-inputs",
        type=int,
        default=1,
        metavar="K",
        help="input files per floor job (and a log file when K > 1): the workflow's job shape",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    sys.stdout.write(
        "| photos | styles | jobs | dry run s | CPU s | peak RSS MiB |\n|---|---|---|---|---|---|\n"
    )
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-scale-") as tmp:
            root = Path(tmp)
            library = placeholder_library(root / "library", count)
            workdir = copy_workflow(root / "workflow")
            albums = -(-count // ALBUM_SIZE)
            styles = len(args.styles)
            jobs = count * (4 + 3 * styles) + styles + 3 * albums + 4
            config = ["--config", f"albums_dir={library}", f"styles=[{','.join(args.styles)}]"]
            take_inventory(workdir, config)
            row = timed_row(workdir, config, args.timeout)
        sys.stdout.write(f"| {count} | {len(args.styles)} | {jobs} | {row} |\n")
        sys.stdout.flush()
    if args.floor:
        sys.stdout.write("\n| one-rule workflow: jobs | dry run s | CPU s | peak RSS MiB |\n")
        sys.stdout.write("|---|---|---|---|\n")
    for jobs in args.floor:
        with tempfile.TemporaryDirectory(prefix="i2i-floor-") as tmp:
            workdir = one_rule_workflow(Path(tmp) / "workflow", args.floor_inputs)
            config = ["--cores", "1", "--config", f"jobs={jobs - 1}"]  # + rule all
            if args.floor_inputs > 1:
                config += [f"inputs={args.floor_inputs}", "log=1"]
            row = timed_row(workdir, config, args.timeout)
        sys.stdout.write(f"| {jobs} | {row} |\n")
        sys.stdout.flush()


def timed_row(workdir: Path, extra: list[str], timeout: float) -> str:
    """``seconds | CPU seconds | MiB`` of a dry run, or a note that it ran past ``timeout``."""
    try:
        seconds, cpu, peak = dry_run(workdir, extra, timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} (stopped) | - | -"
    return f"{seconds:.1f} | {cpu:.1f} | {peak:.0f}"


if __name__ == "__main__":
    main()
