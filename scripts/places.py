"""Snakemake entry point of rule places."""

from i2i.files import read_json, write_json
from i2i.logs import job
from i2i.places import locate

with job(snakemake.log, snakemake.input.metadata):
    settings = snakemake.params.places
    record = locate(read_json(snakemake.input.metadata), settings["providers"], settings)
    write_json(snakemake.output[0], record)
