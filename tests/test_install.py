"""Install and run anywhere: the wheel carries the workflow and the console, ``i2i init`` and
``i2i run`` restyle a library from an empty folder, and the workflow runs as a ``module`` of
another workflow with its handlers."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from i2i import I2IError, cli
from i2i.config import validate_config
from i2i.core import resources
from i2i.run import hooks, launch

from conftest import REPO, SAMPLE, WORKFLOW_PARTS

# What building the wheel reads besides the workflow itself.
BUILD_PARTS = ("pyproject.toml", "setup.py", "README.md", "snakemake-logger-plugin-i2i")
STYLES = ["pencil_sketch", "oil_paint"]
TIMEOUT = 1200


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``command`` in ``cwd``; its output in the assertion message when it fails."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    )
    return result


def published(workdir: Path) -> dict[str, int]:
    """What the run published: gallery images and publish markers, and the index page."""
    return {
        "images": len(list((workdir / "results" / "gallery").glob("*/*.webp"))),
        "markers": len(list((workdir / "results" / "published").glob("*/*/*.json"))),
        "index": int((workdir / "results" / "gallery" / "index.html").is_file()),
    }


def sample_photos() -> int:
    return sum(1 for p in SAMPLE.glob("*/*") if p.is_file())


def test_the_clone_is_the_workflow_folder() -> None:
    assert resources.workflow_dir() == REPO
    assert resources.snakefile() == REPO / "Snakefile"
    assert resources.hooks_file().is_file()
    assert (resources.profile() / "config.yaml").is_file()
    assert resources.sample_albums() == SAMPLE


def test_a_relative_styles_file_is_looked_up_in_the_working_folder_then_the_workflow(
    tmp_path: Path,
) -> None:
    assert resources.styles_path("styles.yaml", tmp_path) == REPO / "styles.yaml"
    (tmp_path / "styles.yaml").write_text("{}\n", encoding="utf-8")
    assert resources.styles_path("styles.yaml", tmp_path) == tmp_path / "styles.yaml"
    assert resources.styles_path("mine.yaml", tmp_path) == tmp_path / "mine.yaml"


def test_the_starter_config_is_commented_and_sets_the_albums_folder() -> None:
    text = launch.starter_config()
    config = yaml.safe_load(text)
    assert config == {"albums_dir": "albums"}
    assert "#   brand: i2i" in text and "#   artist:" in text and "# styles:" in text
    assert validate_config(config)["albums_dir"] == "albums"


def test_init_writes_a_starter_folder_and_leaves_an_existing_config_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "library"
    assert cli.main(["init", str(folder), "--sample", "--styles"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["albums", "config.yaml", "styles.yaml"]
    copied = sorted(p.relative_to(folder / "albums") for p in (folder / "albums").rglob("*"))
    assert copied == sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*"))
    assert "i2i run" in capsys.readouterr().out
    assert cli.main(["-d", str(folder), "check"]) == 0
    with pytest.raises(I2IError, match="exists"):
        launch.init_folder(folder)


def test_run_hands_snakemake_the_packaged_workflow_and_the_options_last(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(launch, "run_snakemake", started.append)
    monkeypatch.chdir(tmp_path)
    argv = ["-d", "lib", "--configfile", "a.yaml", "run", "--cores", "2", "-n", "all"]
    assert cli.main(argv) == 0
    [command] = started
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    options = command[3:]
    assert options[options.index("--snakefile") + 1] == str(resources.snakefile())
    assert options[options.index("--directory") + 1] == "lib"
    assert options[options.index("--workflow-profile") + 1] == str(resources.profile())
    assert options[options.index("--configfile") + 1] == str(tmp_path / "a.yaml")
    assert options[-4:] == ["--cores", "2", "-n", "all"]
    with pytest.raises(SystemExit):
        cli.main(["check", "--cores", "2"])


def test_a_hook_without_the_workflow_says_what_to_include() -> None:
    with pytest.raises(RuntimeError, match="hooks_file"):
        hooks.call("no such event")


def build_wheel(tmp_path: Path) -> Path:
    """The wheel built from a copy of this checkout (the build writes beside its sources)."""
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in (*WORKFLOW_PARTS, *BUILD_PARTS):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, source / part, ignore=ignore)
        else:
            shutil.copy2(REPO / part, source / part)
    # With setuptools here, no isolated build environment (fast, offline); without it (a
    # Python >= 3.12 venv has none) pip fetches it from PyPI into one.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    dist = tmp_path / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation]
    run([*command, "-w", str(dist), str(source)], tmp_path, dict(os.environ))
    [wheel] = dist.glob("*.whl")
    return wheel


def fresh_venv(folder: Path) -> Path:
    """A new venv that sees this interpreter's installed dependencies (a .pth file; the
    ``.pth`` files there, such as an editable i2i's, are not run) but no i2i of its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    host = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "_i2i_test_dependencies.pth").write_text("\n".join(host) + "\n")
    return python


@pytest.mark.workflow
def test_the_installed_wheel_restyles_the_sample_from_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {
        "i2i/workflow/Snakefile",
        "i2i/workflow/rules/hooks.smk",
        "i2i/workflow/scripts/gallery.py",
        "i2i/workflow/schemas/config.schema.yaml",
        "i2i/workflow/profiles/default/config.yaml",
        "i2i/workflow/config.yaml",
        "i2i/workflow/styles.yaml",
        "i2i/workflow/sample/albums/Space Coast/falcon9_launch.jpg",
        "snakemake_logger_plugin_i2i/__init__.py",
    } <= names
    assert not {n for n in names if n.endswith("setup.py") or "__pycache__" in n}
    python = fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    # --ignore-installed: an i2i-workflow installed where the dependencies are (an editable
    # one) is neither replaced nor uninstalled.
    install = ["install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)]
    run([str(python), "-m", "pip", *install], tmp_path, env)
    where = run([str(python), "-c", "import i2i; print(i2i.__file__)"], tmp_path, env).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv")

    library = tmp_path / "library"
    library.mkdir()
    run(["i2i", "init", "--sample"], library, env)
    with (library / "config.yaml").open("a", encoding="utf-8") as config:
        config.write(f"styles: {STYLES}\n")
    assert "FAIL" not in run(["i2i", "check"], library, env).stdout
    result = run(["i2i", "run", "--cores", "2"], library, env)
    assert "i2i/workflow/profiles/default" in result.stdout + result.stderr
    count = sample_photos() * len(STYLES)
    assert published(library) == {"images": count, "markers": count, "index": 1}


HOST_SNAKEFILE = """\
from i2i.core.resources import hooks_file, snakefile


configfile: "config.yaml"


module i2i:
    snakefile:
        str(snakefile())
    config:
        config


use rule * from i2i


include: hooks_file()
"""


@pytest.mark.workflow
def test_a_module_workflow_runs_the_sample_with_the_i2i_handlers(tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(SAMPLE, host / "albums")
    (host / "albums" / "Space Coast" / "broken.jpg").write_bytes(b"not a photo")
    (host / "Snakefile").write_text(HOST_SNAKEFILE, encoding="utf-8")
    config = {"albums_dir": "albums", "styles": STYLES[:1]}
    (host / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    # A stop file left by an earlier run: the onstart handler removes it.
    (host / ".i2i").mkdir()
    (host / ".i2i" / "stop").write_text("stop requested\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "i2i.cli", "run", "--snakefile", "Snakefile", "--cores", "2"]
    result = run(command, host, env)
    assert not (host / ".i2i" / "stop").exists(), "onstart did not run"
    assert "1 set aside" in result.stdout + result.stderr, "onsuccess did not run"
    count = sample_photos()
    assert published(host) == {"images": count, "markers": count, "index": 1}
