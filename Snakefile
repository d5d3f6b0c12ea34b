import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The one way the workflow imports i2i: the package this Snakefile belongs to, first on
# sys.path, whatever else is installed: the clone's root, or the site-packages holding the
# wheel's i2i/workflow. Script jobs and the resident worker import it from there too.
# (workflow.basedir is the main Snakefile's folder: a host's when i2i is its module.)
WORKFLOW_DIR = Path(str(workflow.current_basedir))
sys.path.insert(
    0, str(WORKFLOW_DIR if (WORKFLOW_DIR / "i2i").is_dir() else WORKFLOW_DIR.parents[1])
)

from i2i.run import runcontrol, signals, snakemake_internals

# While the Snakefile is read, SIGTERM or Ctrl-C ends Snakemake at once with one line (status
# 0, or 130 after Ctrl-C): nothing has started yet.
if workflow.is_main_process:
    runcontrol.end_on_stop_signals_until_the_run()

# A real run holds .i2i/run.lock from before Snakemake checks its own locks: a second run in
# this folder stops at once, and a run after a crash clears the stale locks and temp files.
# From then on SIGTERM and Ctrl-C are graceful stops, decided by this process alone: script
# jobs start in a shell that ignores both (i2i/run/signals.py).
snakemake_internals.lock_real_runs(workflow)
# Snakemake's scheduler looks again as often as jobs finish, not ever more often, and lists
# the jobs not yet done only when something reads that list.
snakemake_internals.lighter_scheduling()
shell.prefix(signals.SHELL_PREFIX)


# The working folder's config.yaml, when it has one (`i2i init` writes it); every key has a
# default in the schema. As a module, i2i takes the host's config instead.
if Path("config.yaml").exists():

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
# The onstart/onsuccess/onerror handlers (rules/common.smk registers them).
include: "rules/hooks.smk"


rule all:
    default_target: True
    input:
        all_targets,
