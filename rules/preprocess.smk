rule preprocess:
    """Oriented, sRGB, resized WebP that the style backends start from."""
    input:
        photo=source_photo,
    output:
        "results/preprocessed/{album}/{photo}.webp",
    log:
        "logs/preprocess/{album}/{photo}.log",
    benchmark:
        "benchmarks/preprocess/{album}/{photo}.tsv"
    conda:
        "../envs/i2i.yaml"
    params:
        long_side=config["preprocess"]["long_side"],
        quality=config["preprocess"]["quality"],
    script:
        "../scripts/preprocess.py"
