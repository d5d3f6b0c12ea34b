"""Snakemake entry point of rule stylize_flux: hands the image to the FLUX worker.

Light on purpose: it imports no torch; the worker process holds the model for the whole run.
"""

from i2i.flux_client import render
from i2i.logs import job

with job(snakemake.log, snakemake.input[0]):
    render(
        snakemake.input[0],
        snakemake.output[0],
        snakemake.wildcards.style,
        snakemake.params.style,
        snakemake.config["flux"],
        snakemake.params.run_dir,
    )
