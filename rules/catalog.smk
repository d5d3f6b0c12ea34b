localrules:
    style_manifest,
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
        "logs/catalog/{style}.log",
    conda:
        "../envs/i2i.yaml"
    script:
        "../scripts/style_manifest.py"


rule catalog:
    """The whole catalog, gathered from the per-photo files: results/catalog/master.json."""
    input:
        metadata=per_photo("results/metadata/{album}/{photo}.json"),
        places=per_photo("results/places/{album}/{photo}.json"),
        captions=per_photo("results/captions/{album}/{photo}.json"),
        manifests=[f"results/catalog/styles/{style}.json" for style in STYLES],
    output:
        "results/catalog/master.json",
    log:
        "logs/catalog/master.log",
    conda:
        "../envs/i2i.yaml"
    params:
        photos=photo_keys(),
    script:
        "../scripts/catalog.py"
