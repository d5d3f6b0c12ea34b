rule metadata:
    """EXIF, GPS, dimensions and checksum of one photo."""
    input:
        photo=source_photo,
    output:
        "results/metadata/{album}/{photo}.json",
    log:
        "logs/metadata/{album}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        source_ref=source_ref,
        code=rule_code("metadata"),
    run:
        with job_log(log[0], input.photo):
            jobs.metadata(input.photo, output[0], params.source_ref)
