"""Snakemake entry point of rule contact_sheet."""

from i2i.run.logs import job
from i2i.stages.contact_sheet import contact_sheet

with job(snakemake.log, f"album {snakemake.wildcards.album}"):
    photos, styles = snakemake.params.photos, snakemake.params.styles
    finals = list(snakemake.input.finals)
    rows = [
        (photo, [snakemake.input.preprocessed[i], *finals[i :: len(photos)]])
        for i, photo in enumerate(photos)
    ]
    contact_sheet(rows, ["original", *styles], snakemake.output[0])
