"""What Snakemake costs on top of the work: the embedded pipeline on N photos, two ways.

1. ``snakemake`` with the default profile on a library of N photos (copies of the sample
   album's photos spread over two albums, or its JPEGs scaled to ``--long-side``), classic styles;
2. the same stage functions, making the same outputs, called in one plain Python loop (one
   process, one core), and spread over the cores with a process pool: each photo's chain
   (check, metadata, places, caption, preprocess, then per style stylize, watermark, publish),
   then each album's catalog, contact sheet and gallery page (one task per album, as the
   workflow's album rules), then the inventory record, the master catalog, the style
   manifests, the gallery index and the progress page.

Each side writes its files under its own folder at the paths the workflow uses
(``i2i.core.paths``). After each size the files under ``results/`` are compared and the
workflow's jobs counted (one log each); a file only one side wrote, or a job count other than
the table's, is listed on stderr and the run exits with status 1 after the table.

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
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from i2i import backends  # noqa: E402
from i2i.config import load_registry, load_yaml, select_styles, validate_config  # noqa: E402
from i2i.core import paths  # noqa: E402
from i2i.core.files import read_json, write_bytes, write_json  # noqa: E402
from i2i.run.provenance import (  # noqa: E402
    gallery_album_settings,
    output_settings,
    style_settings,
)
from i2i.stages.captions import make_caption  # noqa: E402
from i2i.stages.catalog import (  # noqa: E402
    album_catalog,
    master_catalog,
    photo_entry,
    style_manifest,
)
from i2i.stages.contact_sheet import contact_sheet  # noqa: E402
from i2i.stages.gallery.build import build_album, build_index  # noqa: E402
from i2i.stages.gallery.keys import gallery_settings, planned_keys  # noqa: E402
from i2i.stages.library.albums import Photo, discover  # noqa: E402
from i2i.stages.library.inventory import Verdict, inventory_record, source_ref, vet  # noqa: E402
from i2i.stages.metadata.read import read_metadata  # noqa: E402
from i2i.stages.places import locate  # noqa: E402
from i2i.stages.preprocess import preprocess  # noqa: E402
from i2i.stages.publish import publish_to_marker  # noqa: E402
from i2i.stages.report import format_html, summarise  # noqa: E402
from i2i.stages.stylize import stylize  # noqa: E402
from i2i.stages.watermark import watermark  # noqa: E402
from i2i.targets import target_for  # noqa: E402

from conftest import copy_workflow  # noqa: E402

log = logging.getLogger("bench.overhead")

# The classic styles, all six.
STYLES = ["cartoon", "oil_paint", "pencil_sketch", "watercolour", "detail_enhance", "soft_focus"]


def make_library(destination: Path, photos: int, long_side: int = 0) -> Path:
    """``photos`` copies of the sample photos in two albums (names made unique); with
    ``long_side``, of its JPEGs scaled to that long side instead (:func:`scaled_sources`)."""
    sample = sorted(p for p in (REPO / "sample" / "albums").glob("*/*") if p.is_file())
    sources = (
        scaled_sources(sample, destination.parent / "sources", long_side) if long_side else sample
    )
    for number in range(photos):
        source = sources[number % len(sources)]
        album = destination / ("Album A" if number % 2 == 0 else "Album B")
        album.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, album / f"{source.stem}_{number:05d}{source.suffix}")
    return destination


def scaled_sources(sample: Sequence[Path], folder: Path, long_side: int) -> list[Path]:
    """The sample's JPEGs scaled to ``long_side`` as a camera's JPEGs are (quality 90, their
    EXIF kept), with a little noise so that they compress like photos, not like upscales."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number, source in enumerate(p for p in sample if p.suffix.lower() == ".jpg"):
        with Image.open(source) as image:
            scale = long_side / max(image.size)
            size = (round(image.width * scale), round(image.height * scale))
            pixels = np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS))
            noise = np.random.default_rng(number).integers(-12, 13, pixels.shape)
            scaled = Image.fromarray((pixels + noise).clip(0, 255).astype(np.uint8))
            target = folder / source.name
            scaled.save(target, quality=90, exif=image.info.get("exif", b""))
        made.append(target)
    return made


def at(out: Path, pattern: str, album: str = "", photo: str = "", style: str = "") -> Path:
    """The workflow's path ``pattern`` (``i2i.core.paths``) filled in, under ``out``."""
    return out / paths.path(pattern, album, photo, style)


class Step(Protocol):
    """How ``photo_chain`` does one stage: ``make()`` writes ``output``."""

    def __call__(self, stage: str, output: Path, make: Callable[[], object]) -> None: ...


def do_step(stage: str, output: Path, make: Callable[[], object]) -> None:
    """Do the stage."""
    make()


@dataclass
class StageTimes:
    """A step that does each stage and adds up its seconds (in the process that calls it)."""

    seconds: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, stage: str, output: Path, make: Callable[[], object]) -> None:
        start = time.perf_counter()
        make()
        self.seconds[stage] += time.perf_counter() - start
        self.calls[stage] += 1

    def means(self) -> dict[str, float]:
        """Mean seconds of a stage's call, by stage."""
        return {stage: self.seconds[stage] / n for stage, n in self.calls.items()}

    def mean(self) -> float:
        """Mean seconds of a call, all stages together."""
        return sum(self.seconds.values()) / sum(self.calls.values())


def photo_chain(
    photo: Photo,
    styles: dict[str, dict[str, Any]],
    config: dict[str, Any],
    out: Path,
    step: Step = do_step,
) -> Verdict:
    """Every stage for one photo, in the order the workflow runs them, with the arguments its
    jobs pass (``i2i.run.jobs``), each through ``step``; the photo's inventory verdict."""
    a, p = photo.album, photo.photo
    ref = source_ref(photo)
    problem = vet(photo.path)
    if problem:
        raise RuntimeError(f"{ref}: {problem}")
    backends.load(config["style_backends"])
    metadata = at(out, paths.METADATA, a, p)
    step("metadata", metadata, lambda: write_json(metadata, read_metadata(photo.path, ref, None)))
    places = at(out, paths.PLACES, a, p)
    settings = config["places"]
    step(
        "places",
        places,
        lambda: write_json(places, locate(read_json(metadata), settings["providers"], settings)),
    )
    caption = at(out, paths.CAPTIONS, a, p)
    step(
        "captions",
        caption,
        lambda: write_json(
            caption,
            make_caption(
                read_json(metadata),
                read_json(places),
                config["watermark"],
                config["ollama"],
                out / "cache" / "captions",
            ),
        ),
    )
    prepared = at(out, paths.PREPROCESSED, a, p)
    step(
        "preprocess",
        prepared,
        lambda: preprocess(
            photo.path,
            prepared,
            config["preprocess"]["long_side"],
            config["preprocess"]["quality"],
        ),
    )
    for name, style in styles.items():
        styled = at(out, paths.STYLED, a, p, name)
        step(
            "stylize",
            styled,
            lambda styled=styled, style=style, name=name: stylize(
                prepared, styled, style, 1, name, f"{a}/{p}"
            ),
        )
        final = at(out, paths.FINAL, a, p, name)
        step(
            "watermark",
            final,
            lambda styled=styled, final=final: watermark(
                styled,
                final,
                read_json(metadata),
                read_json(caption)["watermark_text"],
                config["watermark"],
                keep_gps=config["publish"]["keep_gps"],
            ),
        )
        marker = at(out, paths.PUBLISHED, a, p, name)
        step(
            "publish",
            marker,
            lambda final=final, marker=marker, name=name: publish_to_marker(
                final, marker, a, p, name, config["publish"]
            ),
        )
    return Verdict(a, p, ref, None)


def album_outputs(
    album: str, photos: Sequence[str], styles: Sequence[str], config: dict[str, Any], out: Path
) -> None:
    """What the album rules make of one album: its catalog, contact sheet and gallery page."""
    entries = [
        photo_entry(
            album,
            p,
            read_json(at(out, paths.METADATA, album, p)),
            read_json(at(out, paths.PLACES, album, p)),
            read_json(at(out, paths.CAPTIONS, album, p)),
        )
        for p in photos
    ]
    markers = [read_json(at(out, paths.PUBLISHED, album, p, s)) for p in photos for s in styles]
    catalog = album_catalog(album, entries, markers, list(styles))
    write_json(at(out, paths.ALBUM_CATALOG, album), catalog)
    rows = [
        (
            p,
            [
                at(out, paths.PREPROCESSED, album, p),
                *[at(out, paths.FINAL, album, p, s) for s in styles],
            ],
        )
        for p in photos
    ]
    contact_sheet(rows, ["original", *styles], at(out, paths.CONTACT_SHEET, album))
    # A file:// target: the gallery is built in its folder, nothing is uploaded.
    target = target_for(config["publish"]["target"], config["publish"])
    root = Path(str(target.folder))
    originals = {p: at(out, paths.PREPROCESSED, album, p) for p in photos}
    built = build_album(
        catalog,
        root,
        originals,
        gallery_settings(gallery_album_settings(config, album)),
        prefix=target.prefix,
        sources={},
    )
    write_json(at(out, paths.GALLERY_ALBUM, album), {"root": str(root), **built})


def library_outputs(
    photos: Sequence[Photo],
    verdicts: Sequence[Verdict],
    styles: dict[str, dict[str, Any]],
    config: dict[str, Any],
    out: Path,
) -> None:
    """What the library-wide rules make: the inventory record, the master catalog, the style
    manifests, the gallery index and the progress page."""
    names = list(styles)
    record = inventory_record(verdicts)
    write_json(at(out, paths.INVENTORY), record)
    albums = sorted({p.album for p in photos})
    catalogs = [read_json(at(out, paths.ALBUM_CATALOG, a)) for a in albums]
    write_json(at(out, paths.MASTER_CATALOG), master_catalog(catalogs, names, record["rejected"]))
    for style in names:
        markers = [read_json(at(out, paths.PUBLISHED, p.album, p.photo, style)) for p in photos]
        write_json(at(out, paths.STYLE_CATALOG, style=style), style_manifest(style, markers))
    settings = output_settings(config, "gallery")
    target = target_for(config["publish"]["target"], config["publish"])
    root = Path(str(target.folder))
    keys = planned_keys(record["photos"], sorted(names), settings["publish"])
    page = build_index(keys, root, gallery_settings(settings), target.prefix)
    write_json(at(out, paths.GALLERY), {"root": str(root), "pages": [page]})
    taken = [Photo(e["album"], e["photo"], Path(e["file"])) for e in record["photos"]]
    page_html = format_html(summarise(out, taken, styles), os.cpu_count() or 1, record["rejected"])
    write_bytes(at(out, paths.PROGRESS_REPORT), page_html.encode("utf-8"))


def loop(
    library: Path, styles: Sequence[str], workers: int, out: Path, step: Step = do_step
) -> float:
    """Seconds for the plain loop (``workers`` processes; 1 = one plain loop), each photo's
    stages done through ``step``."""
    config = validate_config(
        load_yaml(REPO / "config.yaml")
        | {
            "albums_dir": str(library),
            "places": {"cache": str(out / "cache" / "geocode.sqlite")},
            # The default target, file://results/gallery, in this side's folder.
            "publish": {"target": f"file://{out / 'results' / 'gallery'}"},
        }
    )
    registry = load_registry(REPO / "styles.yaml", config["style_backends"])
    # The stylize rules' params: each style's registry entry without its notes.
    chosen = {n: style_settings(s) for n, s in select_styles(registry, list(styles)).items()}
    names = list(chosen)
    start = time.perf_counter()
    photos = discover(library, config["extensions"]).photos
    by_album: dict[str, list[str]] = {}
    for photo in photos:
        by_album.setdefault(photo.album, []).append(photo.photo)
    if workers == 1:
        verdicts = [photo_chain(photo, chosen, config, out, step) for photo in photos]
        for album, members in by_album.items():
            album_outputs(album, members, names, config, out)
    else:
        with ProcessPoolExecutor(workers) as pool:
            verdicts = list(
                pool.map(
                    photo_chain,
                    photos,
                    *[[x] * len(photos) for x in (chosen, config, out, step)],
                )
            )
            albums = list(by_album)
            list(
                pool.map(
                    album_outputs,
                    albums,
                    [by_album[a] for a in albums],
                    *[[x] * len(albums) for x in (names, config, out)],
                )
            )
    library_outputs(photos, verdicts, chosen, config, out)
    return time.perf_counter() - start


def job_count(photos: int, styles: int, albums: int) -> int:
    """Jobs of a full run: the inventory, 4 per photo, 3 per photo and style, the per-style
    manifests, per album a catalog, a contact sheet and a gallery page, then the catalog,
    the gallery index, the progress page and ``all``."""
    return 1 + photos * (4 + 3 * styles) + styles + 3 * albums + 4


def workflow(
    library: Path,
    styles: Sequence[str],
    cores: int,
    workdir: Path,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> tuple[float, float]:
    """Wall seconds of ``snakemake`` with the default profile, and the CPU seconds of the
    Snakemake process itself (its scheduling; the image work is in its worker processes);
    ``env``: its environment, if not this process's."""
    copy_workflow(workdir)
    config = [f"albums_dir={library}", f"styles=[{','.join(styles)}]"]
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra, "--quiet", "all"]
    return timed([*command, "--config", *config], workdir, env)


def output_files(root: Path) -> set[str]:
    """Every file under ``root/results``, relative to ``root``."""
    return {str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file()}


def compare_outputs(count: int, jobs: int, workdir: Path, loops: Sequence[Path]) -> bool:
    """Whether the workflow ran ``jobs`` jobs (each writes one log; ``all`` none) and each loop
    wrote the files the workflow wrote under ``results/``; what differs is said on stderr."""
    expected = output_files(workdir)
    ran = sum(1 for p in (workdir / "logs").rglob("*.log") if p.is_file()) + 1
    same = ran == jobs
    if not same:
        sys.stderr.write(f"N={count}: snakemake ran {ran} jobs, job_count() says {jobs}\n")
    for out in loops:
        made = output_files(out)
        if made != expected:
            same = False
            sys.stderr.write(
                f"N={count}: {out.name} and snakemake differ under results/: "
                f"only snakemake {sorted(expected - made)[:10]}, "
                f"only {out.name} {sorted(made - expected)[:10]}\n"
            )
    return same


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


# The workflow's Snakefile's changes to Snakemake's scheduling rounds.
SCHEDULER_FIXES = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from i2i.run import snakemake_internals
snakemake_internals.lighter_scheduling()
"""


def floor(
    jobs: int, cores: int, workdir: Path, scheduler_fixes: bool = False
) -> tuple[int, float, float]:
    """About ``jobs`` no-op jobs with the default profile: how many ran (chains of three and
    ``all``), and the wall and Snakemake-process CPU seconds; ``scheduler_fixes``: with the
    workflow's changes to Snakemake's scheduler installed."""
    chains = max(1, (jobs - 1) // 3)
    workdir.mkdir(parents=True)
    fixes = SCHEDULER_FIXES if scheduler_fixes else ""
    (workdir / "Snakefile").write_text("from pathlib import Path\n" + fixes + NO_OP_WORKFLOW)
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
        f"chains={chains}",
    ]
    return (3 * chains + 1, *timed(command, workdir))


def timed(
    command: Sequence[str], workdir: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """Wall seconds of ``command`` and the CPU seconds of its own process."""
    errors = workdir / "bench-stderr.txt"
    start = time.perf_counter()
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
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


def library_arguments(parser: argparse.ArgumentParser, photos: Sequence[int]) -> None:
    """The options of the benches that run the workflow on a made-up library."""
    parser.add_argument("--photos", type=int, nargs="+", default=list(photos))
    parser.add_argument("--styles", nargs="+", default=STYLES)
    parser.add_argument(
        "--long-side",
        type=int,
        default=0,
        help="photos of this size (the sample's: 0; a 12 MP camera's: 4032)",
    )
    parser.add_argument(
        "--snakemake-args",
        default="",
        help='more arguments for snakemake, e.g. "--max-jobs-per-timespan=100/1s"',
    )


def parse_library_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed options (:func:`library_arguments`, checked); warnings logged."""
    args = parser.parse_args()
    if min(args.photos) < 2:
        parser.error("--photos: at least 2 (the library has two albums)")
    logging.basicConfig(level=logging.WARNING)
    return args


def bench_library(root: Path, count: int, args: argparse.Namespace) -> tuple[Path, int]:
    """A library of ``count`` photos under ``root`` and the jobs of a full run on it."""
    library = make_library(root / "library", count, args.long_side)
    albums = sum(1 for album in library.iterdir() if album.is_dir())
    return library, job_count(count, len(args.styles), albums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    library_arguments(parser, [20, 100, 400])
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--floor", action="store_true", help="also time no-op jobs")
    args = parse_library_arguments(parser)
    rows = []
    same = True
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-bench-") as tmp:
            root = Path(tmp)
            library, jobs = bench_library(root, count, args)
            smk, smk_cpu = workflow(
                library, args.styles, args.cores, root / "workflow", args.snakemake_args.split()
            )
            one = loop(library, args.styles, 1, root / "loop1")
            pool = loop(library, args.styles, args.cores, root / "loopN")
            loops = [root / "loop1", root / "loopN"]
            same = compare_outputs(count, jobs, root / "workflow", loops) and same
            nothing = floor(jobs, args.cores, root / "floor") if args.floor else None
        rows.append((count, jobs, smk, smk_cpu, one, pool))
        if nothing:
            ran, wall, cpu = nothing
            sys.stdout.write(
                f"N={count}: {ran} no-op jobs through snakemake: {wall:.1f}s, "
                f"its own CPU {cpu:.1f}s ({1000 * cpu / ran:.1f} ms/job)\n"
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
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
