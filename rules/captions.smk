rule captions:
    """Watermark text for one photo (template; an Ollama LLM when enabled)."""
    input:
        metadata="results/metadata/{album}/{photo}.json",
        places="results/places/{album}/{photo}.json",
    output:
        "results/captions/{album}/{photo}.json",
    log:
        "logs/captions/{album}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        settings=output_settings("captions"),
        code=rule_code("captions"),
    run:
        with job_log(log[0], input.metadata):
            jobs.captions(input, output[0], config)
