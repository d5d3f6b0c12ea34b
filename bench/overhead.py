"""What Snakemake costs on top of the work: the embedded pipeline on N photos, two ways.

1. ``snakemake`` with the default profile on a library of N photos (copies of the sample
   album's six photos spread over two albums), classic styles;
2. the same stage functions called in one plain Python loop (one process, one core), and the
   same loop spread over the cores with a process pool.

Prints a table: wall seconds of each, and Snakemake / loop. Run from the repository root:

    python bench/overhead.py --photos 20 100 400 --styles cartoon oil_paint
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from i2i.config import load_registry, load_yaml, select_styles, validate_config  # noqa: E402
from i2i.core.files import read_json, write_json  # noqa: E402
from i2i.stages.captions import make_caption  # noqa: E402
from i2i.stages.library.albums import Photo, discover  # noqa: E402
from i2i.stages.metadata.read import read_metadata  # noqa: E402
from i2i.stages.places import locate  # noqa: E402
from i2i.stages.preprocess import preprocess  # noqa: E402
from i2i.stages.publish import publish_to_marker  # noqa: E402
from i2i.stages.stylize import stylize  # noqa: E402
from i2i.stages.watermark import watermark  # noqa: E402

from conftest import copy_workflow  # noqa: E402

log = logging.getLogger("bench.overhead")


def make_library(destination: Path, photos: int) -> Path:
    """``photos`` copies of the sample photos in two albums (names made unique)."""
    sources = sorted(p for p in (REPO / "sample" / "albums").glob("*/*") if p.is_file())
    for number in range(photos):
        source = sources[number % len(sources)]
        album = destination / ("Album A" if number % 2 == 0 else "Album B")
        album.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, album / f"{source.stem}_{number:05d}{source.suffix}")
    return destination


def photo_chain(
    photo: Photo, styles: dict[str, dict[str, Any]], config: dict[str, Any], out: Path
) -> None:
    """Every stage for one photo, in the order the workflow runs them."""
    a, p = photo.album, photo.photo
    ref = f"{a}/{photo.path.name}"
    metadata_path = out / "metadata" / a / f"{p}.json"
    write_json(metadata_path, read_metadata(photo.path, ref))
    metadata = read_json(metadata_path)
    places = locate(metadata, config["places"]["providers"], config["places"])
    write_json(out / "places" / a / f"{p}.json", places)
    caption = make_caption(metadata, places, config["watermark"], config["ollama"])
    write_json(out / "captions" / a / f"{p}.json", caption)
    prepared = out / "preprocessed" / a / f"{p}.webp"
    preprocess(
        photo.path, prepared, config["preprocess"]["long_side"], config["preprocess"]["quality"]
    )
    for name, style in styles.items():
        styled = out / "styled" / a / name / f"{p}.webp"
        stylize(prepared, styled, style)
        final = out / "final" / a / name / f"{p}.webp"
        watermark(
            styled,
            final,
            metadata,
            caption["watermark_text"],
            config["watermark"],
            ref,
            config["publish"]["keep_gps"],
        )
        publish_to_marker(
            final, out / "published" / a / name / f"{p}.json", a, p, name, config["publish"]
        )


def loop(library: Path, styles: Sequence[str], workers: int, out: Path) -> float:
    """Seconds for the plain loop (``workers`` processes; 1 = one plain loop)."""
    config = validate_config(
        load_yaml(REPO / "config.yaml")
        | {
            "albums_dir": str(library),
            "places": {"cache": str(out / "cache.sqlite")},
            "publish": {"target": f"file://{out / 'gallery'}"},
        }
    )
    chosen = select_styles(load_registry(REPO / "styles.yaml"), list(styles))
    photos = discover(library, config["extensions"]).photos
    start = time.perf_counter()
    if workers == 1:
        for photo in photos:
            photo_chain(photo, chosen, config, out)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(
                pool.map(
                    photo_chain,
                    photos,
                    [chosen] * len(photos),
                    [config] * len(photos),
                    [out] * len(photos),
                )
            )
    return time.perf_counter() - start


def job_count(photos: int, styles: int, albums: int) -> int:
    """Jobs of a full run: the inventory, 4 per photo, 3 per photo and style, the per-style
    manifests, per album a catalog, a contact sheet and a gallery page, then the catalog,
    the gallery index, the progress page and ``all``."""
    return 1 + photos * (4 + 3 * styles) + styles + 3 * albums + 4


def workflow(library: Path, styles: Sequence[str], cores: int, workdir: Path) -> float:
    """Seconds for ``snakemake`` with the default profile."""
    copy_workflow(workdir)
    config = [f"albums_dir={library}", f"styles=[{','.join(styles)}]"]
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            str(cores),
            "--quiet",
            "all",
            "--config",
            *config,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[20, 100, 400])
    parser.add_argument(
        "--styles",
        nargs="+",
        default=[
            "cartoon",
            "oil_paint",
            "pencil_sketch",
            "watercolour",
            "detail_enhance",
            "soft_focus",
        ],
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-bench-") as tmp:
            root = Path(tmp)
            library = make_library(root / "library", count)
            albums = sum(1 for album in library.iterdir() if album.is_dir())
            smk = workflow(library, args.styles, args.cores, root / "workflow")
            one = loop(library, args.styles, 1, root / "loop1")
            pool = loop(library, args.styles, args.cores, root / "loopN")
        jobs = job_count(count, len(args.styles), albums)
        rows.append((count, jobs, smk, one, pool))
        sys.stdout.write(
            f"N={count}: snakemake {smk:.1f}s ({jobs} jobs), loop {one:.1f}s, "
            f"pool({args.cores}) {pool:.1f}s\n"
        )
    sys.stdout.write(
        f"\n| photos | styles | jobs | snakemake s | loop s (1 process) | pool s ({args.cores}) "
        "| snakemake / loop | snakemake / pool |\n|---|---|---|---|---|---|---|---|\n"
    )
    for count, jobs, smk, one, pool in rows:
        sys.stdout.write(
            f"| {count} | {len(args.styles)} | {jobs} | {smk:.1f} | {one:.1f} | {pool:.1f} "
            f"| {smk / one:.2f} | {smk / pool:.2f} |\n"
        )


if __name__ == "__main__":
    main()
