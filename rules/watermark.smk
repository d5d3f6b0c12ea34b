rule watermark:
    """Visible caption and copyright EXIF on a styled image: the image that is published."""
    input:
        styled="results/styled/{album}/{style}/{photo}.webp",
        metadata="results/metadata/{album}/{photo}.json",
        caption="results/captions/{album}/{photo}.json",
    output:
        report(
            "results/final/{album}/{style}/{photo}.webp",
            caption="../report/final.rst",
            category="{album}",
            subcategory="{style}",
            labels={"album": "{album}", "style": "{style}", "photo": "{photo}"},
        ),
    log:
        "logs/watermark/{album}/{style}/{photo}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        settings=output_settings("watermark"),
        code=rule_code("watermark"),
    run:
        with job_log(log[0], input.styled):
            jobs.watermark(input, output[0], config)
