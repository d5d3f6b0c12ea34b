rule preprocess:
    """Oriented, sRGB, resized WebP that the style backends start from."""
    input:
        photo=source_photo,
    output:
        paths.PREPROCESSED,
    log:
        "logs/preprocess/{album}/{photo}.log",
    params:
        settings=output_settings("preprocess"),
        code=rule_code("preprocess"),
    run:
        image_job(jobs.preprocess, log, input, output, params, wildcards)
