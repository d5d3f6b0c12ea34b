rule captions:
    """Watermark text for one photo (template; an Ollama LLM when enabled)."""
    input:
        metadata="results/metadata/{album}/{photo}.json",
        places="results/places/{album}/{photo}.json",
    output:
        "results/captions/{album}/{photo}.json",
    log:
        "logs/captions/{album}/{photo}.log",
    benchmark:
        "benchmarks/captions/{album}/{photo}.tsv"
    conda:
        "../envs/i2i.yaml"
    params:
        watermark=config["watermark"],
        ollama=config["ollama"],
    script:
        "../scripts/captions.py"
