import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)

from snakemake.logging import logger

from i2i import I2IError, dag_gc, jobs, runcontrol
from i2i.config import load_registry, select_styles, validate_config
from i2i.export import discover
from i2i.flux_client import host_run_dir, stop
from i2i.logs import job_log, warnings_to_console
from i2i.preprocess import preprocess
from i2i.publish import parse_target
from i2i.stylize import stylize

warnings_to_console()
dag_gc.defer_while_building_dag()
try:
    config.update(validate_config(config))
    REGISTRY = load_registry(config["styles_file"])
    STYLES = select_styles(REGISTRY, config["styles"])
    LIBRARY = discover(config["albums_dir"], config["extensions"])
    TARGET = parse_target(config["publish"]["target"])
except I2IError as error:
    raise WorkflowError(str(error)) from None

PHOTOS = LIBRARY.by_key()
ALBUMS = LIBRARY.albums()
CLASSIC_STYLES = sorted(n for n, s in REGISTRY.items() if s["backend"] == "classic")
FLUX_STYLES = sorted(n for n, s in REGISTRY.items() if s["backend"] == "flux-kontext")
FLUX_RUN_DIR = ".i2i/worker"


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    album="[^/]+",
    photo="[^/]+",
    style="[^/]+",


def photo(wildcards):
    """The Photo behind ``{album}/{photo}``; a clear error when there is none."""
    try:
        return PHOTOS[(wildcards.album, wildcards.photo)]
    except KeyError:
        raise WorkflowError(
            f"no photo {wildcards.photo!r} in album {wildcards.album!r} of {config['albums_dir']}"
        ) from None


def source_photo(wildcards):
    return str(photo(wildcards).path)


def source_ref(wildcards):
    """``album/file name`` of the source photo, recorded in its metadata (``source_path``)."""
    found = photo(wildcards)
    return f"{found.album}/{found.path.name}"


def style_definition(wildcards):
    return REGISTRY[wildcards.style]


def per_photo(pattern, album=None, **fields):
    """``pattern`` filled for every photo (of one album when given), plus ``fields``."""
    return [
        pattern.format(album=p.album, photo=p.photo, **fields)
        for p in LIBRARY.photos
        if album is None or p.album == album
    ]


def photo_keys():
    return [[p.album, p.photo] for p in LIBRARY.photos]


def all_targets():
    targets = ["results/catalog/master.json"]
    targets += [f"results/report/contact_sheets/{album}.jpg" for album in ALBUMS]
    targets.append("results/report/progress.html")
    if TARGET.scheme == "file":
        targets.append("results/published/gallery.json")
    return targets


def stop_flux_worker():
    """The run is over: free the GPU now instead of after the worker's idle timeout."""
    if stop(host_run_dir(FLUX_RUN_DIR)):
        logger.info("stopped the FLUX worker")
