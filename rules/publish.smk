from i2i.stages.gallery.pages import TEMPLATES


rule publish:
    """Put one final image at the publish target; the marker is written after it is verified."""
    input:
        final=paths.FINAL,
    output:
        paths.PUBLISHED,
    log:
        "logs/publish/{album}/{style}/{photo}.log",
    params:
        settings=output_settings("publish"),
        code=rule_code("publish"),
    run:
        image_job(jobs.publish, log, input, output, params, wildcards)


# The gallery is built in the target's folder when it is a local one (file://), else in a
# local folder laid out like the target (s3://), from which each gallery job uploads what it
# wrote.
GALLERY_ROOT = TARGET.folder or paths.GALLERY_STAGING
UPLOAD_GALLERY = TARGET.folder is None
# The page templates: an edit there reruns the gallery rules alone.
GALLERY_TEMPLATES = sorted(
    inside_workdir(p) for p in TEMPLATES.glob("[!.]*") if p.is_file()
)


rule gallery_album:
    """One album's page, image sizes, original copies and cover (uploaded unless the target is
    a local folder)."""
    input:
        catalog=paths.ALBUM_CATALOG,
        originals=lambda wc: per_photo(paths.PREPROCESSED, wc.album),
        # Not a local folder: the images are read from the finals (the copies are remote).
        finals=lambda wc: per_style(paths.FINAL, wc.album) if UPLOAD_GALLERY else [],
        templates=GALLERY_TEMPLATES,
    output:
        paths.GALLERY_ALBUM,
    log:
        "logs/gallery/{album}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=GALLERY_ROOT,
        prefix=TARGET.prefix,
        upload=UPLOAD_GALLERY,
        photos=lambda wc: [p.photo for p in accepted_photos(wc.album)],
        settings=lambda wc: provenance.gallery_album_settings(config, wc.album),
        code=rule_code("gallery"),
    script:
        "../scripts/gallery_album.py"


rule gallery:
    """The gallery's index page (uploaded unless the target is a local folder): every album
    the inventory took, so it never waits for an album that failed (each album's own rule
    writes its cover)."""
    input:
        templates=GALLERY_TEMPLATES,
    output:
        paths.GALLERY,
    log:
        "logs/gallery/index.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=GALLERY_ROOT,
        prefix=TARGET.prefix,
        upload=UPLOAD_GALLERY,
        styles=sorted(STYLES),
        settings=output_settings("gallery"),
        inventory=inventory_digest("photos"),
        code=rule_code("gallery"),
    script:
        "../scripts/gallery.py"


# publish.prune: remove from the target the images and gallery files that no current photo,
# style or album maps to (what `i2i publish --dry-run` lists as removed). It is the last job of
# a run: it waits for every image, album page and the index to be published (an unpublished one
# holds it back, so nothing a page may still show is deleted), and reruns when what it waits
# for changes, e.g. a photo leaves the library. The rule exists only while
# publish.prune is true (all_targets then asks for it), so it can never run otherwise.
if config["publish"]["prune"]:

    rule prune:
        """Remove from the target what no longer belongs to the library; list it in the marker."""
        input:
            markers=lambda wc: per_style(paths.PUBLISHED),
            albums=lambda wc: [
                paths.path(paths.GALLERY_ALBUM, album) for album in accepted_albums()
            ],
            index=paths.GALLERY,
        output:
            paths.PRUNED,
        log:
            "logs/publish/prune.log",
        conda:
            "../envs/i2i.yaml"
        params:
            styles=sorted(STYLES),
            settings=output_settings("prune"),
            inventory=inventory_digest("photos"),
        script:
            "../scripts/prune.py"


# The gallery's pages and the archive are light file work: on a cluster they run where
# Snakemake runs, like the catalogs.
localrules:
    archive,
    gallery_album,
    gallery,


# Zip results/ into archive/i2i_YYYYmmdd_HHMMSS.zip, verify it, then remove what it archived.
# No outputs: it runs only when asked for by name (snakemake archive).
rule archive:
    log:
        "logs/archive.log",
    conda:
        "../envs/i2i.yaml"
    params:
        results="results",
        archive="archive",
    script:
        "../scripts/archive.py"
