"""Snakemake entry point of rule archive."""

from i2i.archive import archive_results
from i2i.logs import job

with job(snakemake.log, "archive"):
    archive_results(snakemake.params.results, snakemake.params.archive)
