"""Snakemake entry point of rule album_catalog."""

from i2i.core.files import read_json, write_json
from i2i.run.logs import job
from i2i.stages.catalog import album_catalog, photo_entry

album = snakemake.wildcards.album
with job(snakemake.log, f"album {album}"):
    inputs = snakemake.input
    entries = [
        photo_entry(album, photo, read_json(m), read_json(p), read_json(c))
        for photo, m, p, c in zip(
            snakemake.params.photos, inputs.metadata, inputs.places, inputs.captions, strict=True
        )
    ]
    markers = [read_json(path) for path in inputs.markers]
    catalog = album_catalog(album, entries, markers, snakemake.params.styles)
    write_json(snakemake.output[0], catalog)
