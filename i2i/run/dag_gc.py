"""Python's cyclic garbage collector while Snakemake builds a large DAG of jobs.

Every job of the DAG is a few dozen long-lived objects, and the collector rescans the growing
heap each time enough new objects have piled up: a quarter of ``snakemake -n`` on 1,000 photos
(bench/dryrun_scale.py). The Snakefile calls :func:`defer_while_building_dag`, so young objects
are collected every million allocations and older ones practically never (the collector still
runs, unlike ``gc.disable()``, for processes that never reach ``onstart``: dry runs, reports,
jobs spawned with ``--no-hooks`` on a cluster node), and ``onstart`` calls :func:`resume_after_dag`
once the DAG is built: the DAG moves into the permanent generation, which no collection
scans again, and the default thresholds return for the run itself. At exit the interpreter
makes one last full collection over everything still alive, the whole DAG included (4 s of a
17 s dry run of 1,000 photos); an ``atexit`` handler freezes the heap first, so that pass has
nothing to walk and the operating system frees the memory. (``atexit`` handlers run before
that pass, and logging flushes its handlers in its own ``atexit`` handler.)
"""

from __future__ import annotations

import atexit
import gc

DAG_THRESHOLDS = (1_000_000, 1_000, 1_000)
DEFAULT_THRESHOLDS = gc.get_threshold()


_exit_freeze_registered = False


def defer_while_building_dag() -> None:
    """Collect rarely: the objects made now are the DAG, which lives as long as the run."""
    global _exit_freeze_registered
    gc.set_threshold(*DAG_THRESHOLDS)
    if not _exit_freeze_registered:
        atexit.register(gc.freeze)
        _exit_freeze_registered = True


def resume_after_dag() -> None:
    """Freeze what exists (the built DAG) and collect with the default thresholds again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*DEFAULT_THRESHOLDS)
