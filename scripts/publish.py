"""Snakemake entry point of rule publish: the marker is written only after a verified upload."""

from i2i.logs import job
from i2i.publish import publish_to_marker

with job(snakemake.log, snakemake.input[0]):
    w = snakemake.wildcards
    publish_to_marker(
        snakemake.input[0], snakemake.output[0], w.album, w.photo, w.style, snakemake.params.publish
    )
