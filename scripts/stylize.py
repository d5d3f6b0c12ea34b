"""Snakemake entry point of rule stylize_classic."""

from i2i.logs import job
from i2i.stylize import stylize

with job(snakemake.log, snakemake.input[0]):
    stylize(snakemake.input[0], snakemake.output[0], snakemake.params.style, snakemake.threads)
