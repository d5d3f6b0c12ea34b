"""Snakemake entry point of rule progress_report."""

from pathlib import Path

from i2i.files import write_bytes
from i2i.logs import job
from i2i.progress import format_html, summarise

with job(snakemake.log, snakemake.output[0]):
    rows = summarise(Path.cwd(), snakemake.params.photos, snakemake.params.styles)
    write_bytes(snakemake.output[0], format_html(rows, snakemake.params.cores).encode("utf-8"))
