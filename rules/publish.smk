rule publish:
    """Put one final image at the publish target; the marker is written after it is verified."""
    input:
        "results/final/{album}/{style}/{photo}.webp",
    output:
        "results/published/{album}/{style}/{photo}.json",
    log:
        "logs/publish/{album}/{style}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        settings=output_settings("publish"),
        code=rule_code("publish"),
    run:
        with job_log(log[0], input[0]):
            jobs.publish(input[0], output[0], wildcards, config)


rule gallery_album:
    """One album's page and thumbnails for a file:// target."""
    input:
        "results/catalog/albums/{album}.json",
    output:
        "results/published/gallery/{album}.json",
    log:
        "logs/gallery/{album}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=TARGET.location,
        code=rule_code("gallery"),
    script:
        "../scripts/gallery_album.py"


rule gallery:
    """The gallery's index page for a file:// target: every album the inventory took, so it
    never waits for an album that failed."""
    input:
        INVENTORY,
    output:
        "results/published/gallery.json",
    log:
        "logs/gallery/index.log",
    conda:
        "../envs/i2i.yaml"
    params:
        root=TARGET.location,
        styles=sorted(STYLES),
        settings=output_settings("publish"),
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
