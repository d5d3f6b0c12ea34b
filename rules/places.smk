rule places:
    """Place names and landmarks for the photo's GPS position (provider chain from config)."""
    input:
        metadata="results/metadata/{album}/{photo}.json",
    output:
        "results/places/{album}/{photo}.json",
    log:
        "logs/places/{album}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        settings=output_settings("places"),
        code=rule_code("places"),
    run:
        with job_log(log[0], input.metadata):
            jobs.places(input.metadata, output[0], config)
