rule stylize_classic:
    """One photo in one classic (OpenCV) style; parameters from the style registry."""
    input:
        "results/preprocessed/{album}/{photo}.webp",
    output:
        "results/styled/{album}/{style}/{photo}.webp",
    log:
        "logs/stylize/{album}/{style}/{photo}.log",
    benchmark:
        "benchmarks/stylize/{album}/{style}/{photo}.tsv"
    wildcard_constraints:
        style=_alternatives(CLASSIC_STYLES),
    conda:
        "../envs/i2i.yaml"
    threads: 1
    params:
        style=style_definition,
        code=rule_code("stylize_classic"),
    run:
        with job_log(log[0], input[0]):
            stylize(input[0], output[0], params.style, threads)


rule stylize_flux:
    """One photo in one FLUX.1-Kontext style: rendered by the run's FLUX worker, which loads the
    base model once and switches LoRA adapters per style."""
    input:
        "results/preprocessed/{album}/{photo}.webp",
    output:
        "results/styled/{album}/{style}/{photo}.webp",
    log:
        "logs/stylize/{album}/{style}/{photo}.log",
    benchmark:
        "benchmarks/stylize/{album}/{style}/{photo}.tsv"
    wildcard_constraints:
        style=_alternatives(FLUX_STYLES),
    conda:
        "../envs/flux.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        style=style_definition,
        settings=output_settings("stylize_flux"),
        code=rule_code("stylize_flux"),
    run:
        with job_log(log[0], input[0]):
            jobs.stylize_flux(input[0], output[0], wildcards, params, config)
