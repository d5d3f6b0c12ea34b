# No benchmark for a pool backend's style: its job log ends with the seconds the job took,
# and Snakemake's benchmark thread (psutil reads of the process tree) cost about as much as
# a 640 px image (bench/README.md). The resident (FLUX) rules keep theirs: minutes of GPU a job.
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
        wildcard_constraints:
            style=_alternatives(STYLES_BY_RULE[style_backend.rule]),
        threads: 1
        params:
            style=style_definition,
            code=rule_code(style_backend.rule),
        run:
            image_job(jobs.stylize_pool, log, input, output, params, wildcards)


for style_backend in RESIDENT_BACKENDS:

    rule:
        """One photo in one style of a backend whose model stays loaded in a resident worker
        for the run (FLUX.1-Kontext: the base model once, a LoRA adapter per style), one
        image at a time on the resources it declares (a GPU)."""
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
        resources:
            **style_backend.resources,
        params:
            style=style_definition,
            settings=output_settings(style_backend.rule),
            code=rule_code(style_backend.rule),
        run:
            image_job(
                jobs.stylize_resident,
                log,
                input,
                output,
                params,
                wildcards,
                inline=True,
                rule=rule,
            )
