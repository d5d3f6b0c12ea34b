rule watermark:
    """Visible caption and copyright EXIF on a styled image: the image that is published."""
    input:
        styled=paths.STYLED,
        metadata=paths.METADATA,
        caption=paths.CAPTIONS,
    output:
        report(
            paths.FINAL,
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
