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
    params:
        settings=output_settings("watermark"),
        code=rule_code("watermark"),
        version=recorded_version("watermark"),
    run:
        image_job(jobs.watermark, log, input, output, params, wildcards)
