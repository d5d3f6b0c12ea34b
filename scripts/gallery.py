"""Snakemake entry point of rule gallery (the index page); upload it unless the target is a
local folder."""

from pathlib import Path

from i2i.core import paths
from i2i.core.files import read_json, write_json
from i2i.run.logs import job
from i2i.run.provenance import job_config
from i2i.stages.gallery.build import build_index
from i2i.stages.gallery.keys import gallery_settings, planned_keys
from i2i.stages.gallery.upload import site_files, upload_site

with job(snakemake.log, snakemake.params.root):
    root = Path(snakemake.params.root)
    photos = read_json(paths.INVENTORY)["photos"]
    albums = planned_keys(photos, snakemake.params.styles, snakemake.params.settings["publish"])
    page = build_index(
        albums, root, gallery_settings(snakemake.params.settings), snakemake.params.prefix
    )
    record = {"root": str(root), "pages": [page], "files": site_files(root, [page])}
    if snakemake.params.upload:
        publish = job_config(snakemake.config, "gallery")["publish"]
        upload_site(root, [page], publish)
        record["target"] = publish["target"]
    write_json(snakemake.output[0], record)
