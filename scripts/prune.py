"""Snakemake entry point of rule prune (publish.prune): remove from the target what no current
photo, style or album maps to, one log line per object, and list it in the marker."""

from pathlib import Path

from i2i.core import paths
from i2i.core.files import read_json, write_json
from i2i.run.logs import job
from i2i.run.provenance import job_config
from i2i.stages.audit.keys import entries
from i2i.stages.audit.prune import prune
from i2i.stages.library.inventory import accepted

with job(snakemake.log, "prune"):
    settings = job_config(snakemake.config, "prune")["publish"]
    photos = sorted(accepted(read_json(paths.INVENTORY)))
    images = entries(Path.cwd(), photos, snakemake.params.styles, settings)
    removed = prune(Path.cwd(), images, settings)
    write_json(snakemake.output[0], {"target": settings["target"], "removed": removed})
