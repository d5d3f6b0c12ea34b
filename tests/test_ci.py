"""Under CI=true a skipped test is a failure, so coverage cannot vanish silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SKIPPING = """
import pytest

pytest.importorskip("no_such_module_anywhere")
"""

SKIPPING_TEST = """
import pytest


def test_needs_a_browser():
    pytest.skip("chromium not installed")


def test_runs():
    assert True
"""


def run_pytest(folder: Path, ci: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def suite(folder: Path, name: str, text: str) -> Path:
    folder.mkdir()
    shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_skipped_test_fails_under_ci(tmp_path: Path) -> None:
    folder = suite(tmp_path / "tests", "test_skip.py", SKIPPING_TEST)
    strict = run_pytest(folder, "true")
    assert strict.returncode == 1, strict.stdout
    assert "1 failed, 1 passed" in strict.stdout
    assert "counts as a failure: Skipped: chromium not installed" in strict.stdout
    relaxed = run_pytest(folder, "")
    assert relaxed.returncode == 0, relaxed.stdout
    assert "1 passed, 1 skipped" in relaxed.stdout


def test_a_module_skipped_at_collection_fails_under_ci(tmp_path: Path) -> None:
    folder = suite(tmp_path / "tests", "test_module_skip.py", SKIPPING)
    strict = run_pytest(folder, "true")
    assert strict.returncode != 0, strict.stdout
    assert "counts as a failure" in strict.stdout
    assert "1 skipped" in run_pytest(folder, "").stdout
