rule publish:
    """Put one final image at the publish target; the marker is written after it is verified."""
    input:
        final="results/final/{album}/{style}/{photo}.webp",
    output:
        "results/published/{album}/{style}/{photo}.json",
    log:
        "logs/publish/{album}/{style}/{photo}.log",
    params:
        settings=output_settings("publish"),
        code=rule_code("publish"),
    run:
        image_job(jobs.publish, log, input, output, params, wildcards)


rule gallery_album:
    """One album's page, image sizes, original copies and cover for a file:// target."""
    input:
        catalog="results/catalog/albums/{album}.json",
        originals=lambda wc: per_photo(
            "results/preprocessed/{album}/{photo}.webp", wc.album
        ),
        templates=sorted(
            str(p)
            for p in Path(workflow.basedir, "i2i", "templates").glob("[!.]*")
            if p.is_file()
        ),
    output:
        "results/published/gallery/{album}.json",
    log:
        "logs/gallery/{album}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=TARGET.location,
        photos=lambda wc: [p.photo for p in accepted_photos(wc.album)],
        # gallery.covers counts for this album's own entry only.
        settings=lambda wc: provenance.output_settings(
            {
                **config,
                "gallery": {
                    **config["gallery"],
                    "covers": {
                        a: c
                        for a, c in config["gallery"]["covers"].items()
                        if a == wc.album
                    },
                },
            },
            "gallery_album",
        ),
        code=rule_code("gallery"),
    script:
        "../scripts/gallery_album.py"


rule gallery:
    """The gallery's index page for a file:// target: every album the inventory took, so it
    never waits for an album that failed (each album's own rule writes its cover)."""
    input:
        inventory=INVENTORY,
        templates=sorted(
            str(p)
            for p in Path(workflow.basedir, "i2i", "templates").glob("[!.]*")
            if p.is_file()
        ),
    output:
        "results/published/gallery.json",
    log:
        "logs/gallery/index.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=TARGET.location,
        styles=sorted(STYLES),
        settings=output_settings("gallery"),
        code=rule_code("gallery"),
    script:
        "../scripts/gallery.py"


localrules:
    archive,


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
