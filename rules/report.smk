rule contact_sheet:
    """One picture per album for the report: photos as rows, original and styles as columns."""
    input:
        preprocessed=lambda wc: per_photo(paths.PREPROCESSED, wc.album),
        finals=lambda wc: [
            final
            for style in STYLES
            for final in per_photo(paths.FINAL, wc.album, style=style)
        ],
    output:
        report(
            paths.CONTACT_SHEET,
            caption="../report/contact_sheet.rst",
            category="Contact sheets",
            labels={"album": "{album}"},
        ),
    log:
        "logs/report/{album}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        photos=lambda wc: [p.photo for p in accepted_photos(wc.album)],
        styles=list(STYLES),
        code=rule_code("contact_sheet"),
    script:
        "../scripts/contact_sheet.py"


rule progress_report:
    """Images done and pending per stage and style, seconds per image and the ETA."""
    input:
        catalog=paths.MASTER_CATALOG,
    output:
        report(
            paths.PROGRESS_REPORT,
            caption="../report/progress.rst",
            category="Run",
        ),
    log:
        "logs/report/progress.log",
    conda:
        "../envs/i2i.yaml"
    params:
        styles=STYLES,
        inventory=inventory_digest("photos", "rejected"),
        code=rule_code("progress_report"),
    script:
        "../scripts/progress_report.py"
