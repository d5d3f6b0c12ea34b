rule places:
    """Place names and landmarks for the photo's GPS position (provider chain from config)."""
    input:
        metadata=paths.METADATA,
    output:
        paths.PLACES,
    log:
        "logs/places/{album}/{photo}.log",
    params:
        settings=output_settings("places"),
        code=rule_code("places"),
    run:
        image_job(jobs.places, log, input, output, params, wildcards)
