"""Snakemake entry point of rule catalog."""

from i2i.catalog import master_catalog, photo_entry
from i2i.files import read_json, write_json
from i2i.logs import job

with job(snakemake.log, snakemake.output[0]):
    inputs = snakemake.input
    entries = [
        photo_entry(album, photo, read_json(m), read_json(p), read_json(c))
        for (album, photo), m, p, c in zip(
            snakemake.params.photos, inputs.metadata, inputs.places, inputs.captions, strict=True
        )
    ]
    manifests = [read_json(path) for path in inputs.manifests]
    write_json(snakemake.output[0], master_catalog(entries, manifests))
