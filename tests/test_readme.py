"""Every shell example in README.md runs as written, and the README's figures match a run.

The fenced shell blocks of the README are split into commands (line continuations joined,
comments dropped). Each command is either run here, in a group below, or excluded with the
reason in ``EXCLUDED``; a command that is neither fails ``test_every_readme_example_is_run_or_
excluded``, so a new example has to be classified, and an entry whose command left the README
fails it too. The sample is built once per module (``snakemake --cores 2`` in a copy of the
workflow), and the examples run against that folder in README order, most of them as no-ops or
small rebuilds. The README's job count, DAG node count, stage table and gallery paths are read
from the README and checked against the build, so the text cannot drift from the workflow.

Commands run through ``bash`` in the folder the previous command of their group left (``cd``
carries over). ``snakemake`` and ``i2i`` are this interpreter's (tests/conftest.py keeps
Snakemake from waiting for a Slurm controller). FLUX examples run on the tiny random model and
LoRAs of tests/flux_models.py in place of the real weights and the Kontext-Style LoRAs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLE, copy_workflow

README = REPO / "README.md"
SHELLS = {"sh", "bash", "shell", "console"}

# Commands that are not run here, each with why (keyed by the command as the README has it).
EXCLUDED: dict[str, str] = {
    "make run": "creates .venv and pip-installs i2i (network); its workflow part, snakemake "
    "--cores all on the sample, is this module's build (measured by hand for the README: "
    "43 s on a fresh clone, 2 cores)",
    "make test": "how CI runs the tests (.ci/run), this module included",
    "pip install i2i-workflow": "needs PyPI; tests/test_install.py builds the wheel, installs it "
    "into a fresh venv and runs i2i init --sample and i2i run from it",
    'make photos LIBRARY="$HOME/Pictures/Photos Library.photoslibrary"': "needs a real Apple "
    "Photos library and pip-installs the photos extra; the export and run are tested on the "
    "osxphotos fixture library by tests/test_apple_photos.py",
    "pip install torch": "pip install (network); CI installs torch through make test",
    "pip install -e '.[flux]'": "pip install (network); CI installs the flux extra through "
    "make test",
    "export HF_TOKEN=hf_…": "a placeholder secret for the gated Hugging Face model; the tests "
    "are offline and use the tiny local FLUX model instead",
    "export I2I_SLURM_ACCOUNT=myproject": "sets the account for the Slurm profile, excluded below",
    "snakemake --workflow-profile profiles/slurm": "needs a Slurm cluster; tests/test_slurm.py "
    "starts a one-node cluster and runs the profile (minutes, so not repeated here)",
    "make lint": "CI runs it after the tests (.ci/run)",
    "make format": "rewrites the sources in place; make lint checks the same formatting",
}

# The commands each test below runs, in the order it runs them.
WITHOUT_A_CLONE = ("i2i init --sample demo && cd demo", "i2i run --cores 2")
EVERYDAY = (
    "snakemake",
    "snakemake -n",
    "snakemake results/catalog/styles/oil_paint.json",
    "snakemake --rulegraph | dot -Tsvg > rules.svg",
    "snakemake --report report.html",
)
REBUILD_ONE_STYLE = (
    "rm -rf results/{styled,final,published}/*/oil_paint results/catalog/styles/oil_paint.json",
    "snakemake results/catalog/styles/oil_paint.json",
)
OWN_LIBRARY = (
    "snakemake --config albums_dir=/path/to/albums",
    "snakemake --config 'styles=[oil_paint,watercolour]'",
    "snakemake --configfile my-config.yaml",
)
FLUX_STYLES = (
    "i2i check --configfile my.yaml",
    "snakemake --config 'styles=[kontext-ghibli,kontext-van-gogh,oil_paint]'",
)
RUN = (*WITHOUT_A_CLONE, *EVERYDAY, *REBUILD_ONE_STYLE, *OWN_LIBRARY, *FLUX_STYLES)

# Placeholders in run examples, replaced by what the test makes for them.
ALBUMS_PLACEHOLDER = "/path/to/albums"
FLUX_LORAS = {"kontext-ghibli": "ghibli", "kontext-van-gogh": "van-gogh"}


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks whose info string is a shell."""
    blocks, body, language = [], None, ""
    for line in text.splitlines():
        fence = re.match(r"^(```|~~~)\s*(\S*)", line)
        if fence and body is None:
            body, language = [], fence.group(2).lower()
        elif fence and not fence.group(2):
            if language in SHELLS:
                blocks.append("\n".join(body))
            body = None
        elif body is not None:
            body.append(line)
    assert body is None, "README.md has an unclosed code fence"
    return blocks


def without_comment(line: str) -> str:
    """``line`` without its shell comment: a ``#`` that starts a word, outside quotes."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def commands(block: str) -> list[str]:
    """The commands of one shell block: continuation lines joined, comments and blanks left
    out (a line that is only a comment continues the comment above it, not the command)."""
    found, pending = [], ""
    for raw in block.splitlines():
        if raw.rstrip().endswith("\\") and not without_comment(raw).endswith("#"):
            pending += raw.rstrip()[:-1].strip() + " "
            continue
        command = (pending + without_comment(raw).strip()).strip()
        pending = ""
        if command:
            found.append(command)
    assert not pending.strip(), f"a continuation line ends the block: {pending!r}"
    return found


def readme_commands() -> list[str]:
    return [
        c for block in shell_blocks(README.read_text(encoding="utf-8")) for c in commands(block)
    ]


def readme_section(title: str) -> str:
    """The text of the README section whose heading is ``title`` (up to the next heading)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", text, re.S | re.M)
    assert match, f"no section {title!r} in README.md"
    return match.group(1)


def readme_figure(pattern: str) -> re.Match:
    match = re.search(pattern, README.read_text(encoding="utf-8"))
    assert match, f"README.md no longer says {pattern!r}"
    return match


class Shell:
    """Runs README commands with bash, as a user would type them, carrying ``cd`` over."""

    def __init__(self, bin_dir: Path, workflow: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(workflow),
            "PYTHONHASHSEED": "0",
        }
        self.state = bin_dir / "cwd"

    def run(self, command: str, *, returncode: int | None = 0, **placeholders: str):
        assert command in RUN, f"not a README example this module runs: {command!r}"
        script = command
        for placeholder, value in placeholders.items():
            script = script.replace(placeholder, shlex.quote(value))
        result = subprocess.run(
            [
                "bash",
                "-c",
                f'set -o pipefail\n{script}\nstatus=$?\npwd > "{self.state}"\nexit $status',
            ],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = result.stdout + result.stderr
        if returncode is not None:
            assert result.returncode == returncode, (
                f"{command} exited {result.returncode}:\n{output[-6000:]}"
            )
        self.cwd = Path(self.state.read_text(encoding="utf-8").strip())
        return result.returncode, output


def shims(folder: Path) -> Path:
    """``snakemake`` and ``i2i`` of this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {
        "snakemake": f'exec "{sys.executable}" -m snakemake "$@"',
        "i2i": f'exec "{sys.executable}" -m i2i.cli "$@"',
    }
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (folder / name).chmod(0o755)
    return folder


FLUX_ASSETS = """
import sys
from pathlib import Path
from flux_models import build_pipeline, save_random_lora
folder = Path(sys.argv[1])
build_pipeline("tiny").save_pretrained(folder / "model")
for index, name in enumerate(sys.argv[2:]):
    save_random_lora(folder / name, name, seed=100 + index)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The sample built once in a workflow copy (``snakemake --cores 2``): the copy, a shell in
    it, the build's output, and the FLUX stand-ins being built meanwhile."""
    root = tmp_path_factory.mktemp("readme")
    workdir = copy_workflow(root / "i2i")
    shell = Shell(shims(root / "bin"), workdir, workdir)
    flux = root / "flux"
    assets = subprocess.Popen(
        [sys.executable, "-c", FLUX_ASSETS, str(flux), *FLUX_LORAS.values()],
        env={**os.environ, "PYTHONPATH": f"{REPO / 'tests'}{os.pathsep}{REPO}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    result = subprocess.run(
        ["bash", "-c", "snakemake --cores 2"],
        cwd=workdir,
        env=shell.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    build = result.stdout + result.stderr
    assert result.returncode == 0, build[-6000:]
    yield {"workdir": workdir, "shell": shell, "build": build, "flux": flux, "assets": assets}
    if assets.poll() is None:
        assets.kill()
    assets.communicate()


def sample_photos() -> int:
    return sum(1 for p in SAMPLE.glob("*/*") if p.is_file())


def classic_styles() -> list[str]:
    registry = yaml.safe_load((REPO / "styles.yaml").read_text(encoding="utf-8"))["styles"]
    return [
        name for name, entry in registry.items() if entry.get("backend", "classic") == "classic"
    ]


def finished_jobs(output: str) -> int:
    """The job total of a run from its console's last progress line (``187/187 100%``)."""
    totals = re.findall(r"\b(\d+)/(\d+)\s+100%", output)
    assert totals, output[-3000:]
    done, total = map(int, totals[-1])
    assert done == total
    return total


def master(workdir: Path) -> dict:
    return json.loads((workdir / "results" / "catalog" / "master.json").read_text("utf-8"))


def digests(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths)}


def test_every_readme_example_is_run_or_excluded() -> None:
    found = readme_commands()  # one command may appear in two blocks; it is classified once
    neither = [c for c in found if c not in RUN and c not in EXCLUDED]
    assert not neither, (
        "README examples neither run nor excluded (add each to a group or to EXCLUDED with a "
        f"reason): {neither}"
    )
    assert not set(RUN) & set(EXCLUDED)
    stale = [c for c in (*RUN, *EXCLUDED) if c not in found]
    assert not stale, f"no longer in README.md: {stale}"
    assert all(reason.strip() for reason in EXCLUDED.values())


def test_commands_are_split_as_a_shell_reads_them() -> None:
    block = (
        "snakemake --rulegraph | dot > a.svg  # one node\n"
        "                                     # per rule\n"
        "echo 'a # b' \\\n  --flag   # note\n\n# only a comment\n"
    )
    assert commands(block) == ["snakemake --rulegraph | dot > a.svg", "echo 'a # b' --flag"]


def test_the_sample_build_matches_the_readme(built) -> None:
    workdir, build = built["workdir"], built["build"]
    figure = readme_figure(r"(\d+) photos × (\d+) styles = (\d+) jobs")
    photos, styles, jobs = map(int, figure.groups())
    assert (photos, styles) == (sample_photos(), len(classic_styles()))
    assert finished_jobs(build) == jobs

    nodes = int(
        readme_figure(r"(\d+)[\s#]+nodes[\s#]+for[\s#]+the[\s#]+\d+[\s#]+sample photos").group(1)
    )
    dag = subprocess.run(
        ["bash", "-c", "snakemake --dag"],
        cwd=workdir,
        env=built["shell"].env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    assert len(re.findall(r"^\s*\d+\[label", dag, re.M)) == nodes

    # The stage table: every results/ pattern names files the run made.
    table = readme_section("i2i — your photo library, restyled and published")
    patterns = re.findall(r"`(results/[^`]+)`", table)
    assert len(patterns) >= 15, patterns
    for pattern in patterns:
        wildcard = re.sub(r"\{\w+\}", "*", pattern)
        assert list(workdir.glob(wildcard)), f"README stage table: nothing at {pattern}"

    # What "make run" is said to leave, and the gallery's file names.
    for path in re.findall(r"`(results/[^`]+)`", readme_section("Two commands")):
        assert list(workdir.glob(path.replace("…", "*"))), f"README: nothing at {path}"
    publishing = readme_section("Publishing")
    gallery = re.search(r"`file://(results/\w+)`\): images at `([^`]+)`", publishing)
    assert gallery, "README no longer names the gallery folder and image names"
    folder, names = gallery.groups()
    for photo in master(workdir)["photos"]:
        for style in photo["styles"]:
            name = names.format(album=photo["album"], photo=photo["photo"], style=style)
            assert (workdir / folder / name).is_file(), name
    original = re.search(r"`(_gallery/)<photo>(\.original\.webp)`", publishing)
    assert original, "README no longer names the gallery's copy of the original"
    copies = list((workdir / folder).glob(f"*/{original.group(1)}*{original.group(2)}"))
    assert len(copies) == sample_photos()


def test_without_a_clone(built, tmp_path: Path) -> None:
    shell = Shell(built["shell"].state.parent, built["workdir"], tmp_path)
    init, run = WITHOUT_A_CLONE
    shell.run(init)
    demo = tmp_path / "demo"
    assert shell.cwd == demo
    assert (demo / "config.yaml").is_file()
    assert sorted(p.name for p in (demo / "albums").iterdir()) == sorted(
        p.name for p in SAMPLE.iterdir()
    )
    _, output = shell.run(run)
    jobs = int(readme_figure(r"(\d+) photos × (\d+) styles = (\d+) jobs").group(3))
    assert finished_jobs(output) == jobs
    assert (demo / "results" / "gallery" / "index.html").is_file()


def test_everyday_use(built) -> None:
    workdir, shell = built["workdir"], built["shell"]
    shell.cwd = workdir
    everything, dry_run, one_style, rulegraph, report = EVERYDAY
    for command in (everything, dry_run, one_style):
        _, output = shell.run(command)
        assert "Nothing to be done" in output, output[-3000:]
    shell.run(rulegraph)
    svg = (workdir / "rules.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "stylize_classic" in svg
    shell.run(report)
    assert (workdir / "report.html").stat().st_size > 10_000


def test_rebuild_one_style(built) -> None:
    workdir, shell = built["workdir"], built["shell"]
    shell.cwd = workdir
    finals = list(workdir.glob("results/final/*/oil_paint/*.webp"))
    assert len(finals) == sample_photos()
    before = digests(finals)
    remove, rebuild = REBUILD_ONE_STYLE
    shell.run(remove)
    assert not list(workdir.glob("results/*/*/oil_paint"))
    assert not (workdir / "results" / "catalog" / "styles" / "oil_paint.json").exists()
    _, output = shell.run(rebuild)
    assert finished_jobs(output) > sample_photos()
    assert digests(list(workdir.glob("results/final/*/oil_paint/*.webp"))) == before
    assert (workdir / "results" / "catalog" / "styles" / "oil_paint.json").is_file()


def test_your_own_library_and_config(built, tmp_path: Path) -> None:
    workdir, shell = built["workdir"], built["shell"]
    shell.cwd = workdir
    own_albums, some_styles, own_config = OWN_LIBRARY
    albums = tmp_path / "albums"
    (albums / "Holiday").mkdir(parents=True)
    shutil.copy(SAMPLE / "Côte d'Azur & Paris" / "cafe_creme.jpg", albums / "Holiday")
    shell.run(own_albums, **{ALBUMS_PLACEHOLDER: str(albums)})
    assert master(workdir)["albums"] == ["Holiday"]
    assert len(list(workdir.glob("results/final/Holiday/*/cafe_creme.webp"))) == len(
        classic_styles()
    )

    shell.run(some_styles)
    assert master(workdir)["styles"] == ["oil_paint", "watercolour"]
    assert len(master(workdir)["albums"]) == len(list(SAMPLE.iterdir()))

    # Merged over config.yaml: the same styles (no catalog rebuilt), another gallery title.
    own = "styles: [oil_paint, watercolour]\ngallery: {title: My own title}\n"
    (workdir / "my-config.yaml").write_text(own, "utf-8")
    shell.run(own_config)
    assert master(workdir)["styles"] == ["oil_paint", "watercolour"]
    assert "My own title" in (workdir / "results" / "gallery" / "index.html").read_text("utf-8")


def test_flux_styles_on_the_tiny_model(built) -> None:
    for module in ("torch", "diffusers", "transformers", "peft"):
        pytest.importorskip(module, reason=f"FLUX needs {module}: pip install 'i2i-workflow[flux]'")
    workdir, shell, flux = built["workdir"], built["shell"], built["flux"]
    shell.cwd = workdir
    output, _ = built["assets"].communicate(timeout=600)
    assert built["assets"].returncode == 0, output[-4000:]

    # The stand-ins: the tiny model in the config, local LoRAs at a small size in the registry.
    config = yaml.safe_load((workdir / "config.yaml").read_text("utf-8")) or {}
    config["flux"] = {"model": str(flux / "model"), "dtype": "float32"}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), "utf-8")
    registry = yaml.safe_load((workdir / "styles.yaml").read_text("utf-8"))
    for style, lora in FLUX_LORAS.items():
        lora_file = flux / lora / f"{lora}.safetensors"
        registry["styles"][style].update(lora={"path": str(lora_file)}, steps=2, size=64)
    (workdir / "styles.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True), "utf-8")
    styles = ["kontext-ghibli", "kontext-van-gogh", "oil_paint"]
    (workdir / "my.yaml").write_text(yaml.safe_dump({"styles": styles}), "utf-8")

    check, run = FLUX_STYLES
    returncode, output = shell.run(check, returncode=None)
    lines = output.strip().splitlines()
    assert f"OK   flux.model: local {flux / 'model'}" in lines, output
    for style in FLUX_LORAS:
        assert any(line.startswith(f"OK   style {style}: local ") for line in lines), output
    failed = [line for line in lines if line.startswith("FAIL")]
    assert all(line.startswith("FAIL gpu:") for line in failed), output  # no GPU: a FAIL line
    assert returncode == (1 if failed else 0), "i2i check exits 1 on a FAIL line"

    _, output = shell.run(run)
    assert master(workdir)["styles"] == sorted(styles)
    for style in FLUX_LORAS:
        assert len(list(workdir.glob(f"results/final/*/{style}/*.webp"))) == sample_photos()
