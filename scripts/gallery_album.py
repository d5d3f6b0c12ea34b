"""Snakemake entry point of rule gallery_album."""

from pathlib import Path

from i2i.files import read_json, write_json
from i2i.gallery import build_album, gallery_settings
from i2i.logs import job

with job(snakemake.log, f"album {snakemake.wildcards.album}"):
    root = Path(snakemake.params.root)
    originals = dict(zip(snakemake.params.photos, snakemake.input.originals, strict=True))
    built = build_album(
        read_json(snakemake.input.catalog),
        root,
        originals,
        gallery_settings(snakemake.params.settings),
    )
    write_json(snakemake.output[0], {"root": str(root), **built})
