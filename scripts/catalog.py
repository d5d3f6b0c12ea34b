"""Snakemake entry point of rule catalog."""

from i2i.core import paths
from i2i.core.files import read_json, write_json
from i2i.run.logs import job
from i2i.stages.catalog import master_catalog

with job(snakemake.log, snakemake.output[0]):
    albums = [read_json(path) for path in snakemake.input.albums]
    rejected = read_json(paths.INVENTORY)["rejected"]
    write_json(snakemake.output[0], master_catalog(albums, snakemake.params.styles, rejected))
