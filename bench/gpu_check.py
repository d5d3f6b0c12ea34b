"""One GPU check of the FLUX path, built to finish within minutes on a GPU host with no network.

    python bench/gpu_check.py            # full-size random FLUX.1-Kontext, bf16, 1024², 24 steps
    python bench/gpu_check.py --tiny     # the same code on the tiny model, on this CPU

The model is built once with random weights on the device (no download), in eval mode. Three
LoRAs shaped like Kontext-Style's (rank 64 over the trainer's target modules) are written to a
temp folder. Then each stage gets a fresh transformer (same seed, so the stages' images compare)
and renders through the worker's own code (:class:`i2i.backends.flux.Backend`): the first image
with LoRA 1, a second one (steady), then a hot-swap to LoRA 2 and to LoRA 3 with one image each.

Stages: ``plain`` (eager adapters), ``compile`` (regional torch.compile, LoRAs hot-swapped into
one slot), ``compile+float8`` (torchao float8 weights and activations; CUDA of compute
capability ≥ 8.9 only, else the row says why). Not run by default, for issue 23's speed item:
``compile+cudnn`` (diffusers' ``_native_cudnn`` attention backend; CUDA only) and
``compile+channels-last`` (the VAE in channels-last memory format); a stage name is parts joined
by ``+``, so ``compile+cudnn+channels-last`` combines them. Each stage runs under its own deadline
(``--deadline``): a stage that runs out is a row that says so, and the next stage runs, so a
partial table still comes back. Rows are printed as they finish.

Columns: build (transformer, quantisation) s, first image s (with compile: the compile),
steady s/image, switch s (a hot-swap plus its image, less the steady time), peak memory, graphs
compiled by the first image and recompiles during the swaps, PSNR of the first image against
``plain``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import math
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from flux_models import build_pipeline, build_transformer

from bench.flux import peak_memory, psnr, test_image
from i2i.backends.flux import Backend, inference_mode, quiet_libraries
from i2i.backends.flux_settings import Settings

log = logging.getLogger("bench.gpu_check")

# The modules Kontext-Style's trainer adapts (see shared FLUX facts).
DOUBLE_TARGETS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
)
SINGLE_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v")
STAGES = ("plain", "compile", "compile+float8")
SPEED_STAGES = ("compile+cudnn", "compile+channels-last")
PARTS = {"plain", "compile", "float8", "cudnn", "channels-last"}
COLUMNS = (
    "stage",
    "build s",
    "first image s",
    "steady s/image",
    "switch s",
    "peak memory",
    "graphs / recompiles",
    "PSNR vs plain dB",
)


class StageTimeout(Exception):
    """A stage ran past its deadline."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise StageTimeout in this (main) thread once ``seconds`` have passed."""

    def expire(signum: int, frame: Any) -> None:
        raise StageTimeout(f"past its {seconds:g} s deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def lora_targets(transformer: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    """The transformer's Linear layers that Kontext-Style's LoRAs adapt."""
    found = []
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        double = name.startswith("transformer_blocks.") and name.endswith(DOUBLE_TARGETS)
        single = name.startswith("single_transformer_blocks.") and name.endswith(SINGLE_TARGETS)
        if double or single:
            found.append((name, module))
    return found


def write_loras(
    transformer: torch.nn.Module, folder: Path, rank: int, count: int = 3
) -> list[Path]:
    """``count`` random LoRAs of ``rank`` over the trainer's modules, in diffusers' layout and
    the transformer's dtype (drawn on its device: a full-size one is 180 M values)."""
    from safetensors.torch import save_file

    targets = lora_targets(transformer)
    device, dtype = next(transformer.parameters()).device, next(transformer.parameters()).dtype
    paths = []
    for index in range(count):
        generator = torch.Generator(device=device).manual_seed(2000 + index)
        weights = {}
        for name, module in targets:
            bound = 1 / math.sqrt(module.in_features)
            a = torch.rand(rank, module.in_features, generator=generator, device=device) * 2 - 1
            b = torch.rand(module.out_features, rank, generator=generator, device=device) * 2 - 1
            weights[f"transformer.{name}.lora_A.weight"] = (a * bound).to(dtype).cpu()
            weights[f"transformer.{name}.lora_B.weight"] = (b / rank).to(dtype).cpu()
        path = folder / f"kontext_style_like_{index}.safetensors"
        save_file(weights, str(path))
        paths.append(path)
    return paths


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def float8_refusal(device: str) -> str | None:
    """Why float8 cannot run here, or None."""
    if device != "cuda":
        return "needs CUDA"
    if torch.cuda.get_device_capability() < (8, 9):
        return "needs compute capability ≥ 8.9"
    try:
        import torchao  # noqa: F401
    except ImportError as exc:
        return f"torchao does not import ({exc})"
    return None


def stage_refusal(stage: str, device: str) -> str | None:
    """Why ``stage`` cannot run on ``device``, or None."""
    parts = stage.split("+")
    if "float8" in parts:
        refusal = float8_refusal(device)
        if refusal:
            return f"float8 {refusal}"
    if "cudnn" in parts and device != "cuda":
        return "cudnn attention needs CUDA"
    return None


def run_stage(
    stage: str, pipe: Any, args: argparse.Namespace, loras: list[Path], image: Any
) -> tuple[list[str], np.ndarray]:
    """One stage's row and its first image."""
    device = args.device
    parts = set(stage.split("+"))
    compiled = "compile" in parts
    started = time.perf_counter()
    pipe.transformer = build_transformer(args.size_name, 0, args.dtype, device)
    if "float8" in parts:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, quantize_

        quantize_(pipe.transformer, Float8DynamicActivationFloat8WeightConfig())
    if "cudnn" in parts:
        pipe.transformer.set_attention_backend("_native_cudnn")
    pipe.vae.to(
        memory_format=torch.channels_last if "channels-last" in parts else torch.contiguous_format
    )
    inference_mode(pipe)
    settings = Settings(device=device, compile=compiled, lora_rank=args.rank)
    backend = Backend(pipe, device, settings)
    synchronize(device)
    build = time.perf_counter() - started
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    styles = [
        {
            "lora": {"path": str(path)},
            "prompt": "Turn this image into the Ghibli style.",
            "steps": args.steps,
            "size": args.size,
            "seed": 42,
            "resize_input": False,
        }
        for path in loras
    ]

    def timed(index: int) -> tuple[np.ndarray, float]:
        begun = time.perf_counter()
        backend.select(f"lora{index}", styles[index])
        levels, _ = backend.generate(image, styles[index])
        synchronize(device)
        return levels, time.perf_counter() - begun

    first, first_s = timed(0)
    after_first = backend.info().get("compiled_graphs", 0)
    steady = statistics.median(timed(0)[1] for _ in range(max(1, args.images - 1)))
    switches = [timed(index)[1] - steady for index in range(1, len(styles))]
    recompiles = backend.info().get("compiled_graphs", 0) - after_first
    row = [
        stage,
        f"{build:.1f}",
        f"{first_s:.2f}",
        f"{steady:.2f}",
        f"{statistics.median(switches):.2f}" if switches else "n/a",
        peak_memory(device),
        f"{after_first} / {recompiles}" if compiled else "-",
    ]
    return row, first


def release(pipe: Any) -> None:
    with contextlib.suppress(Exception):
        pipe.unload_lora_weights()
    pipe.transformer = None
    gc.collect()
    torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def format_row(cells: list[str]) -> str:
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny model on this machine")
    parser.add_argument("--size", type=int, help="square image side (1024; tiny: 64)")
    parser.add_argument("--steps", type=int, help="steps per image (24; tiny: 2)")
    parser.add_argument("--images", type=int, default=2, help="images with the first LoRA")
    parser.add_argument("--rank", type=int, help="the LoRAs' rank (64; tiny: 4)")
    parser.add_argument("--deadline", type=float, help="seconds per stage (100; tiny: 600)")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"comma-separated (default %(default)s; speed: {','.join(SPEED_STAGES)})",
    )
    args = parser.parse_args(argv)
    unknown = {p for stage in args.stages.split(",") for p in stage.split("+")} - PARTS
    if unknown:
        parser.error(f"unknown stage parts: {', '.join(sorted(unknown))} (known: {sorted(PARTS)})")
    tiny = args.tiny
    args.size_name = "tiny" if tiny else "full"
    args.size = args.size or (64 if tiny else 1024)
    args.steps = args.steps or (2 if tiny else 24)
    args.rank = args.rank or (4 if tiny else 64)
    args.deadline = args.deadline or (600 if tiny else 100)
    args.device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    args.dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    began = time.perf_counter()
    started = time.perf_counter()
    pipe = build_pipeline(args.size_name, 0, args.dtype, args.device)
    pipe.set_progress_bar_config(disable=True)
    inference_mode(pipe)
    synchronize(args.device)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    out = sys.stdout
    out.write(
        f"# {args.size_name} FLUX.1-Kontext (random), {name}, {args.dtype}, {args.size}², "
        f"{args.steps} steps, LoRA rank {args.rank}; torch {torch.__version__}; "
        f"model built in {time.perf_counter() - started:.1f} s\n"
    )
    out.write(format_row(list(COLUMNS)) + "\n" + format_row(["---"] * len(COLUMNS)) + "\n")
    out.flush()
    image = test_image(args.size)
    reference = None
    failures = 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        loras = write_loras(pipe.transformer, Path(folder), args.rank)
        for stage in args.stages.split(","):
            refusal = stage_refusal(stage, args.device)
            if refusal:
                cells = [stage, f"skipped: {refusal}"]
            else:
                try:
                    with deadline(args.deadline):
                        cells, first = run_stage(stage, pipe, args, loras, image)
                    if reference is None:
                        reference = first
                    cells.append(f"{psnr(first, reference):.1f}")
                except (StageTimeout, Exception) as exc:  # a stage's failure is its row
                    failures += 1
                    log.exception("stage %s failed", stage)
                    cells = [stage, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"]
            release(pipe)
            out.write(format_row(cells) + "\n")
            out.flush()
    out.write(f"# total {time.perf_counter() - began:.1f} s\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
