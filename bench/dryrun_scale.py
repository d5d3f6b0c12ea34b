"""How ``snakemake -n`` grows with the library: seconds and peak memory of a dry run.

Builds a library of N empty placeholder photos (a dry run never opens them) in albums of 500,
then times ``snakemake -n`` with the default profile and the given styles. Run from the
repository root:

    python bench/dryrun_scale.py --photos 1000 10000 50000
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import copy_workflow  # noqa: E402

ALBUM_SIZE = 500
STYLES = ["cartoon", "oil_paint", "pencil_sketch", "watercolour", "detail_enhance", "soft_focus"]


def placeholder_library(root: Path, photos: int) -> Path:
    """``photos`` empty ``.jpg`` files in albums of ``ALBUM_SIZE``."""
    for number in range(photos):
        album = root / f"Album {number // ALBUM_SIZE:03d}"
        album.mkdir(parents=True, exist_ok=True)
        (album / f"IMG_{number:06d}.jpg").touch()
    return root


def dry_run(workdir: Path, library: Path, styles: list[str], timeout: float) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one ``snakemake -n`` in a fresh child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--quiet",
            "all",
            "--config",
            f"albums_dir={library}",
            f"styles=[{','.join(styles)}]",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--styles", nargs="+", default=STYLES)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    sys.stdout.write(
        "| photos | styles | jobs | dry run s | peak RSS MiB |\n|---|---|---|---|---|\n"
    )
    for count in args.photos:
        with tempfile.TemporaryDirectory(prefix="i2i-scale-") as tmp:
            root = Path(tmp)
            library = placeholder_library(root / "library", count)
            workdir = copy_workflow(root / "workflow")
            albums = -(-count // ALBUM_SIZE)
            jobs = count * (4 + 3 * len(args.styles)) + len(args.styles) + 4 + albums
            try:
                seconds, peak = dry_run(workdir, library, args.styles, args.timeout)
                row = f"{seconds:.1f} | {peak:.0f}"
            except subprocess.TimeoutExpired:
                row = f"> {args.timeout:.0f} (stopped) | -"
        sys.stdout.write(f"| {count} | {len(args.styles)} | {jobs} | {row} |\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
