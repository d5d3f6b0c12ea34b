# The i2i workflow's onstart/onsuccess/onerror handlers (graceful stop, worker shutdown).
# Included by the i2i Snakefile; a host workflow that uses i2i as a module includes it too,
# after the module (Snakemake runs the handlers of the main Snakefile only):
#   include: i2i.core.resources.hooks_file()
from i2i.run import hooks as i2i_hooks


onstart:
    i2i_hooks.call("onstart")


onsuccess:
    i2i_hooks.call("onsuccess")


onerror:
    i2i_hooks.call("onerror")
