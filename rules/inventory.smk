localrules:
    inventory,


checkpoint inventory:
    """Every photo vetted (exists, readable, decodes) before any job needs it; the photos set
    aside are listed with a reason and the rest of the library goes on without them."""
    input:
        inventory_inputs,
    output:
        paths.INVENTORY,
    log:
        "logs/inventory.log",
    threads: workflow.cores
    params:
        **INVENTORY_PARAMS,
    run:
        with job_log(log[0], "inventory"):
            take_inventory(output[0], threads)
