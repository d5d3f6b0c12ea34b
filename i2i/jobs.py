"""Bodies of the per-image rules, run inside the Snakemake process (``run:`` blocks).

A ``script:`` job starts a Python process that imports the stage modules again; for the
sub-second image jobs of this workflow that start-up cost several times the work
(bench/overhead.py). These functions take the rule's Snakemake ``input``, ``params`` and
``wildcards`` objects (read by name), read the input files, call the stage and write the
output, so each per-image rule's ``run:`` block is a single call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from i2i.captions import make_caption
from i2i.files import read_json, write_json
from i2i.flux_client import render
from i2i.metadata import read_metadata
from i2i.places import locate
from i2i.publish import publish_to_marker
from i2i.watermark import watermark as draw_and_tag

Path = str | os.PathLike[str]


def metadata(photo: Path, output: Path, source_ref: str) -> None:
    """rule metadata: the photo's metadata record."""
    write_json(output, read_metadata(photo, source_ref))


def places(metadata_file: Path, output: Path, settings: Mapping[str, Any]) -> None:
    """rule places: the places record from the metadata record's GPS position."""
    write_json(output, locate(read_json(metadata_file), settings["providers"], settings))


def captions(inputs: Any, output: Path, params: Any) -> None:
    """rule captions: the watermark text record (inputs: metadata, places)."""
    record = make_caption(
        read_json(inputs.metadata), read_json(inputs.places), params.watermark, params.ollama
    )
    write_json(output, record)


def watermark(inputs: Any, output: Path, params: Any) -> None:
    """rule watermark: the final image (inputs: styled, metadata, caption).

    The source reference for the EXIF comes from the metadata record, not a per-job param:
    every param function costs Snakemake time per job when it builds the DAG.
    """
    caption = read_json(inputs.caption)["watermark_text"]
    metadata_record = read_json(inputs.metadata)
    draw_and_tag(
        inputs.styled,
        output,
        metadata_record,
        caption,
        params.watermark,
        metadata_record["source_path"],
        params.keep_gps,
    )


def publish(final: Path, marker: Path, wildcards: Any, params: Any) -> None:
    """rule publish: upload one final image and write its marker once verified."""
    publish_to_marker(
        final, marker, wildcards.album, wildcards.photo, wildcards.style, params.publish
    )


def stylize_flux(source: Path, output: Path, wildcards: Any, params: Any) -> None:
    """rule stylize_flux: hand the image to the run's FLUX worker (no torch in this process)."""
    render(source, output, wildcards.style, params.style, params.flux, params.run_dir)
