"""A missing optional part is one line at the start: osxphotos for an Apple Photos library, AWS
credentials for an s3:// target. Snakemake stops before any job, `i2i check` and `i2i publish`
say the same line, and nobody sees a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from i2i.cli import main
from i2i.targets.s3 import NO_CREDENTIALS, clear_s3_clients

from conftest import copy_workflow

PHOTOS_LINE = (
    "photos.library is set but osxphotos is not installed: pip install 'i2i-workflow[photos]'"
)
# Snakemake with a module hidden: `import osxphotos` fails, find_spec finds nothing.
HIDDEN = (
    "import sys; sys.modules[{name!r}] = None; sys.argv[0] = 'snakemake'; "
    "from snakemake.cli import main; main()"
)


def no_aws(tmp_path: Path) -> dict[str, str]:
    """The environment with no AWS credentials anywhere: no variables, empty files, no role."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        env[name] = str(empty)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def override(workdir: Path, values: dict[str, object]) -> Path:
    """A config file merged over the workflow's config.yaml."""
    path = workdir / "override.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def snakemake_run(
    workdir: Path, config: Path, env: dict[str, str], hide: str = ""
) -> subprocess.CompletedProcess[str]:
    """A real Snakemake run of ``workdir`` with ``config``; ``hide`` names a module made
    unimportable."""
    start = ["-c", HIDDEN.format(name=hide)] if hide else ["-m", "snakemake"]
    return subprocess.run(
        [sys.executable, *start, "--cores", "2", "--configfile", str(config)],
        cwd=workdir,
        env={**env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_one_line_and_no_job(run: subprocess.CompletedProcess[str], line: str) -> None:
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert output.count(line) == 1, output
    assert "Traceback" not in output, output


@pytest.mark.workflow
def test_a_photos_library_without_osxphotos_stops_the_run_in_one_line(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    config = override(workdir, {"photos": {"library": "Photos Library.photoslibrary"}})
    run = snakemake_run(workdir, config, dict(os.environ), hide="osxphotos")
    assert_one_line_and_no_job(run, PHOTOS_LINE)
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


@pytest.mark.workflow
def test_an_s3_target_without_credentials_stops_the_run_in_one_line(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "wf")
    config = override(workdir, {"publish": {"target": "s3://i2i-test-bucket/site"}})
    run = snakemake_run(workdir, config, no_aws(tmp_path))
    assert_one_line_and_no_job(run, NO_CREDENTIALS)
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


@pytest.fixture
def aws_cleared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """This process without AWS credentials, and no client cached from another test."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in no_aws(tmp_path).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    clear_s3_clients()


def cli_config(tmp_path: Path, repo: Path, **sections: object) -> Path:
    """``i2i --configfile`` over the sample albums, with ``sections`` merged in."""
    config = tmp_path / "c.yaml"
    base: dict[str, object] = {
        "albums_dir": str(repo / "sample" / "albums"),
        "styles_file": str(repo / "styles.yaml"),
        "places": {"cache": str(tmp_path / "cache" / "g.sqlite")},
    }
    config.write_text(yaml.safe_dump({**base, **sections}))
    return config


def test_check_and_publish_say_the_same_line_without_s3_credentials(
    repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    aws_cleared: None,
) -> None:
    config = cli_config(tmp_path, repo, publish={"target": "s3://i2i-test-bucket/site"})
    assert main(["-d", str(tmp_path), "--configfile", str(config), "check"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL publish: {NO_CREDENTIALS}\n" in out and out.count(NO_CREDENTIALS) == 1
    args = ["-d", str(tmp_path), "--configfile", str(config), "publish", "--dry-run"]
    assert main(args) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err + caplog.text
    assert output.count(NO_CREDENTIALS) == 1 and "Traceback" not in output
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [NO_CREDENTIALS]


def test_check_says_the_same_line_without_osxphotos(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "osxphotos", None)
    config = cli_config(
        tmp_path,
        repo,
        albums_dir=str(tmp_path / "exported"),
        photos={"library": str(tmp_path / "Photos Library.photoslibrary")},
        publish={"target": f"file://{tmp_path / 'site'}"},
    )
    assert main(["-d", str(tmp_path), "--configfile", str(config), "check"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL photos library: {PHOTOS_LINE}\n" in out and out.count(PHOTOS_LINE) == 1
