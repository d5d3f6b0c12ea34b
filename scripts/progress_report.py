"""Snakemake entry point of rule progress_report."""

import os
from pathlib import Path

from i2i.core import paths
from i2i.core.files import read_json, write_bytes
from i2i.run.logs import job
from i2i.stages.library.albums import Photo
from i2i.stages.report import format_html, summarise

with job(snakemake.log, snakemake.output[0]):
    inventory = read_json(paths.INVENTORY)
    photos = [Photo(p["album"], p["photo"], Path(p["file"])) for p in inventory["photos"]]
    rows = summarise(Path.cwd(), photos, snakemake.params.styles)
    page = format_html(rows, os.cpu_count() or 1, inventory["rejected"])
    write_bytes(snakemake.output[0], page.encode("utf-8"))
