"""FLUX styles through the workflow against the same renders in a plain loop: the cost per image.

The workflow part runs the ``stylize_flux`` rule for N photos through Snakemake with the
default profile, its FLUX worker loading the model once. The loop part then loads the same
model in this process with the worker's own loading code (``Backend.load``) and renders the
same preprocessed photos one after another. Per image it prints the loop's render time, the
job's wall time (the stylize ``benchmark:`` file), the render time inside the worker and the
client's round trip, both from the job log; their differences are what the workflow adds per
image. The worker's start (import and model load) is paid once, inside one job.
Run from the repository root:

    python bench/flux_workflow.py --tiny --photos 12                  # CPU, tiny random model
    python bench/flux_workflow.py --model black-forest-labs/FLUX.1-Kontext-dev --style ghibli
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from i2i import I2IError  # noqa: E402
from i2i.config import load_registry  # noqa: E402

from conftest import SAMPLE, copy_workflow  # noqa: E402

log = logging.getLogger("bench.flux_workflow")

ALBUM = "bench"
JOB_LOG = re.compile(r"([0-9.]+) s in the worker \(pid \d+\), ([0-9.]+) s round trip")


def make_album(albums: Path, photos: int) -> list[str]:
    """``photos`` copies of the sample photos (cycled) in one album; their photo ids."""
    sources = sorted(p for p in SAMPLE.glob("*/*") if p.is_file())
    album = albums / ALBUM
    album.mkdir(parents=True)
    ids = []
    for number in range(photos):
        source = sources[number % len(sources)]
        ids.append(f"photo_{number:04d}")
        shutil.copy(source, album / f"{ids[-1]}{source.suffix}")
    return ids


def tiny_style(folder: Path, size: int, steps: int) -> tuple[str, dict]:
    """A tiny random model folder and one random LoRA style: the model id and the style."""
    from flux_models import build_pipeline, save_random_lora

    build_pipeline("tiny").save_pretrained(folder / "model")
    lora = save_random_lora(folder / "lora", "bench", seed=1)
    style = {
        "backend": "flux-kontext",
        "description": "random tiny LoRA",
        "lora": {"path": str(lora)},
        "prompt": "Turn this image into the Bench style.",
        "steps": steps,
        "size": size,
    }
    return str(folder / "model"), style


def snakemake(workdir: Path, *args: str) -> float:
    """Wall seconds of one Snakemake run; raises with its output on failure."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - started


def job_seconds(workdir: Path, style: str, photo: str) -> tuple[float, float, float]:
    """The job's wall seconds, the worker's render seconds and the client's round trip."""
    bench = workdir / "benchmarks" / "stylize" / ALBUM / style / f"{photo}.tsv"
    with bench.open(encoding="utf-8") as handle:
        wall = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    job_log = workdir / "logs" / "stylize" / ALBUM / style / f"{photo}.log"
    match = JOB_LOG.search(job_log.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"{job_log}: no worker timing line")
    return wall, float(match.group(1)), float(match.group(2))


def loop_seconds(workdir: Path, flux: dict, style_name: str, style: dict, ids: list[str]) -> tuple:
    """Load seconds and per-image render seconds of the plain loop over the preprocessed photos."""
    from i2i.backends.flux import Backend, quiet_libraries
    from i2i.backends.flux_settings import Settings

    quiet_libraries()
    started = time.perf_counter()
    backend = Backend.load(Settings.from_config(flux))
    load = time.perf_counter() - started
    out = workdir / "loop"
    renders = []
    for photo in ids:
        source = workdir / "results" / "preprocessed" / ALBUM / f"{photo}.webp"
        started = time.perf_counter()
        backend.render(str(source), str(out / f"{photo}.webp"), style_name, style)
        renders.append(time.perf_counter() - started)
    return load, renders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id or local diffusers folder (with --style)")
    source.add_argument("--tiny", action="store_true", help="tiny random model and LoRA (CPU)")
    parser.add_argument("--style", help="flux-kontext style of styles.yaml (with --model)")
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--size", type=int, default=1024, help="long side of the images")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.model and not args.style:
        parser.error("--model needs --style")
    with tempfile.TemporaryDirectory(prefix="i2i-flux-bench-") as tmp:
        root = Path(tmp)
        workdir = copy_workflow(root / "workflow")
        ids = make_album(root / "albums", args.photos)
        if args.tiny:
            model, style = tiny_style(root / "assets", args.size, args.steps)
            style_name = "bench"
        else:
            model, style_name = args.model, args.style
            style = load_registry(workdir / "styles.yaml")[style_name]
            style = {**style, "steps": args.steps, "size": args.size}
        flux = {"model": model, "dtype": args.dtype, "offload": args.offload}
        (workdir / "bench_styles.yaml").write_text(
            yaml.safe_dump({"styles": {style_name: style}}), encoding="utf-8"
        )
        config = {
            "albums_dir": str(root / "albums"),
            "styles_file": "bench_styles.yaml",
            "styles": [style_name],
            "preprocess": {"long_side": args.size},
            "flux": flux,
        }
        (workdir / "bench_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        common = ["--configfile", "bench_config.yaml", "--cores", "2"]
        preprocessed = [f"results/preprocessed/{ALBUM}/{p}.webp" for p in ids]
        styled = [f"results/styled/{ALBUM}/{style_name}/{p}.webp" for p in ids]
        snakemake(workdir, *common, *preprocessed)
        run_wall = snakemake(workdir, *common, *styled)
        jobs = [job_seconds(workdir, style_name, p) for p in ids]
        try:
            load, renders = loop_seconds(workdir, flux, style_name, style, ids)
        except I2IError as exc:
            log.error("%s", exc)
            return 1
    report(args, jobs, run_wall, load, renders)
    return 0


def report(
    args: argparse.Namespace, jobs: list, run_wall: float, load: float, renders: list
) -> None:
    """One row per image, then medians: the job that started the worker waited for the model
    load inside its round trip, and a median leaves that one job out of the per-image cost."""
    lines = [
        f"model: {args.model or 'tiny random'}  {args.size} px, {args.steps} steps, "
        f"{args.photos} photos",
        "",
        "| image | loop render s | job wall s | worker render s | round trip s |",
        "|---|---|---|---|---|",
    ]
    for number, (render, (wall, worker, trip)) in enumerate(zip(renders, jobs, strict=True)):
        lines.append(f"| {number + 1} | {render:.3f} | {wall:.3f} | {worker:.3f} | {trip:.3f} |")
    median = statistics.median
    loop = median(renders)
    wall = median(j[0] for j in jobs)
    socket = median(j[2] - j[1] for j in jobs)
    job = median(j[0] - j[2] for j in jobs)
    start = max(j[2] - j[1] for j in jobs)
    lines += [
        "",
        f"loop: model load {load:.2f} s; median render {loop:.3f} s/image",
        f"workflow: {run_wall:.1f} s wall for {len(jobs)} jobs; worker start and model load "
        f"{start:.2f} s (inside one job); median job {wall:.3f} s",
        f"per image (medians): job wall - loop render {1000 * (wall - loop):.0f} ms; "
        f"worker request beyond the pipeline call {1000 * socket:.0f} ms (image read, WebP "
        f"write, socket, stats file); Snakemake job beyond the request {1000 * job:.0f} ms",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
