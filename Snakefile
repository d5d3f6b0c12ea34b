import sys

from snakemake.utils import min_version

min_version("9.0")

# The one way the workflow imports i2i: from its own folder, first on sys.path, whatever else is
# installed; script jobs get this sys.path through Snakemake's script preamble, the resident
# worker through PYTHONPATH. (`pip install -e .` adds the `i2i` command and the dependencies.)
sys.path.insert(0, workflow.basedir)

from i2i.run import signals, snakemake_internals

# A real run holds .i2i/run.lock from before Snakemake checks its own locks: a second run in
# this folder stops at once, and a run after a crash clears the stale locks and temp files.
# From then on SIGTERM and Ctrl-C are graceful stops, decided by this process alone: script
# jobs start in a shell that ignores both (i2i/run/signals.py).
snakemake_internals.lock_real_runs(workflow)
shell.prefix(signals.SHELL_PREFIX)


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/inventory.smk"
include: "rules/metadata.smk"
include: "rules/places.smk"
include: "rules/captions.smk"
include: "rules/preprocess.smk"
include: "rules/stylize.smk"
include: "rules/watermark.smk"
include: "rules/publish.smk"
include: "rules/catalog.smk"
include: "rules/report.smk"


onstart:
    dag_gc.resume_after_dag()
    snakemake_internals.hide_abandoned_jobs(abandoned_renders, ABANDONED)
    runcontrol.install(snakemake_internals.graceful_stop(workflow), abandon_renders)


onsuccess:
    stop_workers()
    report_set_aside()


onerror:
    stop_workers()
    runcontrol.exit_if_stopped_on_request(
        snakemake_internals.failed_jobs(workflow),
        len(abandoned_renders()),
        snakemake_internals.stop_asked(workflow),
    )


rule all:
    default_target: True
    input:
        all_targets,
