rule places:
    """Place names and landmarks for the photo's GPS position (provider chain from config)."""
    input:
        metadata="results/metadata/{album}/{photo}.json",
    output:
        "results/places/{album}/{photo}.json",
    log:
        "logs/places/{album}/{photo}.log",
    benchmark:
        "benchmarks/places/{album}/{photo}.tsv"
    conda:
        "../envs/i2i.yaml"
    params:
        places=config["places"],
    script:
        "../scripts/places.py"
