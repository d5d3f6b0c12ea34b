for style_backend in POOL_BACKENDS:

    rule:
        """One photo in one style of a backend that renders in the worker pool (classic
        OpenCV filters, and plugins); parameters from the style registry."""
        name:
            style_backend.rule
        input:
            preprocessed=paths.PREPROCESSED,
        output:
            paths.STYLED,
        log:
            "logs/stylize/{album}/{style}/{photo}.log",
        benchmark:
            "benchmarks/stylize/{album}/{style}/{photo}.tsv"
        wildcard_constraints:
            style=_alternatives(STYLES_BY_RULE[style_backend.rule]),
        threads: 1
        params:
            style=style_definition,
            code=rule_code(style_backend.rule),
        run:
            image_job(jobs.stylize_pool, log, input, output, params, wildcards)


rule stylize_flux:
    """One photo in one FLUX.1-Kontext style: rendered by the run's FLUX worker, which loads the
    base model once and switches LoRA adapters per style."""
    input:
        preprocessed=paths.PREPROCESSED,
    output:
        paths.STYLED,
    log:
        "logs/stylize/{album}/{style}/{photo}.log",
    benchmark:
        "benchmarks/stylize/{album}/{style}/{photo}.tsv"
    wildcard_constraints:
        style=_alternatives(STYLES_BY_RULE["stylize_flux"]),
    threads: 1
    resources:
        gpu=1,
    params:
        style=style_definition,
        settings=output_settings("stylize_flux"),
        code=rule_code("stylize_flux"),
    run:
        image_job(jobs.stylize_flux, log, input, output, params, wildcards, inline=True)
