"""The ``flux-kontext`` backend: diffusers' FluxKontextPipeline with one LoRA adapter per style.

The base model is loaded once (:func:`load_pipeline`); each style's LoRA is loaded once as a named
adapter and selected per image with ``set_adapters``. Runs inside the FLUX worker process
(:mod:`i2i.flux_worker`), which is the only place that imports torch and diffusers.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers import FluxKontextPipeline
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from PIL import Image

from i2i import I2IError
from i2i.files import atomic_path
from i2i.flux_client import Settings

log = logging.getLogger("i2i.flux")

STYLED_QUALITY = 95
MULTIPLE = 16
OFFLOAD_HINT = "set `flux.offload: model` (or `sequential`) in the config, or a smaller `size`"
LOGIN_HINT = (
    "accept the licence on the model page (https://huggingface.co/{repo}), then log in with "
    "`huggingface-cli login` or set HF_TOKEN"
)


def select_device(requested: str = "auto") -> str:
    """``cuda``, ``mps`` or ``cpu``: the requested one (checked) or the best available."""
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if requested == "auto":
        return next(name for name, ok in available.items() if ok)
    if not available.get(requested, False):
        raise I2IError(f"flux.device: {requested} is not available on this machine")
    return requested


def _bf16_works(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        torch.ones(2, dtype=torch.bfloat16, device=device).sum().item()
    except (RuntimeError, TypeError):
        return False
    return True


def select_dtype(requested: str, device: str) -> torch.dtype:
    """The requested dtype, or for ``auto``: bfloat16 where the device supports it, else float16
    on accelerators and float32 on the CPU."""
    if requested != "auto":
        return getattr(torch, requested)
    if _bf16_works(device):
        return torch.bfloat16
    return torch.float32 if device == "cpu" else torch.float16


def _is_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or Path(source).exists()


def _hub_error(exc: BaseException, what: str, repo: str) -> I2IError:
    """A clear message for a failed download/load of ``repo`` (base model or LoRA)."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is not None and current not in chain:
            chain.append(current)
            pending += [current.__cause__, current.__context__]
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, GatedRepoError) for e in chain) or "gated" in text.lower():
        return I2IError(f"{what} {repo} is gated: " + LOGIN_HINT.format(repo=repo))
    offline = (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError)
    if any(isinstance(e, offline) for e in chain) or "not fully cached" in text:
        return I2IError(
            f"{what} {repo}: weights are not in the local Hugging Face cache and the hub cannot be "
            f"reached; download them first (`huggingface-cli download {repo}`) or point to a "
            "local folder/file"
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return I2IError(
            f"{what} {repo}: no such repository on the Hugging Face hub (or it is private: "
            "log in with `huggingface-cli login` or set HF_TOKEN)"
        )
    if any(isinstance(e, EntryNotFoundError) for e in chain):
        return I2IError(f"{what} {repo}: file not found in the repository ({exc})")
    return I2IError(f"{what} {repo}: cannot load: {exc}")


def load_pipeline(settings: Settings) -> tuple[FluxKontextPipeline, str]:
    """Load the base model (hub id or local folder) onto the selected device; return it and the
    device name."""
    if settings.quantize != "none":
        raise I2IError(
            f"flux.quantize: {settings.quantize} is not supported in this version; "
            "use `flux.offload: model` or `sequential` on smaller GPUs"
        )
    device = select_device(settings.device)
    dtype = select_dtype(settings.dtype, device)
    model = settings.model
    if _is_local(model):
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            raise I2IError(
                f"flux.model: {folder} is not a diffusers model folder (no model_index.json)"
            )
        model = str(folder)
    log.info("loading %s on %s as %s (offload: %s)", model, device, dtype, settings.offload)
    try:
        pipe = FluxKontextPipeline.from_pretrained(model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, "flux.model", model) from exc
    pipe.set_progress_bar_config(disable=True)
    _place(pipe, device, settings.offload)
    return pipe, device


def _place(pipe: FluxKontextPipeline, device: str, offload: str) -> None:
    """Move the pipeline to ``device`` or enable CPU offload (only with an accelerator)."""
    if offload != "none" and device == "cpu":
        log.warning("flux.offload: %s needs a GPU; running on the CPU without offload", offload)
        offload = "none"
    try:
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
    except torch.OutOfMemoryError as exc:
        raise I2IError(f"out of GPU memory loading the model: {OFFLOAD_HINT}") from exc


def adapter_name(style_name: str, lora: Mapping[str, str]) -> str:
    """A stable adapter name for a style's LoRA: the style name plus a hash of its source."""
    source = "|".join(f"{k}={lora[k]}" for k in sorted(lora))
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', style_name)}_{digest}"


def _size(image: Image.Image, long_side: int) -> tuple[int, int]:
    """Output (width, height): ``long_side`` on the longer side, the input's aspect ratio, both
    floored to a multiple of 16."""
    width, height = image.size
    scale = long_side / max(width, height)
    return (
        max(MULTIPLE, int(width * scale) // MULTIPLE * MULTIPLE),
        max(MULTIPLE, int(height * scale) // MULTIPLE * MULTIPLE),
    )


@dataclass
class Backend:
    """A loaded pipeline with its LoRA adapters; renders one image per call."""

    pipe: FluxKontextPipeline
    device: str
    adapters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings) -> Backend:
        """Load the base model once."""
        pipe, device = load_pipeline(settings)
        return cls(pipe, device)

    def adapter(self, style_name: str, style: Mapping[str, Any]) -> str:
        """The adapter of ``style``'s LoRA, loaded on first use and checked."""
        lora = style["lora"]
        name = adapter_name(style_name, lora)
        if name in self.adapters:
            return name
        if "path" in lora:
            path = Path(lora["path"]).expanduser()
            if not path.is_file():
                raise I2IError(f"style {style_name}: LoRA file {path} not found")
            source, kwargs, label = str(path), {}, str(path)
        else:
            source, label = lora["repo"], lora["repo"]
            kwargs = {"weight_name": lora["weight_name"]} if "weight_name" in lora else {}
        started = time.perf_counter()
        try:
            self.pipe.load_lora_weights(source, adapter_name=name, **kwargs)
        except (OSError, ValueError) as exc:
            raise _hub_error(exc, f"style {style_name}: LoRA", label) from exc
        loaded = {n for names in self.pipe.get_list_adapters().values() for n in names}
        if name not in loaded:
            raise I2IError(
                f"style {style_name}: LoRA {label} has no weights that match this model "
                "(a LoRA for another base model?)"
            )
        log.info("LoRA %s loaded as %s in %.2f s", label, name, time.perf_counter() - started)
        self.adapters[name] = label
        return name

    def generate(self, image: Image.Image, style: Mapping[str, Any]) -> tuple[Image.Image, float]:
        """Run the pipeline on ``image`` with ``style``'s prompt and settings (adapters as set);
        return the output and the seconds it took."""
        width, height = _size(image, int(style.get("size", 1024)))
        generator = torch.Generator(device="cpu").manual_seed(int(style.get("seed", 42)))
        started = time.perf_counter()
        try:
            result = self.pipe(
                image=image,
                prompt=style["prompt"],
                num_inference_steps=int(style.get("steps", 24)),
                guidance_scale=float(style.get("guidance", 2.5)),
                width=width,
                height=height,
                max_area=width * height,
                generator=generator,
                _auto_resize=bool(style.get("resize_input", True)),
            ).images[0]
        except torch.OutOfMemoryError as exc:
            _free(self.device)
            raise I2IError(f"out of GPU memory at {width}×{height}: {OFFLOAD_HINT}") from exc
        except RuntimeError as exc:
            if "out of memory" not in str(exc).lower():
                raise
            _free(self.device)
            raise I2IError(f"out of memory at {width}×{height}: {OFFLOAD_HINT}") from exc
        return result, time.perf_counter() - started

    def render(self, source: str, target: str, style_name: str, style: Mapping[str, Any]) -> dict:
        """Render ``source`` in ``style`` into the WebP ``target``; return timings and size."""
        name = self.adapter(style_name, style)
        self.pipe.set_adapters([name], adapter_weights=[float(style.get("lora_scale", 1.0))])
        try:
            with Image.open(source) as opened:
                image = opened.convert("RGB")
        except OSError as exc:
            raise I2IError(f"{source}: cannot read image: {exc}") from exc
        result, seconds = self.generate(image, style)
        with atomic_path(target) as tmp:
            result.save(tmp, "WEBP", quality=STYLED_QUALITY, method=4)
        return {
            "seconds": round(seconds, 4),
            "width": result.width,
            "height": result.height,
            "adapter": name,
        }


def _free(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
    elif device == "mps":
        torch.mps.empty_cache()


def quiet_libraries() -> None:
    """Keep diffusers' and transformers' progress bars and info lines out of the worker log."""
    diffusers.utils.logging.set_verbosity_warning()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
