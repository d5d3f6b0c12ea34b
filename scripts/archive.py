"""Snakemake entry point of rule archive."""

from i2i.run.logs import job
from i2i.stages.archive import archive_results

with job(snakemake.log, "archive"):
    archive_results(snakemake.params.results, snakemake.params.archive)
