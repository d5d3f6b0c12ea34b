"""Signals as batch systems send them: runs stopped at random moments, then resumed.

Each trial starts ``snakemake`` on a fresh copy of the workflow (the sample album plus copies,
a classic style in the worker pool, a resident backend's style whose renders take a second,
the catalogs and report as ``script:`` jobs), sends one signal a random time after the run
took its lock, waits for the run to end, then runs plain ``snakemake`` to the end and compares
the final images with an uninterrupted run's (``tests/signal_trials.py``). The kinds:

* ``term-group``: SIGTERM to the process group (``timeout``, ``kill -- -PGID``);
* ``term-tree``: SIGTERM to every process of the run (Slurm, systemd: the cgroup), the resident
  worker in its own session included;
* ``int-group``: SIGINT to the process group (Ctrl-C);
* ``kill-group``: SIGKILL to the process group (cannot be graceful: the check is that the next
  run resumes, with no manual step).

A trial passes when the stopped run exits as it should (0, 0, 130, killed), prints no traceback
and leaves no temp file (graceful kinds; Ctrl-C prints its one line), and the next run exits 0
with finals byte-identical to the uninterrupted run's and no temp file. Prints one row per kind:
passes, exit statuses, resumed identical, renders abandoned, finals made before the stop, and
the seconds from the signal to the exit (median, max). Exit status 1 if a trial failed. Run from
the repository root:

    python bench/signals.py --trials 10 --seed 1
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import signal_trials  # noqa: E402


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="trials of each kind")
    parser.add_argument("--kinds", nargs="+", default=list(signal_trials.KINDS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="i2i-signals-"))
    try:
        reference, span = signal_trials.reference_run(root / "reference")
        say(
            f"uninterrupted run: {len(reference)} finals, {span:.1f} s from its lock to its end; "
            f"signals at 0-{span:.0f} s after the lock"
        )
        failed = 0
        rows = []
        for kind in args.kinds:
            trials = []
            for number in range(args.trials):
                workdir = signal_trials.workflow(root / f"{kind}-{number}")
                trial = signal_trials.run_trial(
                    workdir, kind, rng.uniform(0.0, span), reference, wait_work=False
                )
                trials.append(trial)
                verdict = "ok" if trial.ok else "FAILED: " + "; ".join(trial.errors)
                late = "" if trial.sent else " (after the run's end)"
                say(
                    f"  {kind} #{number}: signal at {trial.delay:5.1f} s{late}, exit "
                    f"{trial.status}, {trial.finals_at_stop} finals, {trial.abandoned} "
                    f"abandoned: {verdict}"
                )
                if args.keep:
                    say(f"    in {workdir}")
            failed += sum(not t.ok for t in trials)
            rows.append((kind, trials))
        say("")
        say(
            "| kind | passed | signals after the end | exit statuses | resumed identical "
            "| renders abandoned | finals at stop (median) | signal to exit s (median, max) |"
        )
        say("|---|---|---|---|---|---|---|---|")
        for kind, trials in rows:
            statuses = ", ".join(
                f"{s}: {n}" for s, n in sorted(Counter(t.status for t in trials).items())
            )
            seconds = [t.stop_seconds for t in trials]
            say(
                f"| {kind} | {sum(t.ok for t in trials)}/{len(trials)} "
                f"| {sum(not t.sent for t in trials)} | {statuses} "
                f"| {sum(t.identical for t in trials)}/{len(trials)} "
                f"| {sum(t.abandoned for t in trials)} "
                f"| {statistics.median(t.finals_at_stop for t in trials):g} "
                f"| {statistics.median(seconds):.1f}, {max(seconds):.1f} |"
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
