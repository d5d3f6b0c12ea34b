"""Where a dry run's memory goes: ``snakemake`` in this process under ``tracemalloc``, and what
is still allocated when it exits (the built DAG), by source file and by line.

Run in a workflow folder with Snakemake's arguments, e.g. the one-rule floor and this workflow
on a library built by ``dryrun_scale.py``, then compare the two tables:

    python bench/dryrun_memory.py -n --quiet all --config albums_dir=... styles=[...]

Allocation tracing makes the run about five times slower; the sizes are what Python allocated
(peak RSS also holds the allocator's slack and the interpreter).
"""

from __future__ import annotations

import atexit
import collections
import sys
import tracemalloc

TOP = 15


def _where(filename: str) -> str:
    return filename.split("site-packages/")[-1]


def report() -> None:
    """Print the allocations alive now, by file and by line."""
    snapshot = tracemalloc.take_snapshot()
    by_file: collections.Counter[str] = collections.Counter()
    for stat in snapshot.statistics("filename"):
        by_file[_where(stat.traceback[0].filename)] += stat.size
    total = sum(by_file.values()) / 2**20
    sys.stdout.write(f"\n| file | MiB |\n|---|---|\n| all | {total:.1f} |\n")
    for name, size in by_file.most_common(TOP):
        sys.stdout.write(f"| {name} | {size / 2**20:.1f} |\n")
    sys.stdout.write("\n| line | MiB | objects |\n|---|---|---|\n")
    for stat in snapshot.statistics("lineno")[:TOP]:
        frame = stat.traceback[0]
        line = f"{_where(frame.filename)}:{frame.lineno}"
        sys.stdout.write(f"| {line} | {stat.size / 2**20:.1f} | {stat.count} |\n")


def main() -> None:
    tracemalloc.start(1)
    atexit.register(report)  # registered first, so it runs after the workflow's own handlers
    from snakemake.cli import main as snakemake

    sys.argv = ["snakemake", *sys.argv[1:]]
    snakemake()


if __name__ == "__main__":
    main()
