"""``i2i init`` and ``i2i run``: a starter folder, and the packaged workflow run in it.

Installed from a wheel, the workflow's files live inside the package (``i2i.core.resources``);
these two commands let a user restyle a library from any folder, with no clone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from i2i import I2IError
from i2i.core import resources
from i2i.core.files import write_bytes

log = logging.getLogger("i2i.launch")

ALBUMS = "albums"
STARTER_HEADER = """\
# i2i settings for this folder (written by `i2i init`). `i2i run` here builds every style of
# every photo in the albums folder below; `i2i check` checks this file and the set-up. Every
# key has a default: uncomment a line (with its section) to change it. Relative paths are
# relative to this folder. `i2i styles` lists the styles; to change them, copy the bundled
# styles.yaml here (`i2i init --styles`) and edit it.

"""
_ALBUMS_LINE = re.compile(r"^# albums_dir: .*$", re.MULTILINE)
# The shipped config.yaml ends in `{}` so that, all comments, it still reads as a mapping.
_EMPTY_MAPPING = re.compile(r"^\{\}\n?", re.MULTILINE)


def starter_config(albums: str = ALBUMS) -> str:
    """The commented config that ``i2i init`` writes: the workflow's own ``config.yaml`` (the
    keys people change, commented) under a header of its own, with ``albums_dir`` set."""
    text = resources.default_config().read_text(encoding="utf-8")
    _, _, body = text.partition("\n\n")
    body, found = _ALBUMS_LINE.subn(f"albums_dir: {albums}", _EMPTY_MAPPING.sub("", body), count=1)
    if not found:
        raise I2IError(f"{resources.default_config()}: no albums_dir line to start from")
    return STARTER_HEADER + body.rstrip("\n") + "\n"


def init_folder(folder: Path, sample: bool = False, styles: bool = False) -> list[Path]:
    """Write a starter folder: ``config.yaml``, an ``albums`` folder (holding the bundled
    sample album when ``sample``) and, when ``styles``, a copy of the style registry. Returns
    what it wrote; an existing ``config.yaml`` is left alone (an error)."""
    config = folder / "config.yaml"
    if config.exists():
        raise I2IError(f"{config} exists: i2i init writes a new folder's config only")
    albums = folder / ALBUMS
    written = [config, albums]
    if sample:
        shutil.copytree(resources.sample_albums(), albums, dirs_exist_ok=True)
    else:
        albums.mkdir(parents=True, exist_ok=True)
    if styles:
        registry = resources.workflow_dir() / "styles.yaml"
        write_bytes(folder / registry.name, registry.read_bytes())
        written.append(folder / registry.name)
    write_bytes(config, starter_config().encode("utf-8"))
    return written


def snakemake_argv(directory: str, configfiles: Sequence[str], options: Sequence[str]) -> list[str]:
    """The Snakemake command line of ``i2i run``: the packaged workflow and its profile, run
    in ``directory``, with the user's Snakemake ``options`` last (a later option wins)."""
    argv = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(resources.snakefile()),
        "--directory",
        directory,
        "--workflow-profile",
        str(resources.profile()),
    ]
    for configfile in configfiles:
        argv += ["--configfile", configfile]
    return [*argv, *options]


def run_snakemake(argv: Sequence[str]) -> None:
    """Replace this process with Snakemake, so that Ctrl-C and signals reach it directly."""
    log.debug("running %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], list(argv))
