localrules:
    inventory,


checkpoint inventory:
    """Every photo vetted (exists, readable, decodes) before any job needs it; the photos set
    aside are listed with a reason and the rest of the library goes on without them."""
    input:
        [str(p.path) for p in PRESENT],
    output:
        "results/inventory.json",
    log:
        "logs/inventory.log",
    threads: workflow.cores
    params:
        unusable=[[v.album, v.photo, v.file, v.reason] for v in UNUSABLE],
        code=rule_code("inventory"),
    run:
        with job_log(log[0], "inventory"):
            jobs.inventory(LIBRARY.photos, output[0], INVENTORY_CACHE, threads)
