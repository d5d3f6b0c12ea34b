"""The console of a run: snakemake-logger-plugin-i2i (``logger: i2i`` in profiles/default).

About one line per job, errors and warnings in full, the complete log in .snakemake/log, and
dry runs exactly as Snakemake prints them (the tests read their ``Job stats`` table).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import snakemake_logger_plugin_i2i as plugin
from snakemake_interface_logger_plugins.common import LogEvent

from conftest import copy_workflow, snakemake

# Lines a run prints besides one per finished job: the profile's name, the complete log,
# the elapsed time, and a few more (i2i's set-aside summary, "stopped the FLUX worker").
FEW = 8
PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d +\d+/\d+ +\d+%  (ETA \S+|done in \S+) +.+$")

SNAKEFILE = """
from pathlib import Path

rule all:
    input:
        expand("results/ok/{n}.txt", n=range(JOBS)),
        "results/broken.txt",

rule ok:
    output:
        "results/ok/{n}.txt",
    run:
        Path(output[0]).write_text("ok\\n")

rule broken:
    output:
        "results/broken.txt",
    log:
        "logs/broken.log",
    run:
        Path(log[0]).write_text("first line of the job's log\\nlast line of the job's log\\n")
        raise ValueError("the photo is broken")
"""


def settings(**changes: object) -> SimpleNamespace:
    """Snakemake's output settings, as a run without options has them."""
    values = dict(
        printshellcmds=False,
        nocolor=True,
        quiet=None,
        debug_dag=False,
        verbose=False,
        show_failed_logs=True,
        stdout=False,
        dryrun=False,
    )
    return SimpleNamespace(**{**values, **changes})


def record(message: str | None, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    """A record as Snakemake's queue hands it to the plugin (message already a string)."""
    item = logging.LogRecord("snakemake", level, __file__, 1, str(message), None, None)
    item.__dict__.update(extra)
    return item


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(text: str) -> list[str]:
    """What a terminal shows: each line after its last carriage return, escapes removed."""
    return [line.split("\r")[-1] for line in text.replace("\x1b[K", "").split("\n")]


def one_job_and_a_warning(handler: plugin.LogHandler) -> None:
    """Three jobs planned; one starts and takes 10 s, then a warning, then the next starts."""
    now = [100.0]
    handler.progress.clock = lambda: now[0]
    handler.handle(record("Job stats: ...", event=LogEvent.RUN_INFO, stats={"total": 3}))
    handler.handle(record("Building DAG of jobs..."))
    wildcards = {"album": "Trip", "photo": "beach"}
    handler.handle(record("", event=LogEvent.JOB_INFO, jobid=7, rule_name="metadata",
                          wildcards=wildcards))  # fmt: skip
    handler.handle(record("Shell command: None", event=LogEvent.SHELLCMD, shellcmd=None))
    now[0] = 110.0
    handler.handle(record("Finished jobid: 7", event=LogEvent.JOB_FINISHED, job_id=7))
    handler.handle(record(None, event=LogEvent.PROGRESS, done=1, total=3))
    handler.handle(record("set aside Trip/x.jpg: empty file", logging.WARNING))
    handler.handle(record("", event=LogEvent.JOB_INFO, jobid=8, rule_name="all", wildcards={}))


def test_progress_counts_and_eta() -> None:
    now = [100.0]
    progress = plugin.Progress(clock=lambda: now[0])
    assert progress.eta() == "ETA -"
    for jobid in (1, 2):
        progress.job_info(jobid, "stylize_classic", {"album": "A", "style": "ink", "photo": "p"})
    now[0] = 110.0
    progress.job_finished(1)
    assert progress.progress(1, 5) == "stylize_classic A/ink/p"
    assert progress.count() == "1/5  20%" and progress.eta() == "ETA 40s"
    assert progress.status() == "1/5  20%  ETA 40s  1 running  last: stylize_classic A/ink/p"
    progress.job_finished(2)
    progress.job_info(3, "all", None)
    progress.job_finished(3)
    now[0] = 3800.0
    assert progress.progress(199, 200) == "stylize_classic A/ink/p (+1)"
    assert progress.count() == "199/200  99%" and progress.eta() == "ETA 19s"
    progress.progress(200, 200)
    assert progress.eta() == "done in 1h01m" and progress.count() == "200/200 100%"


def test_not_a_terminal_one_line_per_finished_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the run's job durations go to .i2i/durations.json there
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = plugin.LogHandler(settings(), None)
    one_job_and_a_warning(handler)
    handler.close()
    building, finished, warning = stream.getvalue().splitlines()
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()
    assert building == "Building DAG of jobs..."
    assert PROGRESS_LINE.match(finished)
    assert finished.endswith(" 1/3  33%  ETA 20s        metadata Trip/beach")
    assert warning == "set aside Trip/x.jpg: empty file"


def test_a_terminal_gets_a_status_line_redrawn_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("TERM", "xterm")
    handler = plugin.LogHandler(settings(), None)
    # i2i's warnings go to stderr through a handler of their own, made when the Snakefile is
    # read (after the plugin): they take the status line's place too.
    own_handler = logging.StreamHandler(sys.stderr)
    one_job_and_a_warning(handler)
    own_handler.emit(record("WARNING i2i: set aside Trip/y.jpg: not an image"))
    handler.close()
    own_handler.emit(record("after the run"))
    assert sys.stderr is stream
    assert stream.getvalue().count("\n") == 5, "four messages, and the status line at the end"
    assert screen(stream.getvalue()) == [
        "Building DAG of jobs...",
        "set aside Trip/x.jpg: empty file",
        "WARNING i2i: set aside Trip/y.jpg: not an image",
        "1/3  33%  ETA 20s  1 running  last: metadata Trip/beach",
        "after the run",
        "",
    ]


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--force-use-threads", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def without_times(text: str) -> list[str]:
    text = re.sub(r"\[\w{3} \w{3} +\d+ [\d:]+ \d{4}\]|(Date|Workflow ID|Command): .*", "", text)
    return sorted(text.splitlines())  # a dry run lists the jobs in no fixed order


def failure(complete: str) -> list[str]:
    """A failed job's report in the complete log (other jobs' lines may come between its two
    parts): the exception; the job's error with its log file."""
    start = complete.index("RuleException:")
    lines = complete[start:].split("\n")
    end = next(n for n, line in enumerate(lines) if line.startswith('  File "'))
    while lines[end + 1].startswith('  File "'):  # the traceback's last line ends the exception
        end += 1
    exception = "\n".join(lines[: end + 1]) + "\n"
    error = complete.rindex("\n[", 0, complete.index("\nError in rule", start)) + 1
    opening = complete.index("\n=", complete.index("\nLogfile ", error))
    closing = complete.index("\n=", opening + 1)
    return [exception, complete[error : complete.index("\n", closing + 1) + 1]]


def test_a_dry_run_prints_what_snakemake_prints(tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("JOBS", "3"), encoding="utf-8")
    own = run(tmp_path, "-n")
    ours = run(tmp_path, "-n", "--logger", "i2i")
    assert own.returncode == ours.returncode == 0, ours.stderr
    assert "Job stats:" in ours.stdout and "rule broken:" in ours.stdout
    assert without_times(ours.stdout) == without_times(own.stdout)
    assert ours.stderr == own.stderr


def test_a_run_prints_a_line_per_job_and_errors_in_full(tmp_path: Path) -> None:
    jobs = 40
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("JOBS", str(jobs)), encoding="utf-8")
    result = run(tmp_path, "--logger", "i2i", "--keep-going", "--show-failed-logs")
    console = result.stdout + result.stderr
    assert result.returncode == 1
    [log] = (tmp_path / ".snakemake" / "log").glob("*.log")
    complete = log.read_text(encoding="utf-8")
    # The complete log: every job with its details, and the failure.
    assert complete.count("localrule ok:") == jobs and complete.count("Finished jobid") == jobs
    assert "reason: Missing output files: results/ok/0.txt" in complete
    # The console: one line per finished job, then the failure exactly as the log has it.
    progress = [line for line in console.splitlines() if PROGRESS_LINE.match(line)]
    assert len(progress) == jobs and progress[-1].split()[1] == f"{jobs}/{jobs + 2}"
    assert len(console.splitlines()) <= jobs + 25
    exception, report = failure(complete)
    assert "ValueError" in exception and "the photo is broken" in exception
    assert "Error in rule broken:" in report and "Logfile logs/broken.log:\n" in report
    assert "first line of the job's log\nlast line of the job's log\n" in report
    assert exception in console and report in console
    assert complete[complete.index("Exiting because a job execution failed") :] in console
    for chatter in ("localrule ok:", "reason:", "Select jobs", "Shell command", "Job stats"):
        assert chatter not in console, chatter


@pytest.mark.workflow
def test_the_workflow_console(tmp_path: Path) -> None:
    """The default profile's console on the sample album (190 jobs): a set-aside photo's
    warning once, about a line per job, and a failed job's one line."""
    workdir = copy_workflow(tmp_path / "workflow")
    (workdir / "sample" / "albums" / "Space Coast" / "empty.jpg").touch()
    result = snakemake(workdir)
    console = result.stdout + result.stderr
    logs = sorted((workdir / ".snakemake" / "log").glob("*.log"))
    complete = logs[-1].read_text(encoding="utf-8")
    jobs = complete.count("Finished jobid")
    assert jobs > 150 and "\nlocalrule watermark:" in complete
    assert len(console.splitlines()) <= jobs + FEW, console[-3000:]
    progress = [line for line in console.splitlines() if PROGRESS_LINE.match(line)]
    assert progress[-1].split()[1] == f"{jobs}/{jobs}" and "done in" in progress[-1]
    [warning] = [line for line in console.splitlines() if "empty.jpg" in line]
    assert warning.startswith("WARNING ") and "set aside Space Coast/empty.jpg: empty" in warning
    assert "Shell command" not in console + complete
    assert f"Complete log(s): {logs[-1]}" in console

    preprocessed = workdir / "results" / "preprocessed" / "Space Coast" / "deep_field.webp"
    preprocessed.write_bytes(b"not an image")
    failed = snakemake(workdir, "results/final/Space Coast/cartoon/deep_field.webp", check=False)
    console = failed.stdout + failed.stderr
    complete = sorted((workdir / ".snakemake" / "log").glob("*.log"))[-1].read_text("utf-8")
    assert failed.returncode == 1
    exception, report = failure(complete)
    assert "deep_field.webp: not an image" in exception
    assert "Error in rule stylize_classic:" in report
    assert "Logfile logs/stylize/Space Coast/cartoon/deep_field.log:" in report
    # An expected failure: one line on the console, the reports in the complete log.
    [line] = [line for line in console.splitlines() if "deep_field" in line]
    assert line.startswith(
        "FAILED stylize_classic: results/preprocessed/Space Coast/deep_field.webp: not an image"
    ) and line.endswith("(log: logs/stylize/Space Coast/cartoon/deep_field.log)"), line
    assert "RuleException" not in console and "Error in rule" not in console
    assert complete[complete.index("Exiting because a job execution failed") :] in console
    assert len(console.splitlines()) <= FEW


# The ETA weighted by rule (snakemake_logger_plugin_i2i.durations): synthetic runs on 2 cores.
FAST, SLOW = ("metadata", 0.15), ("stylize_flux", 100.0)  # true seconds a job; priors 0.1, 120


def replay(
    handler: plugin.LogHandler, jobs: list[tuple[str, float]], at: int, cores: int = 2
) -> tuple[float | None, float | None, float]:
    """Run ``jobs`` in order on ``cores`` (a ``stylize_flux`` job on the GPU, one at a time)
    through the handler's records; when ``at`` jobs are done, take the weighted and the
    unweighted seconds left; return them and the true seconds left."""
    now = [0.0]
    progress = handler.progress
    progress.clock = lambda: now[0]
    stats = {**Counter(rule for rule, _ in jobs), "total": len(jobs)}
    handler.handle(record("Job stats: ...", event=LogEvent.RUN_INFO, stats=stats))
    handler.handle(record("Provided cores: 2", event=LogEvent.RESOURCES_INFO, cores=cores))
    queue, running, done = list(enumerate(jobs)), {}, 0
    estimates: tuple[float | None, float | None] = (None, None)
    taken_at = 0.0
    while queue or running:
        for item in list(queue):
            jobid, (rule, seconds) = item
            gpu = rule == SLOW[0]
            busy = any(jobs[j][0] == SLOW[0] for j in running)
            if len(running) < cores and not (gpu and busy):
                queue.remove(item)
                running[jobid] = now[0] + seconds
                info = dict(jobid=jobid, rule_name=rule, wildcards={"n": jobid})
                handler.handle(
                    record("", event=LogEvent.JOB_INFO, resources={"gpu": int(gpu)}, **info)
                )
        jobid = min(running, key=running.__getitem__)
        now[0] = running.pop(jobid)
        done += 1
        handler.handle(record("Finished", event=LogEvent.JOB_FINISHED, job_id=jobid))
        handler.handle(record(None, event=LogEvent.PROGRESS, done=done, total=len(jobs)))
        if done == at:
            estimates, taken_at = (progress.left(), progress.rate_left()), now[0]
    return (*estimates, now[0] - taken_at)


def console(monkeypatch: pytest.MonkeyPatch) -> plugin.LogHandler:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    return plugin.LogHandler(settings(), None)


def test_eta_weighted_by_rule_priors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No history: 200 quick jobs then 4 of minutes; at 10 % the rate so far says seconds."""
    monkeypatch.chdir(tmp_path)
    handler = console(monkeypatch)
    weighted, unweighted, real = replay(handler, [FAST] * 200 + [SLOW] * 4, at=20)
    assert weighted is not None and unweighted is not None
    assert 0.5 < weighted / real < 2, (weighted, real)
    assert unweighted / real < 0.1, (unweighted, real)
    assert handler.progress.eta() == "done in 6m55s"


def test_eta_uses_and_updates_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    history = tmp_path / ".i2i" / "durations.json"
    history.parent.mkdir()
    rules = {
        "stylize_flux": {"jobs": 80, "seconds": 30.0},
        "places": {"jobs": 3, "seconds": 2},
        "stylize_gpu_plugin": {"jobs": 2, "seconds": 50, "serial": True},
    }
    history.write_text(json.dumps({"version": 1, "rules": rules}), encoding="utf-8")
    handler = console(monkeypatch)
    # The earlier run's 30 s a FLUX job, not the 120 s prior: the ETA is 4 x 30 s.
    weighted, _, real = replay(handler, [FAST] * 200 + [SLOW] * 4, at=20)
    assert weighted == pytest.approx(120) and real == pytest.approx(413.5)
    renames: list[tuple[Path, Path]] = []
    replace = Path.replace

    def watched(source: Path, target: Path) -> Path:
        assert source.parent == history.parent and json.loads(source.read_text("utf-8"))
        renames.append((source, target))
        return replace(source, target)

    monkeypatch.setattr(Path, "replace", watched)
    handler.close()
    assert len(renames) == 1 and Path(renames[0][1]) == history
    assert [p.name for p in history.parent.iterdir()] == ["durations.json"], "no temp file left"
    kept = json.loads(history.read_text(encoding="utf-8"))["rules"]
    # 4 jobs of 100 s on a history capped at 50 jobs of 30 s; places untouched; metadata new.
    flux = {"jobs": 54, "seconds": pytest.approx(35.185, abs=1e-3), "serial": True, "last_run": 4}
    assert kept["stylize_flux"] == flux
    assert kept["places"] == {"jobs": 3, "seconds": 2, "last_run": 0}
    assert kept["stylize_gpu_plugin"] == {"jobs": 2, "seconds": 50, "serial": True, "last_run": 0}
    assert kept["metadata"] == {"jobs": 200, "seconds": pytest.approx(0.15), "last_run": 200}
    # The next run starts from these.
    following = plugin.durations.Durations.load(history)
    assert following.expected("stylize_flux") == pytest.approx(35.185, abs=1e-3)
    assert {"stylize_flux", "stylize_gpu_plugin"} <= following.serial


def test_eta_history_not_written_over_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    history = tmp_path / ".i2i" / "durations.json"
    history.parent.mkdir()
    history.write_text('{"version": 1, "rules": {}}', encoding="utf-8")
    handler = console(monkeypatch)
    replay(handler, [FAST] * 4, at=2)

    def fails(source: Path, target: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", fails)
    handler.close()
    assert history.read_text(encoding="utf-8") == '{"version": 1, "rules": {}}'
    assert [p.name for p in history.parent.iterdir()] == ["durations.json"]


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"rules": {"stylize_flux": {"jobs": "many", "seconds": 1}}}',
        '{"rules": {"stylize_flux": {"jobs": 3, "seconds": NaN}}}',
        '{"rules": {"stylize_flux": [1, 2]}}',
        "\udcff",
    ],
    ids=["not JSON", "a list", "jobs not a number", "NaN seconds", "entry a list", "not UTF-8"],
)
def test_eta_a_corrupt_history_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.chdir(tmp_path)
    history = tmp_path / ".i2i" / "durations.json"
    history.parent.mkdir()
    history.write_bytes(text.encode("utf-8", "surrogateescape"))
    handler = console(monkeypatch)
    weighted, _, _ = replay(handler, [FAST] * 200 + [SLOW] * 4, at=20)
    assert weighted == pytest.approx(480), "the 120 s prior a FLUX job"
    handler.close()
    kept = json.loads(history.read_text(encoding="utf-8"))["rules"]
    assert set(kept) == {"metadata", "stylize_flux"}


def test_eta_jobs_after_a_checkpoint_at_the_last_runs_mix(tmp_path: Path) -> None:
    """Jobs the first job stats did not count (added after the inventory checkpoint) are
    taken at the mix of rules of the last run: 100 quick jobs and 10 FLUX ones (on the GPU)."""
    history = tmp_path / "durations.json"
    rules = {
        "metadata": {"jobs": 100, "seconds": 0.1, "last_run": 100},
        "stylize_flux": {"jobs": 10, "seconds": 60, "last_run": 10, "serial": True},
        "inventory": {"jobs": 1, "seconds": 5, "last_run": 1},
    }
    history.write_text(json.dumps({"version": 1, "rules": rules}), encoding="utf-8")
    now = [0.0]
    progress = plugin.Progress(clock=lambda: now[0], cores=2)
    progress.durations = plugin.durations.Durations.load(history)
    progress.run_info({"inventory": 1, "total": 1})
    progress.job_info(1, "inventory", None)
    assert progress.eta() == "ETA 5s", "an estimate before the first job ends"
    now[0] = 5.0
    progress.job_finished(1)
    progress.progress(1, 111)
    assert progress.left() == pytest.approx(600), "10 FLUX jobs of 60 s, one at a time"


def test_eta_jobs_after_a_checkpoint_without_history_at_this_runs_rate() -> None:
    """A first run: the job stats count only the inventory and ``all``, whose seconds say
    nothing of the jobs added after the checkpoint. No estimate until five of those ended,
    then their mean (here 0.5 s a job on 2 cores), not the checkpoint's few milliseconds."""
    now = [0.0]
    progress = plugin.Progress(clock=lambda: now[0], cores=2)
    progress.run_info({"inventory": 1, "all": 1, "total": 2})
    progress.job_info(1, "inventory", None)
    now[0] = 0.01
    progress.job_finished(1)
    progress.progress(1, 2)
    for jobid in range(2, 12):
        progress.job_info(jobid, "metadata", {"photo": jobid})
        now[0] += 0.5
        progress.job_finished(jobid)
        progress.progress(jobid, 187)
        if jobid < 6:
            assert progress.eta() == "ETA -", jobid
    assert progress.left() == pytest.approx((187 - 11 - 1) * 0.5 / 2), "all: counted, no work"
