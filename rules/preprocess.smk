rule preprocess:
    """Oriented, sRGB, resized WebP that the style backends start from."""
    input:
        photo=source_photo,
    output:
        "results/preprocessed/{album}/{photo}.webp",
    log:
        "logs/preprocess/{album}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        settings=output_settings("preprocess"),
        code=rule_code("preprocess"),
    run:
        with job_log(log[0], input.photo):
            jobs.preprocess(input.photo, output[0], config)
