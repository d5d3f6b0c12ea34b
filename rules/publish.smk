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
        publish=config["publish"],
    run:
        with job_log(log[0], input[0]):
            jobs.publish(input[0], output[0], wildcards, params)


rule gallery:
    """Browsable pages (index + one per album) with thumbnails for a file:// target."""
    input:
        "results/catalog/master.json",
    output:
        "results/published/gallery.json",
    log:
        "logs/gallery/gallery.log",
    benchmark:
        "benchmarks/gallery/gallery.tsv"
    conda:
        "../envs/i2i.yaml"
    params:
        root=TARGET.location,
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
