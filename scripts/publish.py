"""Snakemake entry point of rule publish."""

from i2i.files import write_json
from i2i.logs import job
from i2i.publish import publish

with job(snakemake.log, snakemake.input[0]):
    w = snakemake.wildcards
    marker = publish(snakemake.input[0], w.album, w.photo, w.style, snakemake.params.publish)
    write_json(snakemake.output[0], marker)
