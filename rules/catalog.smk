localrules:
    style_manifest,
    album_catalog,
    catalog,


rule style_manifest:
    """Every published image of one style; ask for this file to (re)build one style."""
    input:
        lambda wc: per_photo(
            "results/published/{album}/{style}/{photo}.json", style=wc.style
        ),
    output:
        "results/catalog/styles/{style}.json",
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
        metadata=lambda wc: per_photo("results/metadata/{album}/{photo}.json", wc.album),
        places=lambda wc: per_photo("results/places/{album}/{photo}.json", wc.album),
        captions=lambda wc: per_photo("results/captions/{album}/{photo}.json", wc.album),
        markers=lambda wc: per_style(
            "results/published/{album}/{style}/{photo}.json", wc.album
        ),
    output:
        "results/catalog/albums/{album}.json",
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
            f"results/catalog/albums/{a}.json" for a in accepted_albums()
        ],
        inventory=ancient(INVENTORY),
    output:
        "results/catalog/master.json",
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
