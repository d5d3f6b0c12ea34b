"""Snakemake entry point of rule captions."""

from i2i.captions import make_caption
from i2i.files import read_json, write_json
from i2i.logs import job

with job(snakemake.log, snakemake.input.metadata):
    record = make_caption(
        read_json(snakemake.input.metadata),
        read_json(snakemake.input.places),
        snakemake.params.watermark,
        snakemake.params.ollama,
    )
    write_json(snakemake.output[0], record)
