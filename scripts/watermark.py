"""Snakemake entry point of rule watermark."""

from i2i.files import read_json
from i2i.logs import job
from i2i.watermark import watermark

with job(snakemake.log, snakemake.input.styled):
    watermark(
        snakemake.input.styled,
        snakemake.output[0],
        read_json(snakemake.input.metadata),
        read_json(snakemake.input.caption)["watermark_text"],
        snakemake.params.watermark,
        snakemake.params.source_ref,
        snakemake.params.keep_gps,
    )
