"""Snakemake entry point of rule gallery."""

from pathlib import Path

from i2i.files import read_json, write_json
from i2i.gallery import build_gallery
from i2i.logs import job

with job(snakemake.log, snakemake.params.root):
    root = Path(snakemake.params.root)
    pages = build_gallery(read_json(snakemake.input[0]), root)
    write_json(snakemake.output[0], {"root": str(root), "pages": pages})
