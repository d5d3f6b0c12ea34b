"""Snakemake entry point of rule gallery (the index page)."""

from pathlib import Path

from i2i.files import read_json, write_json
from i2i.gallery import build_index, gallery_settings, planned_keys
from i2i.logs import job

with job(snakemake.log, snakemake.params.root):
    root = Path(snakemake.params.root)
    photos = read_json(snakemake.input.inventory)["photos"]
    albums = planned_keys(photos, snakemake.params.styles, snakemake.params.settings["publish"])
    page = build_index(albums, root, gallery_settings(snakemake.params.settings))
    write_json(snakemake.output[0], {"root": str(root), "pages": [page]})
