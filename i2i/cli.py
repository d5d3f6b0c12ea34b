"""The ``i2i`` command: the workflow (init, run) and tools around it (check, styles, progress,
stop, publish, stylize)."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError, __version__, backends
from i2i.backends import flux_kontext
from i2i.config import load_registry, load_yaml, select_styles, validate_config
from i2i.core import resources
from i2i.stages.library.albums import Library, Photo, discover
from i2i.targets import target_for

log = logging.getLogger("i2i.cli")


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict update, as Snakemake merges ``--configfile`` over ``configfile:``."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(workdir: Path, configfiles: Sequence[str]) -> dict[str, Any]:
    """``config.yaml`` in ``workdir`` with each ``--configfile`` merged over it, validated."""
    config: dict[str, Any] = {}
    for path in [workdir / "config.yaml", *map(Path, configfiles)]:
        if path.exists() or path != workdir / "config.yaml":
            config = merge(config, load_yaml(path) or {})
    return validate_config(config)


def out(text: str) -> None:
    """Write command output (tables, check lines) to stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@dataclass(frozen=True)
class Check:
    """One line of ``i2i check``: OK, WARN or FAIL, what was checked and what was found."""

    status: str
    what: str
    detail: str


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_folders(workdir: Path, config: Mapping[str, Any]) -> Iterator[Check]:
    """The folders the workflow writes to."""
    folders = [workdir / "results", workdir / Path(config["places"]["cache"]).parent]
    try:
        target = target_for(config["publish"]["target"], config["publish"], base=workdir)
    except I2IError:
        target = None  # check_publish says why
    if target is not None and target.folder is not None:
        folders.append(Path(target.folder))
    for folder in folders:
        ok = _writable(folder)
        yield Check("OK" if ok else "FAIL", "writable", f"{folder}" + ("" if ok else " is not"))


def check_accelerator(flux_styles: Sequence[str]) -> Iterator[Check]:
    """GPU and its memory, from torch when it is installed."""
    need = "FAIL" if flux_styles else "WARN"
    if importlib.util.find_spec("torch") is None:
        missing = "torch is not installed (pip install 'i2i-workflow[flux]'); classic only"
        yield Check(need, "gpu", missing)
        return
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        yield Check("OK", "gpu", f"{props.name}, {props.total_memory / 2**30:.1f} GiB")
    elif torch.backends.mps.is_available():
        yield Check("OK", "gpu", "Apple MPS")
    else:
        yield Check(need, "gpu", "no CUDA or MPS device; FLUX would run on the CPU (very slow)")


def check_memory(
    config: Mapping[str, Any], flux: Mapping[str, Mapping[str, Any]]
) -> Iterator[Check]:
    """The FLUX memory plan for this machine's GPU (flux.memory)."""
    if not flux:
        return
    from i2i.backends.memory_plan import resolve

    try:
        yield Check("OK", "flux memory", resolve(config["flux"])[1])
    except I2IError as exc:
        yield Check("FAIL", "flux memory", str(exc))


def check_weights(
    config: Mapping[str, Any], flux: Mapping[str, Mapping[str, Any]]
) -> Iterator[Check]:
    """Where the FLUX base model and each LoRA would come from."""
    if not flux:
        return
    model = config["flux"]["model"]
    sources = [("flux.model", model, "model_index.json")]
    for name, style in flux.items():
        lora = style.get("lora", {})
        if "path" in lora:
            sources.append((f"style {name}", lora["path"], None))
        else:
            yield _lora_repo_check(f"style {name}", lora.get("repo", ""), lora)
    for what, location, filename in sources:
        if Path(location).exists():
            yield Check("OK", what, f"local {location}")
        elif filename is None:
            yield Check("FAIL", what, f"{location} does not exist")
        else:
            yield _hub_check(what, location, filename)


def _lora_repo_check(what: str, repo: str, lora: Mapping[str, Any]) -> Check:
    """A hub LoRA: its weight file from the registry or the pin, else what the cache holds."""
    if importlib.util.find_spec("huggingface_hub") is None:
        return Check("WARN", what, f"{repo}: huggingface_hub not installed, cannot look")
    from i2i.backends.lora_files import cached_weight_files, read_pins

    name = lora.get("weight_name") or read_pins().get(repo)
    if name:
        return _hub_check(what, repo, name)
    files = cached_weight_files(repo)
    if len(files) == 1:
        return Check("OK", what, f"{repo} is in the Hugging Face cache ({files[0]})")
    if files:
        return Check("FAIL", what, f"{repo}: several weight files cached, set lora.weight_name")
    return Check(
        "WARN", what, f"{repo} not cached and names no weight_name: found at first download"
    )


def _hub_check(what: str, repo: str, filename: str) -> Check:
    if importlib.util.find_spec("huggingface_hub") is None:
        return Check("WARN", what, f"{repo}: huggingface_hub not installed, cannot look")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return Check("OK", what, f"{repo} is in the Hugging Face cache")
    token = "HF_TOKEN set" if os.environ.get("HF_TOKEN") else "no HF_TOKEN"
    return Check("WARN", what, f"{repo} not cached: would be downloaded from the hub ({token})")


def check_ollama(config: Mapping[str, Any]) -> Iterator[Check]:
    """The Ollama server and model, when LLM captions are enabled."""
    settings = config["ollama"]
    if not settings["enabled"]:
        yield Check("OK", "ollama", "disabled: template captions")
        return
    import requests

    try:
        reply = requests.get(f"{settings['endpoint'].rstrip('/')}/api/tags", timeout=5)
        reply.raise_for_status()
        models = {m.get("name", "") for m in reply.json().get("models", [])}
    except (requests.RequestException, ValueError) as exc:
        yield Check("FAIL", "ollama", f"{settings['endpoint']} not reachable: {exc}")
        return
    wanted = settings["model"]
    if wanted in models or f"{wanted}:latest" in models:
        yield Check("OK", "ollama", f"{settings['endpoint']} has {wanted}")
    else:
        yield Check("FAIL", "ollama", f"model {wanted} missing: run `ollama pull {wanted}`")


def check_maker_notes(config: Mapping[str, Any]) -> Iterator[Check]:
    """Which reader fills lens, ISO and exposure time from maker notes."""
    from i2i.stages.metadata import makernotes

    try:
        reader = makernotes.choose(config["metadata"]["maker_notes"])
    except I2IError as exc:
        yield Check("FAIL", "maker notes", str(exc))
        return
    hints = {"exifread": " (install exiftool for more cameras)", "none": " (standard EXIF only)"}
    yield Check("OK", "maker notes", reader.label + hints.get(reader.name, ""))


def check_publish(workdir: Path, config: Mapping[str, Any]) -> Iterator[Check]:
    """Whether the publish target can be used (an S3 target's credentials, never printed)."""
    try:
        target = target_for(config["publish"]["target"], config["publish"], base=workdir)
        yield Check("OK", "publish", target.check())
    except I2IError as exc:
        yield Check("FAIL", "publish", str(exc))


def check_inventory(workdir: Path, library: Library) -> Iterator[Check]:
    """Every photo vetted as the workflow's inventory does (cached verdicts): those set aside."""
    from i2i.stages.library.inventory import CACHE, summary, vet_library

    record, _ = vet_library(library.photos, workdir / CACHE, os.cpu_count() or 1)
    yield Check("WARN" if record["rejected"] else "OK", "inventory", summary(record))
    for rejected in record["rejected"]:
        yield Check("WARN", "set aside", f"{rejected['file']}: {rejected['reason']}")


def check_photos_library(workdir: Path, config: Mapping[str, Any]) -> Iterator[Check]:
    """The Apple Photos library, when the config names one: version, photos, albums, missing."""
    from i2i.stages.library.apple_photos import WORK_DIR, ExportSettings, describe_library

    if not config["photos"]["library"]:
        return
    settings = ExportSettings.from_config(config["photos"])
    settings = dataclasses.replace(settings, library=workdir / settings.library)
    try:
        found = describe_library(settings, workdir / WORK_DIR)
    except I2IError as exc:
        yield Check("FAIL", "photos library", str(exc))
        return
    missing = found["missing"]
    yield Check(
        "WARN" if missing else "OK",
        "photos library",
        f"{settings.library}: Photos {found['photos_version']}, {found['photos']} photos in "
        f"{found['albums']} albums, {found['to_export']} to export, "
        f"{len(missing)} with the original missing",
    )
    for name in missing:
        yield Check("WARN", "missing original", name)


def run_checks(workdir: Path, configfiles: Sequence[str]) -> list[Check]:
    """Every check, in order; a broken config stops the rest."""
    try:
        config = load_config(workdir, configfiles)
        registry = load_registry(
            resources.styles_path(config["styles_file"], workdir), config["style_backends"]
        )
        styles = select_styles(registry, config["styles"])
    except I2IError as exc:
        return [Check("FAIL", "config", str(exc))]
    checks = [Check("OK", "config", f"valid; {len(styles)} style(s): {', '.join(styles)}")]
    checks += check_photos_library(workdir, config)
    exported = config["photos"]["library"] and not (workdir / config["albums_dir"]).exists()
    try:
        if exported:
            raise I2IError(f"{config['albums_dir']}: not exported from Photos yet")
        library = discover(
            workdir / config["albums_dir"], config["extensions"], config["links_outside"]
        )
        status = "OK" if library.photos else "WARN"
        checks.append(
            Check(
                status,
                "library",
                f"{len(library.photos)} photos in {len(library.albums())} "
                f"albums, {len(library.skipped)} files skipped",
            )
        )
        checks += check_inventory(workdir, library)
    except I2IError as exc:
        checks.append(Check("WARN" if exported else "FAIL", "library", str(exc)))
    flux = {n: s for n, s in styles.items() if s["backend"] == flux_kontext.NAME}
    checks += check_folders(workdir, config)
    checks += check_maker_notes(config)
    checks += check_accelerator(list(flux))
    checks += check_memory(config, flux)
    checks += check_weights(config, flux)
    checks += check_ollama(config)
    checks += check_publish(workdir, config)
    return checks


def cmd_check(args: argparse.Namespace) -> int:
    checks = run_checks(Path(args.directory), args.configfile)
    for check in checks:
        out(f"{check.status:<4} {check.what}: {check.detail}")
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def load_workflow(args: argparse.Namespace) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The workflow folder, its validated config and its style registry."""
    workdir = Path(args.directory)
    config = load_config(workdir, args.configfile)
    registry = load_registry(
        resources.styles_path(config["styles_file"], workdir), config["style_backends"]
    )
    return workdir, config, registry


def cmd_styles(args: argparse.Namespace) -> int:
    _, config, registry = load_workflow(args)
    selected = select_styles(registry, config["styles"])
    out(f"{'':2}{'style':<24} {'backend':<13} description")
    for name, style in registry.items():
        mark = "* " if name in selected else "  "
        out(f"{mark}{name:<24} {style['backend']:<13} {style['description']}")
    out(f"\n* = built by this config ({len(selected)} of {len(registry)})")
    return 0


def inventory_photos(
    workdir: Path, config: Mapping[str, Any]
) -> tuple[list[Photo], list[dict[str, Any]]]:
    """The photos the last inventory took and those it set aside; every photo before one ran."""
    from i2i.core.files import read_json
    from i2i.stages.library.inventory import RECORD, taken

    albums_dir = workdir / config["albums_dir"]
    if config["photos"]["library"] and not albums_dir.exists():
        return [], []
    library = discover(albums_dir, config["extensions"], config["links_outside"])
    if not (workdir / RECORD).exists():
        return library.photos, []
    record = read_json(workdir / RECORD)
    root = albums_dir if config["photos"]["library"] else None
    return taken(library.photos, record, root), record["rejected"]


def export_problems(workdir: Path) -> dict[str, Any]:
    """The last Photos export's missing originals and errors (empty without one)."""
    from i2i.core.files import read_json
    from i2i.stages.library.inventory import RECORD

    if not (workdir / RECORD).exists():
        return {}
    return read_json(workdir / RECORD).get("export", {})


def cmd_progress(args: argparse.Namespace) -> int:
    from i2i.stages.fallbacks import find_fallbacks
    from i2i.stages.report import (
        format_export,
        format_rejected,
        format_table,
        summarise,
        unchanged_renders,
    )

    workdir, config, registry = load_workflow(args)
    styles = select_styles(registry, config["styles"])
    photos, rejected = inventory_photos(workdir, config)
    out(format_table(summarise(workdir, photos, styles), args.cores))
    if rejected:
        out(format_rejected(rejected))
    problems = format_export(export_problems(workdir))
    if problems:
        out(problems)
    fallbacks = find_fallbacks(workdir, [(p.album, p.photo) for p in photos])
    if fallbacks:
        out(
            f"made by a network fallback: {len(fallbacks)} file(s); "
            "`i2i redo --fallbacks` has the next run make them again"
        )
    unchanged = unchanged_renders(workdir)
    if unchanged:
        out(
            f"look unchanged from their photo: {len(unchanged)} styled image(s) (their LoRA "
            f"may have had no effect), e.g. {unchanged[0].relative_to(workdir)}"
        )
    return 0


def cmd_redo(args: argparse.Namespace) -> int:
    from i2i.stages.fallbacks import find_fallbacks, redo_fallbacks

    if not args.fallbacks:
        raise I2IError("i2i redo needs --fallbacks")
    workdir, config, _ = load_workflow(args)
    photos, _ = inventory_photos(workdir, config)
    found = find_fallbacks(workdir, [(p.album, p.photo) for p in photos])
    for path in found:
        out(f"{'would redo' if args.dry_run else 'redo'} {path.relative_to(workdir)}")
    if not args.dry_run:
        redo_fallbacks(found)
    done = "would be removed (dry run)" if args.dry_run else "removed"
    out(
        f"{len(found)} file(s) made by a network fallback {done}: the next snakemake makes "
        "them again, and what reads them"
    )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from i2i.run.runcontrol import request_stop

    path = request_stop(args.directory)
    out(f"stop requested ({path}): the running workflow finishes the images in flight and exits")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    """One photo through one style, as the workflow would (preprocess, then the classic backend
    or the FLUX worker); the output format follows the output's extension."""
    import contextlib

    from PIL import Image

    from i2i.run.resident_client import render_once
    from i2i.stages.preprocess import preprocess
    from i2i.stages.stylize import output_format, save_styled, stylize

    workdir, config, registry = load_workflow(args)
    if args.style not in registry:
        raise I2IError(f"unknown style {args.style!r}; `i2i styles` lists them")
    output_format(args.output)
    style = registry[args.style]
    chosen = backends.backend(style["backend"])
    if chosen.resident:
        # In the workflow folder, as Snakemake runs: relative model and LoRA paths resolve
        # the same, and a worker of a running workflow (same settings) is shared.
        with contextlib.chdir(workdir):
            plan = chosen.prepare_run(config, {args.style: style})
        if plan:
            log.info("%s", plan)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "preprocessed.webp"
        long_side = args.long_side or config["preprocess"]["long_side"]
        preprocess(args.photo, prepared, long_side, config["preprocess"]["quality"])
        if not chosen.resident:
            stylize(prepared, args.output, style, 1, args.style, Path(args.photo).name)
        else:
            styled = Path(tmp) / "styled.png"
            section = config.get(chosen.section, {})
            with contextlib.chdir(workdir):
                reply = render_once(prepared, styled, args.style, style, section)
            with Image.open(styled) as image:
                save_styled(image, args.output)
            log.info("%s: %.2f s in the %s worker", args.style, reply["seconds"], chosen.name)
    out(f"wrote {args.output}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from i2i.stages.audit.keys import entries
    from i2i.stages.audit.lines import plan_lines, verify_lines
    from i2i.stages.audit.prune import plan
    from i2i.stages.audit.verify import remove_markers, verify_markers

    if not (args.dry_run or args.verify):
        raise I2IError("i2i publish needs --dry-run or --verify (snakemake publishes)")
    workdir, config, registry = load_workflow(args)
    styles = select_styles(registry, config["styles"])
    photos, _ = inventory_photos(workdir, config)
    settings = config["publish"]
    images = entries(workdir, [(p.album, p.photo) for p in photos], styles, settings)
    if not args.verify:
        for line in plan_lines(plan(workdir, images, settings), settings["target"]):
            out(line)
        return 0
    checked, bad = verify_markers(workdir, images, settings)
    if not args.dry_run:
        remove_markers(bad)
    for line in verify_lines(checked, bad, workdir, removed=not args.dry_run):
        out(line)
    return 1 if bad else 0


def cmd_init(args: argparse.Namespace) -> int:
    from i2i.run.launch import init_folder

    folder = Path(args.folder or args.directory)
    for path in init_folder(folder, sample=args.sample, styles=args.styles):
        out(f"wrote {path}")
    where = "" if folder.resolve() == Path.cwd() else f"cd {folder} && "
    out(f"next: put album folders in {folder / 'albums'}, then `{where}i2i run`")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from i2i.run.launch import run_snakemake, snakemake_argv

    configfiles = [str(Path(c).absolute()) for c in args.configfile]
    run_snakemake(snakemake_argv(args.directory, configfiles, args.snakemake_options))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line. ``-d`` and ``--configfile`` go before or after the subcommand."""
    directory_help = "working folder: its config.yaml, albums, results (default: .)"
    configfile_help = "config merged over config.yaml (repeatable, merged in the order given)"
    main_parser = argparse.ArgumentParser(
        prog="i2i",
        description="The i2i workflow: start a folder (init) and run the workflow in it (run), "
        "check the set-up, list the styles, follow a run's progress, stop it, audit what is "
        "published, and restyle one photo.",
    )
    main_parser.add_argument("--version", action="version", version=f"i2i {__version__}")
    main_parser.add_argument("-d", "--directory", default=".", help=directory_help)
    main_parser.add_argument("--configfile", action="append", default=[], help=configfile_help)
    # The same options after the subcommand. A subcommand parses into a fresh namespace that
    # then overwrites the main one, so these have no defaults (an option given only before the
    # subcommand stays) and the config files given after it are kept apart, for main() to
    # append to those given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("-d", "--directory", default=argparse.SUPPRESS, help=directory_help)
    after.add_argument(
        "--configfile",
        dest="configfile_after",
        metavar="CONFIGFILE",
        action="append",
        default=argparse.SUPPRESS,
        help=configfile_help,
    )
    subparsers = main_parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, help=help_text, parents=[after])

    init = command("init", "write a starter folder: config.yaml and an albums folder")
    init.add_argument("folder", nargs="?", default=None, help="the folder (default: -d, or .)")
    init.add_argument(
        "--sample", action="store_true", help="put the bundled sample album in its albums folder"
    )
    init.add_argument(
        "--styles", action="store_true", help="copy the bundled styles.yaml there, to edit"
    )
    subparsers.add_parser(
        "run",
        add_help=False,
        help="run the workflow in the folder with its profile; any other option goes to "
        "snakemake (i2i run --help lists them)",
    )
    command("check", "check config, folders, GPU, weights, Ollama, S3")
    command("styles", "the style registry as a table")
    progress = command("progress", "images done/pending, s/image, ETA")
    progress.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    redo = command(
        "redo", "have the next run make again what a network fallback made (--fallbacks)"
    )
    redo.add_argument(
        "--fallbacks", action="store_true", help="captions and places made by a fallback"
    )
    redo.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    command("stop", "finish the images in flight, then stop the running workflow")
    publish = command(
        "publish", "what publishing would change (--dry-run); check markers (--verify)"
    )
    publish.add_argument(
        "--dry-run", action="store_true", help="report only: write and delete nothing"
    )
    publish.add_argument(
        "--verify",
        action="store_true",
        help="remove markers whose copy at the target is gone or differs (exit 1 if any)",
    )
    stylize = command("stylize", "one photo through one style, no workflow")
    stylize.add_argument("photo")
    stylize.add_argument("style")
    stylize.add_argument("output")
    stylize.add_argument("--long-side", type=int, default=None)
    return main_parser


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "run": cmd_run,
    "check": cmd_check,
    "styles": cmd_styles,
    "progress": cmd_progress,
    "redo": cmd_redo,
    "stop": cmd_stop,
    "publish": cmd_publish,
    "stylize": cmd_stylize,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``i2i`` command."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    command_line = parser()
    args, extra = command_line.parse_known_args(argv)
    if args.command != "run" and extra:
        command_line.error(f"unrecognized arguments: {' '.join(extra)}")
    args.snakemake_options = extra
    args.configfile += vars(args).pop("configfile_after", [])
    try:
        return COMMANDS[args.command](args)
    except I2IError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
