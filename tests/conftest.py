"""Shared fixtures: the repository, the sample album and a workflow copy in a temp dir."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from i2i.core.files import sha256_file

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample" / "albums"
WORKFLOW_PARTS = (
    "Snakefile",
    "rules",
    "scripts",
    "schemas",
    "report",
    "profiles",
    "envs",
    "i2i",
    "config.yaml",
    "styles.yaml",
    "sample",
)


SCONTROL_STUB = """#!/bin/sh
if [ "$1" = show ] && [ "$2" = config ] && ! pgrep -x slurmctld >/dev/null; then
  exit 1
fi
exec {real} "$@"
"""


@pytest.fixture(scope="session", autouse=True)
def no_wait_for_a_slurm_controller() -> Iterator[None]:
    """Snakemake's Slurm plugin runs ``scontrol show config`` at every start (for its help
    text); with Slurm's clients installed and no controller running, that waits 10 s. A stub
    first on PATH fails that query at once while no slurmctld runs (as scontrol does after its
    timeout) and hands every other call, and every call while the Slurm tests' controller runs,
    to the real scontrol. 10.6 s to 1.8 s per Snakemake start here."""
    import tempfile

    real = shutil.which("scontrol")
    if real is None:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="i2i-scontrol-"))
    stub = folder / "scontrol"
    stub.write_text(SCONTROL_STUB.format(real=real), encoding="utf-8")
    stub.chmod(0o755)
    folder.chmod(0o755)
    path = os.environ["PATH"]
    os.environ["PATH"] = os.pathsep.join([str(folder), path])
    yield
    os.environ["PATH"] = path
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def sample_albums() -> Path:
    """The bundled sample album folder (read-only)."""
    return SAMPLE


def copy_workflow(destination: Path) -> Path:
    """Copy what a user would clone into ``destination`` (no results, no caches)."""
    destination.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, destination / part)
    return destination


def with_sitecustomize(folder: Path, source: str) -> str:
    """A PYTHONPATH under which every Python process started with it first runs ``source``
    (written as ``folder/sitecustomize.py``): a test's hook into the Snakemake process."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(source, encoding="utf-8")
    return os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def add_copies(workdir: Path, copies: int) -> Path:
    """An album ``Extra`` in ``workdir``'s sample library: ``copies`` copies of each photo."""
    albums = workdir / "sample" / "albums"
    extra = albums / "Extra"
    extra.mkdir()
    for number in range(copies):
        for photo in sorted(p for p in albums.glob("*/*") if p.parent != extra):
            shutil.copyfile(photo, extra / f"{photo.stem}_{number}{photo.suffix}")
    return workdir


# The per-photo stages, whose bytes depend on the photo and the settings alone (catalogs,
# publish records and the report also hold times and paths).
PHOTO_STAGES = ("metadata", "places", "captions", "preprocessed", "styled", "final")


def stage_outputs(workdir: Path) -> dict[str, str]:
    """sha256 of every output of the per-photo stages."""
    root = workdir / "results"
    return {
        str(p.relative_to(root)): sha256_file(p)
        for stage in PHOTO_STAGES
        for p in sorted((root / stage).rglob("*"))
        if p.is_file()
    }


def assert_no_partial_targets(workdir: Path) -> None:
    """Every file standing at a target path is whole: images decode, JSON parses."""
    for path in (workdir / "results").rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix in {".webp", ".jpg"}:
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` with the default profile; output captured as text."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
        )
    return result


def record_sleeps(monkeypatch: pytest.MonkeyPatch, *modules: types.ModuleType) -> list[float]:
    """The seconds ``modules`` ask ``time.sleep`` for (they still sleep). A test of back-off
    reads the waits the code chose, not a wall clock that a loaded machine stretches."""
    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds)

    clock = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    )
    clock.sleep = sleep
    for module in modules:
        monkeypatch.setattr(module, "time", clock)
    return asked


NOBODY = 65534


def unprivileged(command: list[str]) -> list[str]:
    """``command`` run as user nobody when the tests run as root (root reads any file)."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


@pytest.fixture
def shared_tmp() -> Path:
    """A temp folder that user nobody can enter and write (pytest's own is root-only)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="i2i-shared-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The ``Job stats`` table of a dry run as ``{rule: count}`` (empty: nothing to be done)."""
    if "Job stats:" not in dry_run_output:
        assert "Nothing to be done" in dry_run_output, dry_run_output[-2000:]
        return {}
    table = dry_run_output.split("Job stats:")[-1]
    counts = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
        if line.strip().startswith("total"):
            break
    return counts


def planned(workdir: Path, *args: str) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` plans in ``workdir`` (``all`` left out)."""
    result = snakemake(workdir, "-n", *args)
    counts = job_counts(result.stdout + result.stderr)
    counts.pop("all", None)
    return counts


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium page (skipped with the install command when Chromium is missing)."""
    from chromium import CHROMIUM, running_browser

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get update && apt-get install -y chromium)")
    pytest.importorskip("websocket", reason="pip install websocket-client")
    with running_browser(tmp_path_factory.mktemp("chromium-profile")) as tools:
        yield tools


def _skips_fail() -> bool:
    """Under CI (``CI=true``) a skipped test is a failure: CI installs everything tests need."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Turn a skip into a failure under CI, naming why it would have been skipped."""
    outcome = yield
    report = outcome.get_result()
    if _skips_fail() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A module skipped while it is collected (``importorskip``) fails under CI too."""
    outcome = yield
    report = outcome.get_result()
    if _skips_fail() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
