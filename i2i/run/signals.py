"""Helper processes leave SIGINT and SIGTERM to the Snakemake process.

``timeout``, ``kill -- -PGID`` and Ctrl-C signal the run's whole process group; Slurm and
systemd signal every process of the job's cgroup (the resident worker in its own session too).
Only the Snakemake process decides how a run stops (:mod:`i2i.run.runcontrol`): the processes
it starts must not die of those signals, or the jobs in flight fail.

A process started from a thread that blocks SIGINT and SIGTERM inherits the block and keeps
it: it never sees them, from its first instruction on (setting a handler or ``SIG_IGN`` once it
runs leaves a window in which the default action kills it). The forkserver (and so the pool
workers it forks) and the resident workers are started inside :func:`blocked`. Snakemake starts
``script:`` jobs itself, through its shell: :data:`SHELL_PREFIX` makes that shell ignore both
signals before it starts the script, which inherits the ignored dispositions.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
SHELL_PREFIX = "set -euo pipefail; trap '' INT TERM; "


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while processes that inherit the block start.

    The process itself still gets them: through its other threads, or when the block ends.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
