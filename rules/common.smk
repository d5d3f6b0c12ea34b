import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from snakemake.logging import logger

from i2i import I2IError
from i2i.core import paths, resources
from i2i.run import dag_gc, hooks, jobs, provenance, runcontrol, workers
from i2i.config import load_registry, select_styles, validate_config
from i2i.stages.library.apple_photos import (
    ExportSettings,
    database_files,
    database_state,
    osxphotos_command,
)
from i2i.stages.library.albums import Library, discover
from i2i.stages.metadata import makernotes
from i2i.core.files import read_json
from i2i.run.resident_client import (
    RUN_DIR,
    abandon,
    abandoned_renders,
    stop,
    worker_dir,
)
from i2i.stages.library.inventory import CACHE as INVENTORY_CACHE
from i2i.stages.library.inventory import RECORD as INVENTORY
from i2i.stages.library.inventory import source_ref as inventory_source_ref
from i2i.stages.library.inventory import inventory_job, split_present, summary, taken
from i2i.stages.library.inventory import is_current, made_from
from i2i.run.logs import ABANDONED, job_log, warnings_to_console
from i2i.targets import breaker, target_for

warnings_to_console()
dag_gc.defer_while_building_dag()
try:
    config.update(validate_config(config))
    REGISTRY = load_registry(
        resources.styles_path(config["styles_file"]), config["style_backends"]
    )
    BACKENDS = provenance.register_backends(config["style_backends"])
    STYLES = select_styles(REGISTRY, config["styles"])
    MAKER_NOTES = makernotes.choose(config["metadata"]["maker_notes"]).label
    for style_backend in BACKENDS.values():
        chosen = {n: s for n, s in STYLES.items() if s["backend"] == style_backend.name}
        if chosen and style_backend.prepare:
            logger.info(style_backend.prepare_run(config, chosen))
    EXPORT = (
        ExportSettings.from_config(config["photos"])
        if config["photos"]["library"]
        else None
    )
    if EXPORT:
        osxphotos_command()  # not installed: say so now, not when the inventory runs
    if EXPORT is not None and not Path(config["albums_dir"]).exists():
        LIBRARY = Library()  # the inventory exports the library into albums_dir first
    else:
        LIBRARY = discover(
            config["albums_dir"], config["extensions"], config["links_outside"]
        )
    LIBRARY_DATABASE = database_files(EXPORT.library) if EXPORT else []
    ALBUMS_ROOT = Path(config["albums_dir"]).resolve()
    snakemake_internals.let_jobs_of_vanished_originals_start(
        lambda path: Path(path).resolve().is_relative_to(ALBUMS_ROOT), logger.warning
    )
    TARGET = target_for(config["publish"]["target"], config["publish"])
    TARGET.check()  # e.g. no S3 credentials: say so now, not in every publish job
except I2IError as error:
    raise WorkflowError(str(error)) from None

# Every upload of this run's jobs goes through the target's breaker (closed again at the start
# of each run, in onstart): after a few connection failures in a row the rest fail at once.
BREAKER_DIR = str(runcontrol.BREAKER_DIR.resolve())
config["publish"][breaker.SETTING] = BREAKER_DIR

PHOTOS = LIBRARY.by_key()
# Photos that can be opened go to the inventory checkpoint; a dangling link or an unreadable
# file must never become a rule input (Snakemake would stop the whole run), so it is set aside
# here and listed by the inventory with its reason.
PRESENT, UNUSABLE = split_present(LIBRARY.photos)
# Each style backend's rule renders the registry's styles of that backend.
STYLES_BY_RULE = {
    b.rule: sorted(n for n, s in REGISTRY.items() if s["backend"] == b.name)
    for b in BACKENDS.values()
}
POOL_BACKENDS = sorted(
    (b for b in BACKENDS.values() if not b.resident), key=lambda b: b.name
)
RESIDENT_BACKENDS = sorted(
    (b for b in BACKENDS.values() if b.resident), key=lambda b: b.name
)
# What the inventory checkpoint is made from: its input files and params.
INVENTORY_INPUTS = LIBRARY_DATABASE if EXPORT else [str(p.path) for p in PRESENT]
INVENTORY_PARAMS = {
    "unusable": (
        [] if EXPORT else [[v.album, v.photo, v.file, v.reason] for v in UNUSABLE]
    ),
    "photos": config["photos"] if EXPORT else None,
    "database": database_state(LIBRARY_DATABASE) if EXPORT else None,
    "code": provenance.rule_code("inventory"),
}


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    album="[^/]+",
    photo="[^/]+",
    style="[^/]+",


def photo(wildcards):
    """The Photo behind ``{album}/{photo}``; a clear error when there is none.

    With a Photos library the inventory's export decides: a photo exported in this run is
    not among those found when the workflow was parsed.
    """
    key = (wildcards.album, wildcards.photo)
    if EXPORT is not None:
        found = inventory_view()["by_key"].get(key)
        if found is not None:
            return found
    try:
        return PHOTOS[key]
    except KeyError:
        raise WorkflowError(
            f"no photo {wildcards.photo!r} in album {wildcards.album!r} of {config['albums_dir']}"
        ) from None


def source_photo(wildcards):
    """The photo's original; none when its file went away after the inventory listed it
    (removed from its album while Snakemake builds the DAG). The job is planned all the same
    and fails with one line naming the file (image_job), where a missing input would end the
    whole run; the next run's inventory drops the photo."""
    path = photo(wildcards).path
    if path.exists():
        return str(path)
    if path not in _vanished:
        _vanished.add(path)
        logger.warning(f"{path}: removed from its album during the run")
    return []


_vanished = set()


def inventory_inputs(wildcards):
    """The inventory's input files that still exist: a photo removed since the Snakefile was
    read is left to the inventory, which sets it aside as missing (a missing input would end
    the run)."""
    return [path for path in INVENTORY_INPUTS if Path(path).exists()]


def source_ref(wildcards):
    """``album/file name`` of the source photo, recorded in its metadata (``source_path``)."""
    return inventory_source_ref(photo(wildcards))


STYLE_SETTINGS = {name: provenance.style_settings(s) for name, s in REGISTRY.items()}


def inside_workdir(path):
    """``path`` relative to the working folder when it lies inside it (a clone), so that the
    folder copied or moved elsewhere keeps the same inputs; else as it is (a package's).
    """
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def style_definition(wildcards):
    """The style's registry entry as the stylize rules' params (its rerun trigger)."""
    return STYLE_SETTINGS[wildcards.style]


def output_settings(rule):
    """The config values that ``rule``'s outputs are made from (its ``params`` rerun trigger)."""
    return provenance.output_settings(config, rule)


def rule_code(rule):
    """Digest of the code that makes ``rule``'s outputs: an edit there reruns the rule."""
    return provenance.rule_code(rule)


def recorded_version(rule):
    """The i2i version ``rule``'s outputs record: a version bump reruns the rule."""
    return provenance.recorded_version(rule)


PHOTO_OUTPUTS = tuple(paths.PHOTO_STAGES.values())
STYLE_OUTPUTS = tuple(paths.STYLE_STAGES.values())


_inventory = {}
_current = {}


def inventory_basis():
    """Digest of what the inventory record is made from (inventory.made_from)."""
    if "basis" not in _current:
        run_block = snakemake_internals.run_block(workflow, "inventory")
        _current["basis"] = made_from(
            INVENTORY_INPUTS, INVENTORY_PARAMS, run_block.encode()
        )
    return _current["basis"]


def take_inventory(output, threads):
    """The inventory checkpoint's work: vet the library (with a Photos library, export it
    first) and write the record with what it was made from."""
    inventory_job(
        LIBRARY.photos,
        EXPORT,
        config,
        output,
        INVENTORY_CACHE,
        threads,
        inventory_basis(),
    )


def inventory_is_current():
    """True when the inventory on disk is what the checkpoint would write again: same photo
    files, none modified since, same params and code, and this run does not force it. Then
    the rules read it without waiting for the checkpoint (which stays out of the DAG), so
    Snakemake builds the DAG in one pass. A photo added, removed or edited, during a run or
    after it, makes it not current: the next run takes the inventory again first.

    Decided once, at the first input function that asks: the run's DAG settings (``-R``,
    ``-F``) are not known while the Snakefile is parsed.
    """
    if "current" not in _current:
        forced = snakemake_internals.forces_rerun(workflow, "inventory", INVENTORY)
        _current["current"] = not forced and is_current(
            INVENTORY,
            INVENTORY_INPUTS,
            inventory_basis(),
            lambda path: snakemake_internals.same_as_recorded(
                workflow, INVENTORY, path
            ),
        )
    return _current["current"]


def inventory_view():
    """The inventory as the rules use it, read once per version of its file (path and
    modification time), not once per job. Unless the inventory is current, calling it makes
    the caller wait for the checkpoint.

    A photo whose file went away since the inventory listed it (deleted from its album
    during the run, or an exported file deleted since the export) is left out with a warning:
    a missing input would stop the whole run. The next run's inventory drops it, or exports
    it again.
    """
    if inventory_is_current():
        path = INVENTORY
    else:
        path = checkpoints.inventory.get().output[0]
    stamp = (path, Path(path).stat().st_mtime_ns)
    if _inventory.get("stamp") != stamp:
        record = read_json(path)
        root = config["albums_dir"] if EXPORT is not None else None
        photos = taken(LIBRARY.photos, record, root)
        photos, gone = split_present(photos)
        for verdict in gone:
            logger.warning(
                f"i2i: exported file {verdict.file} is {verdict.reason}: left out of this "
                "run; `snakemake --forcerun inventory` exports it again"
                if EXPORT is not None
                else f"i2i: {verdict.file} is {verdict.reason}: left out of this run "
                "(changed during the run); the next run takes the album as it is then"
            )
        by_album = {}
        for p in photos:
            by_album.setdefault(p.album, []).append(p)
        _inventory.clear()
        _inventory.update(
            stamp=stamp,
            record=record,
            photos=photos,
            by_album=by_album,
            by_key={(p.album, p.photo): p for p in photos},
            info={
                (e["album"], e["photo"]): e.get("apple_photos")
                for e in record["photos"]
            },
        )
    return _inventory


def accepted_photos(album=None):
    """The photos the inventory took (of one album when given), in library order."""
    view = inventory_view()
    return view["photos"] if album is None else view["by_album"].get(album, [])


def inventory_digest(*parts):
    """The param of a reader of ``parts`` of the inventory file (their digest).

    The inventory file is rewritten whenever the inventory runs (with a Photos library,
    whenever the library changes); its readers rerun only when what they read from it
    changed. It is not their input: the param waits for the checkpoint when the inventory is
    not current (inventory_view), and when it is current nothing in the DAG need wait for it.
    """

    def digest(wildcards):
        return provenance.record_digest(inventory_view()["record"], parts)

    return digest


def apple_photos(wildcards):
    """What Photos knows of the photo (title, keywords, place...), or None for a folder album.

    A metadata param: a title changed in Photos reruns that photo's metadata and what reads
    it, nothing else.
    """
    if EXPORT is None:
        return None
    return inventory_view()["info"].get((wildcards.album, wildcards.photo))


def accepted_albums():
    """Albums with at least one photo the inventory took, sorted."""
    return sorted({p.album for p in accepted_photos()})


def per_photo(pattern, album=None, **fields):
    """``pattern`` filled for every accepted photo (of one album when given), plus ``fields``."""
    return [
        pattern.format(album=p.album, photo=p.photo, **fields)
        for p in accepted_photos(album)
    ]


def per_style(pattern, album=None):
    """``pattern`` filled for every accepted photo (of one album when given) and style."""
    return [
        pattern.format(album=p.album, photo=p.photo, style=style)
        for p in accepted_photos(album)
        for style in STYLES
    ]


def photo_targets(photos):
    """Every per-photo and per-image output: a deleted one is rebuilt by plain ``snakemake``."""
    targets = []
    for p in photos:
        targets += [
            pattern.format(album=p.album, photo=p.photo) for pattern in PHOTO_OUTPUTS
        ]
        targets += [
            pattern.format(album=p.album, photo=p.photo, style=style)
            for style in STYLES
            for pattern in STYLE_OUTPUTS
        ]
    return targets


def all_targets(wildcards):
    """Everything the workflow builds for the photos the inventory took."""
    photos = accepted_photos()
    albums = accepted_albums()
    targets = photo_targets(photos)
    targets += [paths.path(paths.ALBUM_CATALOG, album) for album in albums]
    targets += [paths.STYLE_CATALOG.format(style=style) for style in STYLES]
    targets += [paths.path(paths.CONTACT_SHEET, album) for album in albums]
    targets += [paths.MASTER_CATALOG, paths.PROGRESS_REPORT]
    targets += [paths.path(paths.GALLERY_ALBUM, album) for album in albums]
    targets.append(paths.GALLERY)
    if config["publish"]["prune"]:
        targets.append(paths.PRUNED)  # rules/publish.smk: after everything is published
    return targets


def report_set_aside():
    """At the end of a run: one line on the photos the inventory set aside, if any."""
    if Path(INVENTORY).exists():
        record = read_json(INVENTORY)
        if record["rejected"]:
            logger.warning(f"i2i: {summary(record)}")


JOB_CONFIGS = {}


def job_config(name):
    """The settings a job of rule ``name`` reads (provenance.job_config), built once."""
    if name not in JOB_CONFIGS:
        JOB_CONFIGS[name] = provenance.job_config(config, name)
    return JOB_CONFIGS[name]


def image_job(function, log, input, output, params, wildcards, inline=False, rule=None):
    """A per-image rule's job: its work runs in one of the run's worker processes (one per
    core), or in this thread when ``inline`` (the FLUX rule, which waits on its own worker)
    or in a job process that a cluster executor started for this one job. The job function
    is named as its rule and reads only that rule's settings."""
    # No input: source_photo found the original gone; the job fails naming it.
    inputs = workers.plain(input) if input else {"photo": str(photo(wildcards).path)}
    workers.run(
        function,
        log[0],
        str(input[0]) if input else inputs["photo"],
        inputs,
        str(output[0]),
        workers.plain(params),
        workers.plain(wildcards),
        job_config(rule or function.__name__),
        workers=workflow.cores,
        inline=inline or not workflow.is_main_process,
    )


def stop_workers():
    """The run is over: end the worker processes, and free the GPU now instead of after the
    resident workers' idle timeout."""
    workers.stop()
    for style_backend in RESIDENT_BACKENDS:
        if stop(worker_dir(RUN_DIR, style_backend.name)):
            logger.info(f"stopped the {style_backend.name} worker")


def abandon_renders():
    """The run stops on a signal: end the renders in flight of the resident workers (their jobs
    fail as abandoned and are redone by the next run)."""
    for style_backend in RESIDENT_BACKENDS:
        abandon(worker_dir(RUN_DIR, style_backend.name))


def on_start():
    """Resume garbage collection after the DAG; start jobs without Snakemake's pipe checks
    (the workflow has no pipes); close the publish breaker (each run tries the target again);
    say when the maker-note reader changed; stop gracefully on request or signal, abandoning
    renders in flight.
    """
    dag_gc.resume_after_dag()
    snakemake_internals.no_pipe_checks_without_pipes(workflow)
    breaker.reset(BREAKER_DIR)
    changed = makernotes.announce_change(MAKER_NOTES, makernotes.STAMP)
    if changed:
        logger.warning(changed)
    snakemake_internals.hide_abandoned_jobs(abandoned_renders, ABANDONED)
    runcontrol.install(snakemake_internals.graceful_stop(workflow), abandon_renders)


def on_success():
    """End the workers; name the photos the inventory set aside."""
    stop_workers()
    report_set_aside()


def on_error():
    """End the workers; exit 0 (130 after Ctrl-C) after a stop on request or signal with no
    failed job."""
    stop_workers()
    runcontrol.exit_if_stopped_on_request(
        snakemake_internals.failed_jobs(workflow),
        len(abandoned_renders()),
        snakemake_internals.stop_asked(workflow),
    )


hooks.register(onstart=on_start, onsuccess=on_success, onerror=on_error)
