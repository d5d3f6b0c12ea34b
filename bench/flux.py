"""Benchmark the flux-kontext backend: model load time, seconds per image, peak memory.

    python bench/flux.py --model black-forest-labs/FLUX.1-Kontext-dev   # or a local folder
    python bench/flux.py --random full      # real FLUX.1-Kontext-dev architecture, random weights
    python bench/flux.py --random tiny      # the tiny test pipeline (CPU, seconds)
    python bench/flux.py --model … --compile \
        --lora Kontext-Style/Ghibli_lora:Ghibli_lora_weights.safetensors  # LoRA, torch.compile

``--model`` goes through the same loading code as the worker (hub id or local folder, dtype,
offload, compile); ``--random`` builds the pipeline in memory (no download) and counts the build
as the load. ``--lora`` (a .safetensors path or ``repo:weight_name``) renders through a style's
LoRA as the worker does (with ``--compile``: hot-swapped into a slot of ``--lora-rank``). Images
are square ``--size`` (1024 by default), conditioning image resized as in production. Prints one
table row per image and a summary.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i import I2IError
from i2i.backends.flux import Backend, quiet_libraries, select_device, select_dtype
from i2i.flux_client import Settings

log = logging.getLogger("bench.flux")


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


def load(args: argparse.Namespace) -> tuple[Backend, float]:
    """The backend and the seconds it took to load or build."""
    started = time.perf_counter()
    if args.random:
        from i2i.flux_models import build_pipeline

        device = select_device(args.device)
        dtype = select_dtype(args.dtype, device)
        pipe = build_pipeline(args.random, dtype=dtype).to(device)
        pipe.set_progress_bar_config(disable=True)
        backend = Backend(pipe, device, settings(args))
        if args.compile:
            pipe.enable_lora_hotswap(target_rank=args.lora_rank)
    else:
        backend = Backend.load(settings(args))
    if backend.device == "cuda":
        torch.cuda.synchronize()
    return backend, time.perf_counter() - started


def settings(args: argparse.Namespace) -> Settings:
    return Settings(
        model=args.model or Settings.model,
        device=args.device,
        dtype=args.dtype,
        offload=args.offload,
        compile=args.compile,
        lora_rank=args.lora_rank,
    )


def lora_style(spec: str | None) -> dict:
    """A style for ``--lora``: a local file, or ``repo:weight_name`` on the hub."""
    style = {"prompt": "Turn this image into the Ghibli style.", "lora_scale": 1.0}
    if spec is None:
        return style
    if Path(spec).expanduser().is_file():
        return {**style, "lora": {"path": spec}}
    repo, _, weight = spec.partition(":")
    return {**style, "lora": {"repo": repo, **({"weight_name": weight} if weight else {})}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="hub id or local diffusers folder")
    source.add_argument("--random", choices=["tiny", "full"], help="random weights, no download")
    source.add_argument("--tiny", dest="random", action="store_const", const="tiny")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--images", type=int, default=3, help="images to time (after one warm-up)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"]
    )
    parser.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    parser.add_argument("--lora", help="a LoRA .safetensors file or repo:weight_name")
    parser.add_argument("--compile", action="store_true", help="torch.compile (flux.compile)")
    parser.add_argument("--lora-rank", type=int, default=256, help="LoRA slot rank with --compile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        backend, load_seconds = load(args)
        style = {**lora_style(args.lora), "steps": args.steps, "size": args.size}
        if args.lora:
            backend.select("bench", style)
        image = test_image(args.size)
        _, warmup = backend.generate(image, style)
        times = [backend.generate(image, style)[1] for _ in range(args.images)]
    except I2IError as exc:
        log.error("%s", exc)
        return 1
    dtype = next(backend.pipe.transformer.parameters()).dtype
    rows = [
        ("model", args.model or f"random {args.random}"),
        ("LoRA / compile", f"{args.lora or 'none'} / {'yes' if args.compile else 'no'}"),
        ("device / dtype", f"{backend.device} / {str(dtype).removeprefix('torch.')}"),
        ("size / steps", f"{args.size}² / {args.steps}"),
        ("load (s)", f"{load_seconds:.2f}"),
        ("first image (s)", f"{warmup:.3f}"),
        *((f"image {i + 1} (s)", f"{t:.3f}") for i, t in enumerate(times)),
        ("mean s/image", f"{sum(times) / len(times):.3f}"),
        ("peak memory", peak_memory(backend.device)),
    ]
    width = max(len(name) for name, _ in rows)
    sys.stdout.write("\n".join(f"{name:<{width}}  {value}" for name, value in rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
