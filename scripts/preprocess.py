"""Snakemake entry point of rule preprocess."""

from i2i.logs import job
from i2i.preprocess import preprocess

with job(snakemake.log, snakemake.input.photo):
    preprocess(
        snakemake.input.photo,
        snakemake.output[0],
        snakemake.params.long_side,
        snakemake.params.quality,
    )
