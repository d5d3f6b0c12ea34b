"""Snakemake entry point of rule catalog."""

from i2i.catalog import master_catalog
from i2i.files import read_json, write_json
from i2i.logs import job

with job(snakemake.log, snakemake.output[0]):
    albums = [read_json(path) for path in snakemake.input.albums]
    rejected = read_json(snakemake.input.inventory)["rejected"]
    write_json(snakemake.output[0], master_catalog(albums, snakemake.params.styles, rejected))
