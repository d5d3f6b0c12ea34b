"""Each Snakemake internal i2i uses (i2i/run/snakemake_internals.py), exercised on the installed
Snakemake by a tiny workflow: the run lock around ``execute``, the failed-job count, the
scheduler's graceful stop and the hidden error reports of abandoned jobs."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from conftest import snakemake

REPO = Path(__file__).resolve().parent.parent

SNAKEFILE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from i2i.run import snakemake_internals
    snakemake_internals.lock_real_runs(workflow)

    onstart:
        stop = snakemake_internals.graceful_stop(workflow)
        open("seen.txt", "w").write(f"lock held: {{Path('.i2i/run.lock').exists()}}\\n"
                                    f"stop callable: {{callable(stop)}}\\n")

    onerror:
        open("failed.txt", "w").write(str(snakemake_internals.failed_jobs(workflow)))

    rule all:
        input: "good.txt", "bad.txt"

    rule good:
        output: "good.txt"
        shell: "echo ok > {{output}}"

    rule bad:
        output: "bad.txt"
        shell: "exit 3"
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "Snakefile").write_text(
        "from pathlib import Path\n" + SNAKEFILE.format(repo=str(REPO)), encoding="utf-8"
    )
    return tmp_path


def test_a_dry_run_takes_no_run_lock(workdir: Path) -> None:
    result = snakemake(workdir, "-n", check=False)
    assert result.returncode == 0, result.stderr
    assert not (workdir / ".i2i" / "run.lock").exists()


def test_a_run_holds_the_lock_and_counts_its_failed_jobs(workdir: Path) -> None:
    result = snakemake(workdir, "--keep-going", check=False)
    assert result.returncode != 0
    seen = (workdir / "seen.txt").read_text(encoding="utf-8")
    assert "lock held: True" in seen and "stop callable: True" in seen
    assert (workdir / "failed.txt").read_text(encoding="utf-8") == "1"
    assert (workdir / "good.txt").exists()


FORCES_SNAKEFILE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from i2i.run import snakemake_internals

    def seen(wildcards):
        forced = snakemake_internals.forces_rerun(workflow, "make", "made.txt")
        block = snakemake_internals.run_block(workflow, "make")
        same = snakemake_internals.same_as_recorded(workflow, "made.txt", "in.txt")
        open("seen.txt", "w").write(f"{{forced}}\\n{{block.strip()}}\\n{{same}}\\n")
        return []

    rule all:
        input: "made.txt", seen

    rule make:
        input: "in.txt"
        output: "made.txt"
        run:
            open(output[0], "w").write("made")
    """
)


@pytest.mark.parametrize(
    ("options", "forced"),
    [
        ((), False),
        (("-R", "make"), True),
        (("--forcerun", "made.txt"), True),
        (("-F",), True),
        (("-f", "all", "made.txt"), True),
        (("-f",), False),
    ],
)
def test_forces_rerun_reads_the_runs_force_options(
    tmp_path: Path, options: tuple[str, ...], forced: bool
) -> None:
    """What rules/common.smk asks before it trusts the inventory on disk: the run's force
    options (set after the Snakefile is parsed) and the rule's run block as Snakemake has it."""
    (tmp_path / "Snakefile").write_text(FORCES_SNAKEFILE.format(repo=str(REPO)), encoding="utf-8")
    (tmp_path / "in.txt").write_text("one", encoding="utf-8")
    snakemake(tmp_path)
    (tmp_path / "seen.txt").unlink()
    snakemake(tmp_path, "-n", *options)
    flag, block, _ = (tmp_path / "seen.txt").read_text(encoding="utf-8").splitlines()
    assert flag == str(forced)
    assert block == 'open(output[0], "w").write("made")'


def test_forces_rerun_sees_snakemakes_incomplete_marker(tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(FORCES_SNAKEFILE.format(repo=str(REPO)), encoding="utf-8")
    (tmp_path / "in.txt").write_text("one", encoding="utf-8")
    snakemake(tmp_path)
    marker = tmp_path / ".snakemake" / "incomplete" / "bWFkZS50eHQ="
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    (tmp_path / "seen.txt").unlink()
    snakemake(tmp_path, "-n", "--rerun-incomplete")
    assert (tmp_path / "seen.txt").read_text(encoding="utf-8").startswith("True")


def test_same_as_recorded_is_snakemakes_checksum_of_an_input(tmp_path: Path) -> None:
    """A touched input keeps the content Snakemake recorded; an edited one does not."""
    (tmp_path / "Snakefile").write_text(FORCES_SNAKEFILE.format(repo=str(REPO)), encoding="utf-8")
    source = tmp_path / "in.txt"
    source.write_text("one", encoding="utf-8")
    snakemake(tmp_path)
    os.utime(source, ns=(0, time.time_ns() + 10**9))
    snakemake(tmp_path, "-n")
    assert (tmp_path / "seen.txt").read_text(encoding="utf-8").splitlines()[2] == "True"
    source.write_text("two", encoding="utf-8")
    snakemake(tmp_path, "-n")
    assert (tmp_path / "seen.txt").read_text(encoding="utf-8").splitlines()[2] == "False"


HIDING = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from i2i.run import snakemake_internals

    onstart:
        snakemake_internals.hide_abandoned_jobs(lambda: {{"abandoned.txt"}}, "ABANDONED-MARK")

    rule all:
        input: "abandoned.txt", "failed.txt"

    rule abandoned:
        output: "abandoned.txt"
        run:
            raise RuntimeError("ABANDONED-MARK: left for the next run")

    rule failed:
        output: "failed.txt"
        run:
            raise RuntimeError("a real failure")
    """
)


def test_error_reports_of_abandoned_jobs_are_hidden(tmp_path: Path) -> None:
    """In-process jobs (``force-use-threads``, as the default profile runs ``run:`` blocks)."""
    (tmp_path / "Snakefile").write_text(HIDING.format(repo=str(REPO)), encoding="utf-8")
    result = snakemake(tmp_path, "--keep-going", "--force-use-threads", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule failed" in output and "a real failure" in output, output[-3000:]
    assert "Error in rule abandoned" not in output and "ABANDONED-MARK" not in output


STOPPING = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from i2i.run import snakemake_internals

    onstart:
        open("before.txt", "w").write(str(snakemake_internals.stop_asked(workflow)))
        snakemake_internals.graceful_stop(workflow)()

    onerror:
        open("asked.txt", "w").write(str(snakemake_internals.stop_asked(workflow)))

    rule all:
        input: "never.txt"

    rule never:
        output: "never.txt"
        shell: "touch {{output}}"
    """
)


def test_a_graceful_stop_is_known_to_onerror(tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(STOPPING.format(repo=str(REPO)), encoding="utf-8")
    result = snakemake(tmp_path, check=False)
    assert result.returncode != 0 and not (tmp_path / "never.txt").exists()
    assert (tmp_path / "before.txt").read_text(encoding="utf-8") == "False"
    assert (tmp_path / "asked.txt").read_text(encoding="utf-8") == "True"


ROUNDS = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {repo!r})
    from i2i.run import snakemake_internals
    snakemake_internals.lighter_scheduling()
    START, ROUNDS = time.monotonic(), []

    onstart:
        select = workflow.scheduler.job_selector
        def counted(jobs):
            ROUNDS.append(1)
            return select(jobs)
        workflow.scheduler.job_selector = counted
        Path("pipes.txt").write_text(
            str(snakemake_internals.no_pipe_checks_without_pipes(workflow))
        )
        remaining = workflow.scheduler.remaining_jobs
        Path("remaining.txt").write_text(f"{{len(remaining)}} {{sorted(set(map(str, remaining)))}}")

    onsuccess:
        Path("rounds.txt").write_text(f"{{len(ROUNDS)}} {{time.monotonic() - START}}")

    rule all:
        input: expand("out/{{i}}.txt", i=range({jobs}))

    rule one:
        output: "out/{{i}}.txt"
        run:
            time.sleep(0.3)
            Path(output[0]).write_text("x")
    """
)


def test_scheduling_rounds_follow_the_jobs(tmp_path: Path) -> None:
    """Snakemake's own rescheduling timers would add a chain of rounds per finished job (more
    than jobs + seconds within 2 s); with one timer at a time, a round per job event and at
    most one a second. The workflow has no pipes, so Snakemake's pipe check is skipped; the
    jobs not yet done are listed when read."""
    jobs = 24
    (tmp_path / "Snakefile").write_text(
        "from pathlib import Path\n" + ROUNDS.format(repo=str(REPO), jobs=jobs), encoding="utf-8"
    )
    snakemake(tmp_path, "--force-use-threads")
    rounds, seconds = (tmp_path / "rounds.txt").read_text(encoding="utf-8").split()
    assert int(rounds) <= jobs + float(seconds) + 3, (rounds, seconds)
    assert (tmp_path / "pipes.txt").read_text(encoding="utf-8") == "True"
    remaining = (tmp_path / "remaining.txt").read_text(encoding="utf-8")
    assert remaining == f"{jobs + 1} ['all', 'one']", remaining


def test_pipe_checks_stay_where_a_rule_declares_a_pipe(tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            sys.path.insert(0, {str(REPO)!r})
            from i2i.run import snakemake_internals

            rule piped:
                output: pipe("stream")
                shell: "echo x > {{output}}"

            Path("pipes.txt").write_text(
                str(snakemake_internals.no_pipe_checks_without_pipes(workflow))
            )
            """
        ),
        encoding="utf-8",
    )
    snakemake(tmp_path, "-n", "--list-rules")
    assert (tmp_path / "pipes.txt").read_text(encoding="utf-8") == "False"
