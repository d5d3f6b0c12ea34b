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
    script:
        "../scripts/stylize.py"
