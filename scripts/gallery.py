"""Snakemake entry point of rule gallery (the index page)."""

from pathlib import Path

from i2i.files import read_json, write_json
from i2i.gallery import build_index, planned_keys
from i2i.logs import job

with job(snakemake.log, snakemake.params.root):
    root = Path(snakemake.params.root)
    photos = read_json(snakemake.input[0])["photos"]
    albums = planned_keys(photos, snakemake.params.styles, snakemake.config["publish"])
    page = build_index(albums, root)
    write_json(snakemake.output[0], {"root": str(root), "pages": [page]})
