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
        long_side=config["preprocess"]["long_side"],
        quality=config["preprocess"]["quality"],
    run:
        with job_log(log[0], input.photo):
            preprocess(input.photo, output[0], params.long_side, params.quality)
