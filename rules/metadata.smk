rule metadata:
    """EXIF, GPS, dimensions and checksum of one photo."""
    input:
        photo=source_photo,
    output:
        paths.METADATA,
    log:
        "logs/metadata/{album}/{photo}.log",
    params:
        source_ref=source_ref,
        apple_photos=apple_photos,
        settings=output_settings("metadata"),
        maker_notes=MAKER_NOTES,
        code=rule_code("metadata"),
    run:
        image_job(jobs.metadata, log, input, output, params, wildcards)
