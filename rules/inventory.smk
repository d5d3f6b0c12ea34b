localrules:
    inventory,


checkpoint inventory:
    """Every photo vetted (exists, readable, decodes) before any job needs it; the photos set
    aside are listed with a reason and the rest of the library goes on without them."""
    input:
        LIBRARY_DATABASE if EXPORT else [str(p.path) for p in PRESENT],
    output:
        paths.INVENTORY,
    log:
        "logs/inventory.log",
    threads: workflow.cores
    params:
        unusable=(
            [] if EXPORT else [[v.album, v.photo, v.file, v.reason] for v in UNUSABLE]
        ),
        photos=config["photos"] if EXPORT else None,
        code=rule_code("inventory"),
    run:
        with job_log(log[0], "inventory"):
            inventory_job(
                LIBRARY.photos, EXPORT, config, output[0], INVENTORY_CACHE, threads
            )
