"""Bodies of the per-image rules, run by the run's worker processes (:mod:`i2i.run.workers`).

A ``script:`` job starts a Python process that imports the stage modules again; for the
sub-second image jobs of this workflow that start-up cost several times the work
(bench/overhead.py). Each per-image rule's ``run:`` block hands one of these functions to a
resident worker instead. They all take the job's named inputs, its output, params, wildcards
(plain mappings) and the config, read the input files, call the stage and write the output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from i2i import backends
from i2i.core.files import read_json, write_json
from i2i.run.resident_client import render
from i2i.stages.captions import make_caption
from i2i.stages.metadata import makernotes
from i2i.stages.metadata.read import read_metadata
from i2i.stages.places import locate
from i2i.stages.preprocess import preprocess as prepare
from i2i.stages.publish import publish_to_marker
from i2i.stages.stylize import stylize
from i2i.stages.watermark import watermark as draw_and_tag

Path = str | os.PathLike[str]
Files = Mapping[str, str]
Values = Mapping[str, Any]
Config = Mapping[str, Any]

log = logging.getLogger(__name__)


def metadata(inputs: Files, output: str, params: Values, wildcards: Values, config: Config) -> None:
    """rule metadata: the photo's metadata record, with what Apple Photos knows in Photos mode."""
    reader = makernotes.reader_named(params.get("maker_notes", "none"))
    record = read_metadata(
        inputs["photo"], params["source_ref"], params.get("apple_photos"), reader
    )
    write_json(output, record)


def places(inputs: Files, output: str, params: Values, wildcards: Values, config: Config) -> None:
    """rule places: the places record from the metadata record's GPS position."""
    settings = config["places"]
    write_json(output, locate(read_json(inputs["metadata"]), settings["providers"], settings))


def captions(inputs: Files, output: str, params: Values, wildcards: Values, config: Config) -> None:
    """rule captions: the watermark text record from the metadata and places records."""
    metadata_record, places_record = read_json(inputs["metadata"]), read_json(inputs["places"])
    record = make_caption(metadata_record, places_record, config["watermark"], config["ollama"])
    write_json(output, record)


def preprocess(
    inputs: Files, output: str, params: Values, wildcards: Values, config: Config
) -> None:
    """rule preprocess: the oriented, resized WebP the styles start from."""
    settings = config["preprocess"]
    prepare(inputs["photo"], output, settings["long_side"], settings["quality"])


def stylize_pool(
    inputs: Files, output: str, params: Values, wildcards: Values, config: Config
) -> None:
    """rules of the pool style backends (stylize_classic, plugins): one preprocessed photo in
    one style."""
    backends.load(config["style_backends"])
    photo = f"{wildcards['album']}/{wildcards['photo']}"
    stylize(inputs["preprocessed"], output, params["style"], 1, wildcards["style"], photo)


def watermark(
    inputs: Files, output: str, params: Values, wildcards: Values, config: Config
) -> None:
    """rule watermark: the final image from the styled image, metadata and caption."""
    caption = read_json(inputs["caption"])["watermark_text"]
    draw_and_tag(
        inputs["styled"],
        output,
        read_json(inputs["metadata"]),
        caption,
        config["watermark"],
        keep_gps=config["publish"]["keep_gps"],
    )


def publish(inputs: Files, output: str, params: Values, wildcards: Values, config: Config) -> None:
    """rule publish: upload one final image and write its marker once verified."""
    album, photo, style = wildcards["album"], wildcards["photo"], wildcards["style"]
    publish_to_marker(inputs["final"], output, album, photo, style, config["publish"])


def stylize_resident(
    inputs: Files, output: str, params: Values, wildcards: Values, config: Config
) -> None:
    """The rule of a resident backend (``stylize_flux``): hand the image to the run's worker of
    that backend (no model in this process)."""
    chosen = backends.backend(params["style"]["backend"])
    section = config.get(chosen.section, {})
    render(inputs["preprocessed"], output, wildcards["style"], params["style"], section)
