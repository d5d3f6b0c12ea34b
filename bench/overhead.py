"""What Snakemake costs on top of the work: the embedded pipeline on N photos, two ways.

1. ``snakemake`` with the default profile on a library of N photos (copies of the sample
   album's six photos spread over two albums), classic styles;
2. the same stage functions, making the same outputs, called in one plain Python loop (one
   process, one core), and spread over the cores with a process pool: each photo's chain
   (check, metadata, places, caption, preprocess, then per style stylize, watermark, publish),
   then each album's catalog, contact sheet and gallery page (one task per album, as the
   workflow's album rules), then the master catalog, the style manifests and the gallery index.

Prints a table: wall seconds of each, the Snakemake process's own CPU per job, and Snakemake /
loop and / pool. ``--floor`` also times Snakemake with the default profile on a workflow of as
many jobs that do nothing (chains of three rules, each job writing one small file): what
Snakemake itself costs per job, the least any per-image design can add to the work. Run from
the repository root:

    python bench/overhead.py --photos 20 100 400 --styles cartoon oil_paint --floor
"""

from __future__ import annotations

import argparse
import contextlib
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

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from i2i.captions import make_caption  # noqa: E402
from i2i.catalog import album_catalog, master_catalog, photo_entry, style_manifest  # noqa: E402
from i2i.config import load_registry, load_yaml, select_styles, validate_config  # noqa: E402
from i2i.contact_sheet import contact_sheet  # noqa: E402
from i2i.export import Photo, discover  # noqa: E402
from i2i.files import read_json, write_json  # noqa: E402
from i2i.gallery import build_album, build_index, gallery_settings, planned_keys  # noqa: E402
from i2i.inventory import vet  # noqa: E402
from i2i.metadata import read_metadata  # noqa: E402
from i2i.places import locate  # noqa: E402
from i2i.preprocess import preprocess  # noqa: E402
from i2i.provenance import gallery_album_settings  # noqa: E402
from i2i.publish import parse_target, publish_to_marker  # noqa: E402
from i2i.stylize import stylize  # noqa: E402
from i2i.watermark import watermark  # noqa: E402

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
    problem = vet(photo.path)
    if problem:
        raise RuntimeError(f"{ref}: {problem}")
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


def album_outputs(
    album: str, photos: Sequence[str], styles: Sequence[str], config: dict[str, Any], out: Path
) -> None:
    """What the album rules make of one album: its catalog, contact sheet and gallery page."""
    entries = [
        photo_entry(
            album,
            p,
            read_json(out / "metadata" / album / f"{p}.json"),
            read_json(out / "places" / album / f"{p}.json"),
            read_json(out / "captions" / album / f"{p}.json"),
        )
        for p in photos
    ]
    markers = [
        read_json(out / "published" / album / s / f"{p}.json") for p in photos for s in styles
    ]
    catalog = album_catalog(album, entries, markers, list(styles))
    write_json(out / "catalog" / "albums" / f"{album}.json", catalog)
    rows = [
        (
            p,
            [
                out / "preprocessed" / album / f"{p}.webp",
                *[out / "final" / album / s / f"{p}.webp" for s in styles],
            ],
        )
        for p in photos
    ]
    contact_sheet(rows, ["original", *styles], out / "report" / f"{album}.jpg")
    target = parse_target(config["publish"]["target"])
    originals = {p: out / "preprocessed" / album / f"{p}.webp" for p in photos}
    build_album(
        catalog,
        Path(target.location),
        originals,
        gallery_settings(gallery_album_settings(config, album)),
        prefix=target.prefix,
    )


def library_outputs(
    photos: Sequence[Photo], styles: Sequence[str], config: dict[str, Any], out: Path
) -> None:
    """What the library-wide rules make: the master catalog, style manifests, gallery index."""
    albums = sorted({p.album for p in photos})
    catalogs = [read_json(out / "catalog" / "albums" / f"{a}.json") for a in albums]
    write_json(out / "catalog" / "master.json", master_catalog(catalogs, list(styles)))
    for style in styles:
        markers = [
            read_json(out / "published" / p.album / style / f"{p.photo}.json") for p in photos
        ]
        write_json(out / "catalog" / "styles" / f"{style}.json", style_manifest(style, markers))
    target = parse_target(config["publish"]["target"])
    keys = planned_keys(
        [{"album": p.album, "photo": p.photo} for p in photos], list(styles), config["publish"]
    )
    build_index(keys, Path(target.location), gallery_settings(config), target.prefix)


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
    names = list(chosen)
    start = time.perf_counter()
    photos = discover(library, config["extensions"]).photos
    by_album: dict[str, list[str]] = {}
    for photo in photos:
        by_album.setdefault(photo.album, []).append(photo.photo)
    if workers == 1:
        for photo in photos:
            photo_chain(photo, chosen, config, out)
        for album, members in by_album.items():
            album_outputs(album, members, names, config, out)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(photo_chain, photos, *[[x] * len(photos) for x in (chosen, config, out)]))
            albums = list(by_album)
            list(
                pool.map(
                    album_outputs,
                    albums,
                    [by_album[a] for a in albums],
                    *[[x] * len(albums) for x in (names, config, out)],
                )
            )
    library_outputs(photos, names, config, out)
    return time.perf_counter() - start


def job_count(photos: int, styles: int, albums: int) -> int:
    """Jobs of a full run: the inventory, 4 per photo, 3 per photo and style, the per-style
    manifests, per album a catalog, a contact sheet and a gallery page, then the catalog,
    the gallery index, the progress page and ``all``."""
    return 1 + photos * (4 + 3 * styles) + styles + 3 * albums + 4


def workflow(
    library: Path, styles: Sequence[str], cores: int, workdir: Path, extra: Sequence[str] = ()
) -> tuple[float, float]:
    """Wall seconds of ``snakemake`` with the default profile, and the CPU seconds of the
    Snakemake process itself (its scheduling; the image work is in its worker processes)."""
    copy_workflow(workdir)
    config = [f"albums_dir={library}", f"styles=[{','.join(styles)}]"]
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra, "--quiet", "all"]
    return timed([*command, "--config", *config], workdir)


NO_OP_WORKFLOW = """
CHAINS = int(config["chains"])


rule all:
    input:
        expand("out/c/{i}.txt", i=range(CHAINS)),


rule a:
    output:
        "out/a/{i}.txt",
    run:
        Path(output[0]).write_text("a")


rule b:
    input:
        "out/a/{i}.txt",
    output:
        "out/b/{i}.txt",
    run:
        Path(output[0]).write_text("b")


rule c:
    input:
        "out/b/{i}.txt",
    output:
        "out/c/{i}.txt",
    run:
        Path(output[0]).write_text("c")
"""


def floor(jobs: int, cores: int, workdir: Path) -> tuple[float, float]:
    """Wall and Snakemake-process CPU seconds of ``jobs`` no-op jobs with the default profile."""
    workdir.mkdir(parents=True)
    (workdir / "Snakefile").write_text("from pathlib import Path\n" + NO_OP_WORKFLOW)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        "--cores",
        str(cores),
        "--quiet",
        "all",
        "--config",
        f"chains={max(1, (jobs - 1) // 3)}",
    ]
    return timed(command, workdir)


def timed(command: Sequence[str], workdir: Path) -> tuple[float, float]:
    """Wall seconds of ``command`` and the CPU seconds of its own process."""
    errors = workdir / "bench-stderr.txt"
    start = time.perf_counter()
    with errors.open("w") as stderr:
        process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=stderr)
        watched = psutil.Process(process.pid)
        cpu = 0.0
        while process.poll() is None:
            with contextlib.suppress(psutil.Error):
                times = watched.cpu_times()
                cpu = times.user + times.system
            time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(errors.read_text()[-3000:])
    return seconds, cpu


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
    parser.add_argument("--floor", action="store_true", help="also time no-op jobs")
    parser.add_argument(
        "--snakemake-args",
        default="",
        help='more arguments for snakemake, e.g. "--max-jobs-per-timespan=100/1s"',
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-bench-") as tmp:
            root = Path(tmp)
            library = make_library(root / "library", count)
            albums = sum(1 for album in library.iterdir() if album.is_dir())
            smk, smk_cpu = workflow(
                library, args.styles, args.cores, root / "workflow", args.snakemake_args.split()
            )
            one = loop(library, args.styles, 1, root / "loop1")
            pool = loop(library, args.styles, args.cores, root / "loopN")
            jobs = job_count(count, len(args.styles), albums)
            nothing = floor(jobs, args.cores, root / "floor") if args.floor else None
        rows.append((count, jobs, smk, smk_cpu, one, pool))
        if nothing:
            sys.stdout.write(
                f"N={count}: {jobs} no-op jobs through snakemake: {nothing[0]:.1f}s, "
                f"its own CPU {nothing[1]:.1f}s ({1000 * nothing[1] / jobs:.1f} ms/job)\n"
            )
        sys.stdout.write(
            f"N={count}: snakemake {smk:.1f}s ({jobs} jobs, its own CPU {smk_cpu:.1f}s), "
            f"loop {one:.1f}s, pool({args.cores}) {pool:.1f}s\n"
        )
    sys.stdout.write(
        f"\n| photos | styles | jobs | snakemake s | its CPU ms/job | loop s (1 process) "
        f"| pool s ({args.cores}) | snakemake / loop | snakemake / pool |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    for count, jobs, smk, smk_cpu, one, pool in rows:
        sys.stdout.write(
            f"| {count} | {len(args.styles)} | {jobs} | {smk:.1f} | {1000 * smk_cpu / jobs:.1f} "
            f"| {one:.1f} | {pool:.1f} | {smk / one:.2f} | {smk / pool:.2f} |\n"
        )


if __name__ == "__main__":
    main()
