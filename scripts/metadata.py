"""Snakemake entry point of rule metadata."""

from i2i.files import write_json
from i2i.logs import job
from i2i.metadata import read_metadata

with job(snakemake.log, snakemake.input.photo):
    write_json(
        snakemake.output[0], read_metadata(snakemake.input.photo, snakemake.params.source_ref)
    )
