"""Where the workflow's own files are: in a clone, or inside an installed wheel.

An installed wheel carries the workflow (Snakefile, rules, scripts, schemas, profiles, default
config and styles, the sample album) in ``i2i/workflow``, mapped in from the clone's top-level
layout when the wheel is built. In a clone (or an editable install) that folder does not exist
and the workflow is the repository root, the folder above the package.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGED_WORKFLOW = PACKAGE_DIR / "workflow"


def workflow_dir() -> Path:
    """The folder of the workflow's Snakefile, the base of every workflow-relative path."""
    if (PACKAGED_WORKFLOW / "Snakefile").is_file():
        return PACKAGED_WORKFLOW
    return PACKAGE_DIR.parent


def snakefile() -> Path:
    """The workflow's Snakefile (for ``snakemake -s`` and a host's ``module``)."""
    return workflow_dir() / "Snakefile"


def hooks_file() -> Path:
    """The Snakefile that installs i2i's onstart/onsuccess/onerror handlers in a host workflow
    that uses i2i as a ``module`` (Snakemake runs a module's own handlers only when it is the
    main Snakefile)."""
    return workflow_dir() / "rules" / "hooks.smk"


def profile(name: str = "default") -> Path:
    """One of the workflow's Snakemake profiles (a folder holding ``config.yaml``)."""
    return workflow_dir() / "profiles" / name


def schema(name: str) -> Path:
    """A JSON schema of the workflow (``config`` or ``styles``)."""
    return workflow_dir() / "schemas" / f"{name}.schema.yaml"


def default_config() -> Path:
    """The workflow's commented ``config.yaml``: every key at its default."""
    return workflow_dir() / "config.yaml"


def sample_albums() -> Path:
    """The bundled sample album folder."""
    return workflow_dir() / "sample" / "albums"


def styles_path(styles_file: str | os.PathLike[str], workdir: str | os.PathLike[str] = ".") -> Path:
    """The style registry that config key ``styles_file`` names: a relative path is looked up
    in the working folder, then in the workflow's folder (which holds the default
    ``styles.yaml``); an absolute path is taken as it is."""
    given = Path(styles_file)
    local = Path(workdir) / given
    if given.is_absolute() or local.exists():
        return local
    bundled = workflow_dir() / given
    return bundled if bundled.exists() else local
