localrules:
    style_manifest,
    album_catalog,
    catalog,


rule style_manifest:
    """Every published image of one style; ask for this file to (re)build one style."""
    input:
        lambda wc: per_photo(paths.PUBLISHED, style=wc.style),
    output:
        paths.STYLE_CATALOG,
    log:
        "logs/catalog/styles/{style}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        code=rule_code("style_manifest"),
    script:
        "../scripts/style_manifest.py"


rule album_catalog:
    """One album's photos, places, captions and published images: a failed image holds back
    its own album's catalog, never another album's."""
    input:
        metadata=lambda wc: per_photo(paths.METADATA, wc.album),
        places=lambda wc: per_photo(paths.PLACES, wc.album),
        captions=lambda wc: per_photo(paths.CAPTIONS, wc.album),
        markers=lambda wc: per_style(paths.PUBLISHED, wc.album),
    output:
        paths.ALBUM_CATALOG,
    log:
        "logs/catalog/albums/{album}.log",
    conda:
        "../envs/i2i.yaml"
    params:
        photos=lambda wc: [p.photo for p in accepted_photos(wc.album)],
        styles=list(STYLES),
        code=rule_code("album_catalog"),
    script:
        "../scripts/album_catalog.py"


rule catalog:
    """The whole catalog, gathered from the album catalogs: results/catalog/master.json."""
    input:
        albums=lambda wc: [
            paths.path(paths.ALBUM_CATALOG, a) for a in accepted_albums()
        ],
    output:
        paths.MASTER_CATALOG,
    log:
        "logs/catalog/master.log",
    conda:
        "../envs/i2i.yaml"
    params:
        styles=list(STYLES),
        inventory=inventory_digest("rejected"),
        code=rule_code("catalog"),
        version=recorded_version("catalog"),
    script:
        "../scripts/catalog.py"
