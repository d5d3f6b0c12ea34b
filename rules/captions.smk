rule captions:
    """Watermark text for one photo (template; an Ollama LLM when enabled)."""
    input:
        metadata=paths.METADATA,
        places=paths.PLACES,
    output:
        paths.CAPTIONS,
    log:
        "logs/captions/{album}/{photo}.log",
    params:
        settings=output_settings("captions"),
        code=rule_code("captions"),
    run:
        image_job(jobs.captions, log, input, output, params, wildcards)
