"""Benchmark the flux-kontext backend per option set: load, first image, s/image, LoRA switch,
peak memory, and each option's image difference (PSNR) against plain.

    python bench/flux.py --model black-forest-labs/FLUX.1-Kontext-dev   # or a local folder
    python bench/flux.py --random full      # real FLUX.1-Kontext-dev architecture, random weights
    python bench/flux.py --random tiny --size 64 --images 1   # the tiny test pipeline (CPU)
    python bench/flux.py --model … --options plain,compile,cache,compile+cache --steps 24,28 \
        --lora Kontext-Style/Ghibli_lora:Ghibli_lora_weights.safetensors --lora other.safetensors

``--options`` is a comma list of option sets, each ``plain`` or a ``+``-joined combination of
``compile`` (torch.compile of the transformer's repeated blocks, LoRAs hot-swapped into one slot
of ``--lora-rank``) and ``cache`` (First Block Cache at ``--cache-threshold``). ``plain`` is
always run (first, added when missing): it is the reference of the PSNR column. Each option set
gets a fresh backend (``--model``: loaded with the worker's code; ``--random``: the pipeline built
in memory with the same seed, the build counted as the load), then for each of ``--steps`` one row.

Every image renders through a LoRA, as a FLUX style does. Two LoRAs are needed for the switch
column: the two ``--lora`` given (a .safetensors path or ``repo:weight_name``), or, without
``--lora``, two random rank-4 LoRAs written for the loaded transformer into a temp folder. With a
single ``--lora`` the switch column reads n/a. Images are square ``--size`` (1024 by default),
the test image resized as in production, the same seed for every render.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from i2i import I2IError
from i2i.backends.flux import (
    Backend,
    enable_step_cache,
    quiet_libraries,
    select_device,
    select_dtype,
)
from i2i.backends.flux_settings import Settings

log = logging.getLogger("bench.flux")

OPTIONS = ("compile", "cache")
LORA_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0")
COLUMNS = (
    "options",
    "steps",
    "load s",
    "first image s",
    "steady s/image",
    "LoRA switch s",
    "peak memory",
    "PSNR vs plain dB",
)


def test_image(size: int) -> Image.Image:
    """A deterministic colourful square to edit."""
    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([x, y, 0.5 + 0.5 * np.sin(8 * x * y)], axis=-1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def peak_memory(device: str) -> str:
    """Peak accelerator memory, or the process's peak RSS on the CPU."""
    if device == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (CUDA allocated)"
    if device == "mps":
        return f"{torch.mps.driver_allocated_memory() / 2**30:.2f} GiB (MPS driver)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (peak RSS)"


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference`` (levels as the backend
    renders them, rounded as written) in dB (inf: identical)."""
    a = np.nan_to_num(np.asarray(image, dtype=np.float64)).round()
    b = np.nan_to_num(np.asarray(reference, dtype=np.float64)).round()
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def option_sets(text: str) -> list[str]:
    """The ``--options`` list, checked, ``plain`` first."""
    sets = []
    for item in (part.strip() for part in text.split(",")):
        names = [] if item == "plain" else item.split("+")
        unknown = [name for name in names if name not in OPTIONS]
        if not item or unknown:
            raise SystemExit(f"--options: {item!r}: use plain or a +-joined set of {OPTIONS}")
        label = "+".join(name for name in OPTIONS if name in names) or "plain"
        if label not in sets:
            sets.append(label)
    return ["plain", *(s for s in sets if s != "plain")]


def settings(args: argparse.Namespace, options: str) -> Settings:
    names = options.split("+")
    return Settings(
        model=args.model or Settings.model,
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        compile="compile" in names,
        lora_rank=args.lora_rank,
        cache="first_block" if "cache" in names else "none",
        cache_threshold=args.cache_threshold,
    )


def load(args: argparse.Namespace, config: Settings) -> tuple[Backend, float]:
    """A fresh backend with ``config`` and the seconds it took to load or build."""
    started = time.perf_counter()
    if args.random:
        from flux_models import build_pipeline

        device = select_device(args.device)
        dtype = select_dtype(args.dtype, device)
        pipe = build_pipeline(args.random, dtype=dtype).to(device)
        pipe.set_progress_bar_config(disable=True)
        enable_step_cache(pipe, config)
        backend = Backend(pipe, device, config)
    else:
        backend = Backend.load(config)
    if backend.device == "cuda":
        torch.cuda.synchronize()
    return backend, time.perf_counter() - started


def release(backend: Backend) -> None:
    """Free the backend's memory before the next option set loads its own."""
    device = backend.device
    backend.pipe = None  # type: ignore[assignment]
    gc.collect()
    torch._dynamo.reset()
    if device == "cuda":
        torch.cuda.empty_cache()


def write_random_loras(transformer: torch.nn.Module, folder: Path, count: int = 2) -> list[str]:
    """``count`` random rank-4 LoRAs for ``transformer`` (the attention projections, the layers
    of :func:`flux_models.save_random_lora` (tests/)) in diffusers' format. Made from the loaded
    model's layer shapes: save_random_lora builds a whole float32 pipeline, 60+ GB for ``full``."""
    rank = 4
    paths = []
    for index in range(count):
        generator = torch.Generator().manual_seed(1000 + index)
        weights = {}
        for name, module in transformer.named_modules():
            if not (isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS)):
                continue
            bound_a = 1 / math.sqrt(module.in_features)
            a = (torch.rand(rank, module.in_features, generator=generator) * 2 - 1) * bound_a
            b = (torch.rand(module.out_features, rank, generator=generator) * 2 - 1) / rank
            weights[f"transformer.{name}.lora_A.weight"] = a.contiguous()
            weights[f"transformer.{name}.lora_B.weight"] = b.contiguous()
        from safetensors.torch import save_file

        path = folder / f"random_{index}.safetensors"
        save_file(weights, str(path))
        paths.append(str(path))
    return paths


def lora_style(spec: str) -> dict:
    """A style for a LoRA: a local file, or ``repo:weight_name`` on the hub."""
    style = {"prompt": "Turn this image into the Ghibli style.", "lora_scale": 1.0}
    if Path(spec).expanduser().is_file():
        return {**style, "lora": {"path": spec}}
    repo, _, weight = spec.partition(":")
    return {**style, "lora": {"repo": repo, **({"weight_name": weight} if weight else {})}}


def bench_option_set(
    args: argparse.Namespace,
    options: str,
    loras: list[str],
    folder: Path,
    references: dict[int, np.ndarray],
) -> tuple[list[tuple[str, ...]], Backend | None, list[str]]:
    """The rows of one option set (one per step count); with ``plain``, fills ``references``."""
    backend, load_seconds = load(args, settings(args, options))
    if backend.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if not loras:
        loras = write_random_loras(backend.pipe.transformer, folder)
    styles = [(f"lora{i}", lora_style(spec)) for i, spec in enumerate(loras[:2])]
    image = test_image(args.size)
    # Load every LoRA once, untimed, as the worker does on each style's first image (with
    # compile: each select swaps the file's weights into the slot, every time).
    for name, style in reversed(styles):
        backend.select(name, style)
    rows = []
    for steps in args.steps:
        first_name, first = styles[0]
        first = {**first, "steps": steps, "size": args.size}
        backend.select(first_name, first)
        output, first_seconds = backend.generate(image, first)  # with compile: compiles here
        steady = statistics.median(backend.generate(image, first)[1] for _ in range(args.images))
        switch = "n/a (needs two --lora)"
        if len(styles) > 1:
            # The switch: select() of the other (already loaded) LoRA and the first image with
            # it, alternating between the two LoRAs --images times; median, less the steady
            # s/image: what a style change adds to an image.
            switches = []
            for index in range(args.images):
                name, style = styles[(index + 1) % 2]
                style = {**style, "steps": steps, "size": args.size}
                started = time.perf_counter()
                backend.select(name, style)
                backend.generate(image, style)
                switches.append(time.perf_counter() - started)
            switch = f"{statistics.median(switches) - steady:.3f}"
        if options == "plain":
            references[steps] = output
        rows.append(
            (
                options,
                str(steps),
                f"{load_seconds:.2f}",
                f"{first_seconds:.3f}",
                f"{steady:.3f}",
                switch,
                peak_memory(backend.device),
                f"{psnr(output, references[steps]):.2f}",
            )
        )
    return rows, backend, loras


def table(rows: list[tuple[str, ...]]) -> str:
    lines = [COLUMNS, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [
        "  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join([text[0], "  ".join("-" * w for w in widths), *text[1:]]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id or local diffusers folder")
    source.add_argument("--random", choices=["tiny", "full"], help="random weights, no download")
    source.add_argument("--tiny", dest="random", action="store_const", const="tiny")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", default="24,28", help="comma list of step counts")
    parser.add_argument("--images", type=int, default=3, help="images to time (after one warm-up)")
    parser.add_argument("--options", default="plain,cache", help="comma list of option sets")
    parser.add_argument("--cache-threshold", type=float, default=Settings.cache_threshold)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"]
    )
    parser.add_argument(
        "--offload", default="none", choices=["none", "model", "group", "sequential"]
    )
    parser.add_argument(
        "--lora", action="append", default=[], help="a LoRA file or repo:weight_name (twice)"
    )
    parser.add_argument("--compile", action="store_true", help="same as --options plain,compile")
    parser.add_argument(
        "--lora-rank", type=int, default=0, help="LoRA slot rank with compile (0: the first LoRA's)"
    )
    args = parser.parse_args(argv)
    args.steps = [int(s) for s in args.steps.split(",")]
    sets = option_sets("plain,compile" if args.compile else args.options)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    rows: list[tuple[str, ...]] = []
    references: dict[int, np.ndarray] = {}
    loras = list(args.lora)
    header = ""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-flux-") as folder:
            for options in sets:
                try:
                    new, backend, loras = bench_option_set(
                        args, options, loras, Path(folder), references
                    )
                except (I2IError, RuntimeError) as exc:  # torch.compile's errors included
                    if options == "plain":
                        raise
                    # One option set failing (say compile+cache) leaves the others' rows.
                    log.error("options %s failed: %s", options, str(exc).splitlines()[0])
                    rows.append((options, "failed", *["-"] * (len(COLUMNS) - 2)))
                    gc.collect()
                    torch._dynamo.reset()
                    continue
                rows += new
                if not header:
                    dtype = str(backend.dtype).removeprefix("torch.")
                    header = (
                        f"model {args.model or f'random {args.random}'}, "
                        f"{backend.device} / {dtype}, {args.size}², "
                        f"{args.images} timed images per row, LoRAs: "
                        f"{', '.join(args.lora) or 'two random rank-4'}\n"
                    )
                release(backend)
    except (I2IError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    sys.stdout.write(header + table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
