"""Shared fixtures: the repository, the sample album and a workflow copy in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium page (skipped with the install command when Chromium is missing)."""
    from chromium import CHROMIUM, running_browser

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get update && apt-get install -y chromium)")
    pytest.importorskip("websocket", reason="pip install websocket-client")
    with running_browser(tmp_path_factory.mktemp("chromium-profile")) as tools:
        yield tools
