rule metadata:
    """EXIF, GPS, dimensions and checksum of one photo."""
    input:
        photo=source_photo,
    output:
        "results/metadata/{album}/{photo}.json",
    log:
        "logs/metadata/{album}/{photo}.log",
    benchmark:
        "benchmarks/metadata/{album}/{photo}.tsv"
    conda:
        "../envs/i2i.yaml"
    params:
        source_ref=source_ref,
    script:
        "../scripts/metadata.py"
