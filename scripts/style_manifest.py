"""Snakemake entry point of rule style_manifest."""

from i2i.core.files import read_json, write_json
from i2i.run.logs import job
from i2i.stages.catalog import style_manifest

with job(snakemake.log, f"style {snakemake.wildcards.style}"):
    markers = [read_json(path) for path in snakemake.input]
    write_json(snakemake.output[0], style_manifest(snakemake.wildcards.style, markers))
