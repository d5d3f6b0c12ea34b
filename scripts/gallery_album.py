"""Snakemake entry point of rule gallery_album: build one album's page and images under the
gallery root; for a target that is not a local folder, upload what it wrote."""

from pathlib import Path

from i2i.core.files import read_json, write_json
from i2i.core.paths import FINAL
from i2i.run.logs import job
from i2i.run.provenance import job_config
from i2i.stages.gallery.build import build_album
from i2i.stages.gallery.keys import gallery_settings
from i2i.stages.gallery.upload import site_files, upload_site

with job(snakemake.log, f"album {snakemake.wildcards.album}"):
    root = Path(snakemake.params.root)
    catalog = read_json(snakemake.input.catalog)
    originals = dict(zip(snakemake.params.photos, snakemake.input.originals, strict=True))
    # Uploaded: the published images are not in this folder; they are the finals, byte for byte.
    sources = {
        info["key"]: FINAL.format(album=catalog["album"], style=style, photo=entry["photo"])
        for entry in catalog["photos"]
        for style, info in entry["styles"].items()
        if snakemake.params.upload and info
    }
    built = build_album(
        catalog,
        root,
        originals,
        gallery_settings(snakemake.params.settings),
        prefix=snakemake.params.prefix,
        sources=sources,
    )
    keys = [*built["pages"], *built["assets"]]
    record = {"root": str(root), **built, "files": site_files(root, keys)}
    if snakemake.params.upload:
        publish = job_config(snakemake.config, "gallery_album")["publish"]
        upload_site(root, keys, publish)
        record["target"] = publish["target"]
    write_json(snakemake.output[0], record)
