"""The ``flux-kontext`` backend: diffusers' FluxKontextPipeline with one LoRA adapter per style.

The base model is loaded once (:func:`load_pipeline`); each style's LoRA is loaded once as a named
adapter and selected per image with ``set_adapters``. With ``flux.compile`` the transformer's
repeated blocks are compiled with torch.compile after the first LoRA is loaded, and every LoRA is
hot-swapped into that one adapter slot, padded to ``flux.lora_rank`` and zero over the layers a
LoRA does not change, so that a style change does not recompile (a LoRA over layers the slot
lacks grows the slot once). Runs inside the FLUX worker process (:mod:`i2i.run.resident`), the
only place that imports torch and diffusers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import torch
import transformers
from diffusers import FirstBlockCacheConfig, FluxKontextPipeline
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from PIL import Image

from i2i import I2IError
from i2i.backends import lora_files
from i2i.backends.flux_settings import Settings
from i2i.core.files import atomic_path
from i2i.core.quality import check_render, unchanged_warning

log = logging.getLogger("i2i.flux")

STYLED_QUALITY = 95
MULTIPLE = 16
# The first diffusers whose from_pretrained honours `dtype=` (0.35-0.39 ignore it and load the
# 12B transformer in float32; they only knew `torch_dtype=`, deprecated since).
DIFFUSERS_MIN = (0, 40)
SLOT = "i2i_style"
TARGET_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".webp": ("WEBP", {"quality": STYLED_QUALITY, "method": 4}),
    ".png": ("PNG", {}),
}
FLOAT8_CAPABILITY = (8, 9)


def memory_hint(settings: Settings) -> str:
    """The next memory-saving step from ``settings``: what an out-of-memory message suggests."""
    if settings.offload == "none":
        return "set `flux.offload: model` (or `sequential`) in the config, or a smaller `size`"
    if settings.offload in ("model", "group"):
        return "set `flux.offload: sequential` or `flux.quantize: int8`, or a smaller `size`"
    if settings.quantize == "none":
        return "set `flux.quantize: int8` (with `flux.offload: sequential`), or a smaller `size`"
    return "use a smaller `size`: this is the smallest memory setting i2i has"


LOGIN_HINT = (
    "accept the licence on the model page (https://huggingface.co/{repo}), then log in with "
    "`hf auth login` or set HF_TOKEN"
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
    """The requested dtype, or for ``auto``: bfloat16 on a GPU that has it, else float32.

    float16 is never used: FLUX overflows in it and the NaN decode to a black image. The CPU
    gets float32, FLUX's reference precision: CPU runs are for tests and checks, and most CPUs
    have no bfloat16 arithmetic (it is emulated, slower than float32). On a CPU with AMX or
    AVX512-BF16, or short of memory (the transformer is 48 GB in float32), set
    ``flux.dtype: bfloat16``.
    """
    if requested == "float16":
        raise I2IError(
            "flux.dtype: float16 is refused: FLUX overflows in float16 and renders black "
            "images; use bfloat16 (CUDA since Ampere, recent MPS) or float32"
        )
    if requested != "auto":
        return getattr(torch, requested)
    if device != "cpu" and _bf16_works(device):
        return torch.bfloat16
    if device != "cpu":
        log.warning("%s has no bfloat16: FLUX runs in float32 (twice the memory)", device)
    return torch.float32


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def check_diffusers(version: str = diffusers.__version__) -> None:
    """Refuse a diffusers that would silently load the model in another dtype."""
    if _version(version) < DIFFUSERS_MIN:
        wanted = ".".join(map(str, DIFFUSERS_MIN))
        raise I2IError(
            f"diffusers {version} ignores flux.dtype (the model would load in float32): "
            f"upgrade with `pip install 'diffusers>={wanted}'`"
        )


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
            f"reached; download them first (`hf download {repo}`) or point to a "
            "local folder/file"
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return I2IError(
            f"{what} {repo}: no such repository on the Hugging Face hub (or it is private: "
            "log in with `hf auth login` or set HF_TOKEN)"
        )
    if any(isinstance(e, EntryNotFoundError) for e in chain):
        return I2IError(f"{what} {repo}: file not found in the repository ({exc})")
    return I2IError(f"{what} {repo}: cannot load: {exc}")


def quantization_config(quantize: str, device: str) -> Any:
    """``flux.quantize`` as diffusers' quantisation of the transformer (torchao), or None.

    ``int8``: int8 weights, activations in the model dtype (about half the transformer's bf16
    memory, on any device); ``float8``: float8 weights and activations, for GPUs with float8
    units (compute capability 8.9 or newer: Ada, Hopper). LoRAs still load (PEFT wraps the
    quantised layers).
    """
    if quantize == "none":
        return None
    if quantize not in ("int8", "float8"):
        raise I2IError(f"flux.quantize: {quantize} is not supported; use none, int8 or float8")
    if quantize == "float8" and (
        device != "cuda" or torch.cuda.get_device_capability() < FLOAT8_CAPABILITY
    ):
        raise I2IError(
            "flux.quantize: float8 needs a CUDA GPU of compute capability 8.9 or newer "
            "(Ada, Hopper); use int8"
        )
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Int8WeightOnlyConfig,
        )
    except ImportError:
        raise I2IError(
            f"flux.quantize: {quantize} needs torchao: pip install 'i2i[quantize]'"
        ) from None
    from diffusers import PipelineQuantizationConfig, TorchAoConfig

    kind = (
        Int8WeightOnlyConfig()
        if quantize == "int8"
        else Float8DynamicActivationFloat8WeightConfig()
    )
    return PipelineQuantizationConfig(quant_mapping={"transformer": TorchAoConfig(kind)})


def load_pipeline(settings: Settings) -> tuple[FluxKontextPipeline, str]:
    """Load the base model (hub id or local folder) onto the selected device; return it and the
    device name."""
    check_diffusers()
    device = select_device(settings.device)
    dtype = select_dtype(settings.dtype, device)
    quantization = quantization_config(settings.quantize, device)
    if settings.compile and settings.cache != "none":
        raise I2IError(
            "flux.compile with flux.cache is not supported: the step cache decides outside the "
            "compiled graph (torch.compile stops at it); set one of them to false/none"
        )
    if settings.compile and settings.offload != "none" and device != "cpu":
        raise I2IError(
            "flux.compile with flux.offload is not supported yet: set one of them to false/none"
        )
    model = settings.model
    if _is_local(model):
        folder = Path(model).expanduser()
        if not (folder / "model_index.json").is_file():
            raise I2IError(
                f"flux.model: {folder} is not a diffusers model folder (no model_index.json)"
            )
        model = str(folder)
    log.info(
        "loading %s on %s as %s (offload: %s, quantize: %s)",
        model,
        device,
        dtype,
        settings.offload,
        settings.quantize,
    )
    extra = {"quantization_config": quantization} if quantization is not None else {}
    try:
        pipe = FluxKontextPipeline.from_pretrained(model, dtype=dtype, **extra)
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, "flux.model", model) from exc
    loaded = loaded_dtypes(pipe)
    if set(loaded.values()) != {dtype}:
        raise I2IError(
            f"flux.dtype: asked for {dtype}, diffusers {diffusers.__version__} loaded "
            + ", ".join(f"{name} as {value}" for name, value in loaded.items())
        )
    pipe.set_progress_bar_config(disable=True)
    _place(pipe, device, settings)
    inference_mode(pipe)
    return pipe, device


def inference_mode(pipe: FluxKontextPipeline) -> None:
    """Every model of the pipeline in eval mode: dropout off, so the same seed gives the same
    bytes. Called after the load and after every LoRA injection (PEFT's new layers, and the
    dropout a LoRA file's stored config asks for, start in training mode)."""
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()


def training_modules(pipe: FluxKontextPipeline) -> list[str]:
    """The modules of the pipeline still in training mode (none after :func:`inference_mode`)."""
    return [
        f"{name}.{module_name}"
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
        for module_name, module in component.named_modules()
        if module.training
    ]


def loaded_dtypes(pipe: FluxKontextPipeline) -> dict[str, torch.dtype]:
    """The dtype of each model of the pipeline (transformer, text encoders, VAE)."""
    return {
        name: component.dtype
        for name, component in pipe.components.items()
        if isinstance(component, torch.nn.Module)
    }


def _place(pipe: FluxKontextPipeline, device: str, settings: Settings) -> None:
    """Move the pipeline to ``device`` or enable CPU offload (only with an accelerator)."""
    offload = settings.offload
    if offload != "none" and device == "cpu":
        log.warning("flux.offload: %s needs a GPU; running on the CPU without offload", offload)
        offload = "none"
    try:
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "group":
            # Blocks move to the GPU one group ahead of use, on a side stream where there is one.
            pipe.enable_group_offload(
                onload_device=torch.device(device),
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=device == "cuda",
            )
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
    except torch.OutOfMemoryError as exc:
        raise I2IError(f"out of GPU memory loading the model: {memory_hint(settings)}") from exc


def enable_step_cache(pipe: FluxKontextPipeline, settings: Settings) -> None:
    """``flux.cache: first_block``: diffusers' First Block Cache on the transformer. A step whose
    first block's output changed by less than ``cache_threshold`` (relative) since the last
    full step reuses that step's residual for the other blocks: fewer full steps, lossy (the
    bench prints the PSNR against the uncached image)."""
    if settings.cache == "none":
        return
    if settings.cache != "first_block":
        raise I2IError(f"flux.cache: {settings.cache} is not supported; use none or first_block")
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=settings.cache_threshold))


def adapter_name(style_name: str, lora: Mapping[str, str]) -> str:
    """A stable adapter name for a style's LoRA: the style name plus a hash of its source."""
    source = "|".join(f"{k}={lora[k]}" for k in sorted(lora))
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', style_name)}_{digest}"


# Read LoRAs kept in memory for the compiled slot's swaps (least recently used dropped first).
LORA_CACHE_BYTES = 4 << 30
# LoRA adapters kept loaded on the device in eager mode (least recently used unloaded first):
# about eleven Kontext-Style adapters, so a 26-style run stays within its memory plan.
RESIDENT_ADAPTER_BYTES = 4 << 30


@dataclass(frozen=True)
class LoraWeights:
    """A LoRA file read once, in diffusers' layout: the transformer's weights, the alphas and
    the stored adapter config (both set its scale), the layers it covers and its rank."""

    state: dict[str, torch.Tensor]
    alphas: dict[str, torch.Tensor]
    metadata: dict[str, Any] | None
    layers: frozenset[str]
    rank: int

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.state.values())


def describe_layout(keys: list[str]) -> str:
    """The key layout of a LoRA whose keys diffusers did not map onto the transformer."""
    joined = " ".join(keys)
    if "double_blocks" in joined or "single_blocks" in joined:
        return "BFL/ComfyUI layout (double_blocks/single_blocks keys)"
    if "lora_unet_" in joined and ("down_blocks" in joined or "input_blocks" in joined):
        return "Stable Diffusion UNet layout"
    if joined.startswith("unet.") or " unet." in joined:
        return "diffusers UNet layout (a Stable Diffusion LoRA)"
    return f"an unknown layout (first key {keys[0]!r})" if keys else "no keys at all"


def read_lora(
    pipe: FluxKontextPipeline, source: str, kwargs: Mapping[str, Any], style_name: str, label: str
) -> LoraWeights:
    """Read and convert a style's LoRA (file or hub repo) once: diffusers converts the Kohya,
    XLabs and fal layouts; a LoRA with no transformer weights is refused naming its layout."""
    try:
        state, alphas, metadata = pipe.lora_state_dict(
            source, return_alphas=True, return_lora_metadata=True, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, f"style {style_name}: LoRA", label) from exc
    weights = {k: v for k, v in state.items() if k.startswith("transformer.")}
    ranks = [v.shape[0] for k, v in weights.items() if ".lora_A." in k]
    if not ranks:
        raise I2IError(
            f"style {style_name}: LoRA {label} has no weights that match this model: its keys "
            f"are in {describe_layout(sorted(state))}, which diffusers does not convert for "
            "FLUX.1-Kontext (a LoRA for another base model?)"
        )
    layers = frozenset(k.split(".lora_")[0] for k in weights if ".lora_" in k)
    if metadata:
        # Dropout never acts at inference (eval mode); zero, it also matches the hot-swap
        # slot's config, which PEFT compares key by key. Keys are "transformer.lora_dropout".
        metadata = {k: 0.0 if k.endswith("lora_dropout") else v for k, v in metadata.items()}
    return LoraWeights(weights, dict(alphas or {}), metadata, layers, max(ranks))


def pad_layers(weights: LoraWeights, layers: frozenset[str], transformer: Any) -> LoraWeights:
    """``weights`` over ``layers``: a layer the LoRA does not change gets zero A and B weights
    (it adds exactly nothing), so LoRAs over different layers fit one compiled slot."""
    missing = layers - weights.layers
    if not missing:
        return weights
    sample = next(iter(weights.state.values()))
    state = dict(weights.state)
    for layer in sorted(missing):
        module = transformer.get_submodule(layer.removeprefix("transformer."))
        base = getattr(module, "base_layer", module)
        state[f"{layer}.lora_A.weight"] = sample.new_zeros(weights.rank, base.in_features)
        state[f"{layer}.lora_B.weight"] = sample.new_zeros(base.out_features, weights.rank)
    metadata = weights.metadata
    if metadata and isinstance(metadata.get("transformer.target_modules"), list):
        names = sorted(layer.removeprefix("transformer.") for layer in layers)
        metadata = {**metadata, "transformer.target_modules": names}
    return LoraWeights(state, weights.alphas, metadata, layers, weights.rank)


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
    settings: Settings = field(default_factory=Settings)
    adapters: dict[str, str] = field(default_factory=dict)
    slot: tuple[str, float] | None = None
    slot_keys: frozenset[str] = frozenset()
    slot_scaling: dict[str, float] = field(default_factory=dict)
    compiled: bool = False
    loras: OrderedDict[str, LoraWeights] = field(default_factory=OrderedDict)
    lora_reads: int = 0
    resident: OrderedDict[str, int] = field(default_factory=OrderedDict)
    slot_rank: int = 0
    sources: dict[str, tuple[str, dict, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings) -> Backend:
        """Load the base model once (with ``compile``, LoRAs are hot-swapped into one adapter
        slot, prepared at the first swap)."""
        pipe, device = load_pipeline(settings)
        enable_step_cache(pipe, settings)
        return cls(pipe, device, settings)

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.transformer.dtype

    def info(self) -> dict[str, Any]:
        """What the worker reports about the loaded model: its dtype and, with ``compile``, how
        many graphs torch.compile made (one per repeated block and image size; a style change
        adds none)."""
        info: dict[str, Any] = {
            "dtype": str(self.dtype).removeprefix("torch."),
            "lora_reads": self.lora_reads,
        }
        if self.settings.compile:
            from torch._dynamo.utils import counters

            info["compiled_graphs"] = int(counters["stats"]["unique_graphs"])
            info["slot"] = self.slot[0] if self.slot else None
        return info

    def _source(self, style_name: str, lora: Mapping[str, str]) -> tuple[str, dict, str]:
        """Where a style's LoRA is: (file or repo, load_lora_weights keywords, label), found
        once per run."""
        name = adapter_name(style_name, lora)
        if name not in self.sources:
            self.sources[name] = self._find_source(style_name, lora)
        return self.sources[name]

    def _find_source(self, style_name: str, lora: Mapping[str, str]) -> tuple[str, dict, str]:
        if "path" in lora:
            path = Path(lora["path"]).expanduser()
            if not path.is_file():
                raise I2IError(f"style {style_name}: LoRA file {path} not found")
            return str(path), {}, str(path)
        repo = lora["repo"]
        try:
            name, _ = lora_files.weight_name(repo, dict(lora), style_name)
        except (OSError, ValueError, HfHubHTTPError) as exc:
            raise _hub_error(exc, f"style {style_name}: LoRA", repo) from exc
        local = lora_files.cached_file(repo, name)
        if local is not None:  # cached: loaded by path, no hub call
            return local, {}, f"{repo}/{name}"
        return repo, {"weight_name": name}, repo

    def lora(self, style_name: str, lora: Mapping[str, str], keep: bool) -> LoraWeights:
        """A style's LoRA, read on first use; with ``keep`` it stays in memory for later swaps
        (bounded by LORA_CACHE_BYTES, least recently used dropped first)."""
        name = adapter_name(style_name, lora)
        if name in self.loras:
            self.loras.move_to_end(name)
            return self.loras[name]
        source, kwargs, label = self._source(style_name, lora)
        weights = read_lora(self.pipe, source, kwargs, style_name, label)
        self.lora_reads += 1
        if keep:
            self.loras[name] = weights
            while sum(w.nbytes for w in self.loras.values()) > LORA_CACHE_BYTES:
                if len(self.loras) == 1:
                    break
                self.loras.popitem(last=False)
        return weights

    def _inject(self, weights: LoraWeights, adapter: str, hotswap: bool) -> None:
        """Load read LoRA weights into the transformer as ``adapter`` with their alphas and
        stored config, then back to eval mode."""
        self.pipe.load_lora_into_transformer(
            dict(weights.state),
            network_alphas=weights.alphas or None,
            transformer=self.pipe.transformer,
            adapter_name=adapter,
            metadata=weights.metadata,
            _pipeline=self.pipe,
            hotswap=hotswap,
        )
        inference_mode(self.pipe)

    def adapter(self, style_name: str, style: Mapping[str, Any]) -> str:
        """The adapter of ``style``'s LoRA, loaded on first use and checked."""
        lora = style["lora"]
        name = adapter_name(style_name, lora)
        if name in self.adapters:
            self.resident.move_to_end(name)
            return name
        label = self._source(style_name, lora)[2]
        started = time.perf_counter()
        weights = self.lora(style_name, lora, keep=False)
        self._inject(weights, name, hotswap=False)
        loaded = {n for names in self.pipe.get_list_adapters().values() for n in names}
        if name not in loaded:
            raise I2IError(
                f"style {style_name}: LoRA {label} has no weights that match this model "
                "(a LoRA for another base model?)"
            )
        log.info("LoRA %s loaded as %s in %.2f s", label, name, time.perf_counter() - started)
        self.adapters[name] = label
        self.resident[name] = weights.nbytes
        self._unload_least_used(keep=name)
        return name

    def _unload_least_used(self, keep: str) -> None:
        """Unload the least recently used adapters while they exceed RESIDENT_ADAPTER_BYTES
        (a style whose adapter is unloaded is loaded again on its next image)."""
        while sum(self.resident.values()) > RESIDENT_ADAPTER_BYTES and len(self.resident) > 1:
            oldest = next(iter(self.resident))
            if oldest == keep:
                break
            self.pipe.delete_adapters(oldest)
            del self.resident[oldest], self.adapters[oldest]
            log.info("LoRA adapter %s unloaded (least recently used)", oldest)

    def select(self, style_name: str, style: Mapping[str, Any]) -> str:
        """Make ``style``'s LoRA, at its ``lora_scale``, the active one; return its adapter."""
        scale = float(style.get("lora_scale", 1.0))
        if not self.settings.compile:
            name = self.adapter(style_name, style)
            self.pipe.set_adapters([name], adapter_weights=[scale])
            return name
        name = adapter_name(style_name, style["lora"])
        if self.slot is None or self.slot[0] != name:
            self._swap(style_name, style["lora"], name)
        if self.slot != (name, scale):
            self._scale(scale)
            self.slot = (name, scale)
        return name

    def _swap(self, style_name: str, lora: Mapping[str, str], name: str) -> None:
        """Load a LoRA into the adapter slot of the compiled model, in place (no recompile),
        with its alphas and stored config (the scale it has in eager mode)."""
        label = self._source(style_name, lora)[2]
        started = time.perf_counter()
        weights = self.lora(style_name, lora, keep=True)
        if self.slot is None and not self.slot_rank:
            # The slot's rank: the largest of the run's styles' files (read at the start), or
            # this first LoRA's; padded with zeros, so a smaller LoRA computes the same.
            self.slot_rank = max(self.settings.lora_rank, weights.rank)
            self.pipe.enable_lora_hotswap(target_rank=self.slot_rank)
            log.info("compiled LoRA slot of rank %d", self.slot_rank)
        if weights.rank > self.slot_rank:
            raise I2IError(
                f"style {style_name}: LoRA {label} has rank {weights.rank}, more than "
                f"flux.lora_rank {self.slot_rank} (the LoRA slot of the compiled model): "
                f"set flux.lora_rank: {weights.rank}"
            )
        hotswap = self.slot is not None
        layers = self.slot_keys | weights.layers
        if hotswap and layers != self.slot_keys:
            # A LoRA that changes layers the slot lacks: the slot is rebuilt over both sets of
            # layers (the blocks recompile once); layers a LoRA lacks are zero in the slot.
            log.warning(
                "style %s: LoRA %s changes %d layers the compiled slot lacks: the slot is "
                "rebuilt over %d layers (the transformer blocks recompile once)",
                style_name,
                label,
                len(weights.layers - self.slot_keys),
                len(layers),
            )
            self.pipe.delete_adapters(SLOT)
            self.pipe.enable_lora_hotswap(target_rank=self.slot_rank)
            hotswap = False
        # A hot swap zeroes the slot's layers the LoRA lacks (PEFT); a new slot is padded.
        swapped = weights if hotswap else pad_layers(weights, layers, self.pipe.transformer)
        try:
            self._inject(swapped, SLOT, hotswap)
        except (RuntimeError, ValueError) as exc:
            if self.slot is not None:
                self.slot = ("", math.nan)  # partly swapped: the next style swaps in all weights
            raise I2IError(f"style {style_name}: LoRA {label} cannot be swapped in: {exc}") from exc
        self.slot_keys = layers
        self.slot_scaling = {
            module: float(layer.scaling[SLOT]) for module, layer in self._lora_layers()
        }
        self.adapters[name] = label
        self.slot = (name, math.nan)
        log.info("LoRA %s swapped in as %s in %.2f s", label, name, time.perf_counter() - started)

    def _lora_layers(self) -> list[tuple[str, Any]]:
        return [
            (module_name, module)
            for module_name, module in self.pipe.transformer.named_modules()
            if isinstance(getattr(module, "scaling", None), dict) and SLOT in module.scaling
        ]

    def _scale(self, scale: float) -> None:
        """Set the slot's LoRA scale in place: the scalings are tensors (set_adapters would
        replace them with numbers, computed from the first LoRA's rank, and recompile)."""
        for module_name, layer in self._lora_layers():
            value = self.slot_scaling[module_name] * scale
            if isinstance(layer.scaling[SLOT], torch.Tensor):
                layer.scaling[SLOT].fill_(value)
            else:
                layer.scaling[SLOT] = value

    def _step_cache_context(self) -> contextlib.AbstractContextManager:
        """The cache context the step cache needs around the denoiser's calls: FluxKontextPipeline
        sets none (FluxPipeline does); one call per step, so one context for the whole image
        (the pipeline resets the cache's state at its end)."""
        if self.settings.cache == "none":
            return contextlib.nullcontext()
        return self.pipe.transformer.cache_context("cond")

    def _compile(self) -> None:
        """torch.compile the transformer's repeated blocks (regional compilation: compiled once
        per block type, a fraction of a full compile's time); compiled on the first render. The
        second aspect ratio recompiles each block once with dynamic shapes (torch's automatic
        dynamic; ``dynamic=True`` from the start specialises the sequence length all the same),
        later ones reuse those graphs."""
        self.pipe.transformer.compile_repeated_blocks(fullgraph=True)
        self.compiled = True
        log.info("transformer blocks compiled with torch.compile (on first use)")

    def generate(self, image: Image.Image, style: Mapping[str, Any]) -> tuple[np.ndarray, float]:
        """Run the pipeline on ``image`` with ``style``'s prompt and settings (adapters as set);
        return the decoded output in 0–255 levels (float, NaN kept: diffusers' PIL output turns
        them black) and the seconds it took."""
        if self.settings.compile and not self.compiled:
            self._compile()
        width, height = _size(image, int(style.get("size", 1024)))
        generator = torch.Generator(device="cpu").manual_seed(int(style.get("seed", 42)))
        started = time.perf_counter()
        try:
            with self._step_cache_context():
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
                    output_type="np",
                ).images[0]
        except torch.OutOfMemoryError as exc:
            _free(self.device)
            raise I2IError(
                f"out of GPU memory at {width}×{height}: {memory_hint(self.settings)}"
            ) from exc
        except RuntimeError as exc:
            if "out of memory" not in str(exc).lower():
                raise
            _free(self.device)
            raise I2IError(
                f"out of memory at {width}×{height}: {memory_hint(self.settings)}"
            ) from exc
        return result * 255, time.perf_counter() - started

    def render(self, source: str, target: str, style_name: str, style: Mapping[str, Any]) -> dict:
        """Render ``source`` in ``style`` into ``target``: WebP (the workflow's styled images)
        or PNG (lossless, for ``i2i stylize`` to convert); return timings and size."""
        suffix = Path(target).suffix.lower()
        if suffix not in TARGET_FORMATS:
            raise I2IError(f"{target}: the FLUX worker writes .webp or .png, not {suffix!r}")
        name = self.select(style_name, style)
        try:
            with Image.open(source) as opened:
                image = opened.convert("RGB")
        except OSError as exc:
            raise I2IError(f"{source}: cannot read image: {exc}") from exc
        levels, seconds = self.generate(image, style)
        photo = Path(source).name
        check_render(levels, photo, style_name)
        # As diffusers makes its PIL output: the same bytes as before the gate.
        result = Image.fromarray(levels.round().astype(np.uint8))
        fmt, options = TARGET_FORMATS[suffix]
        with atomic_path(target) as tmp:
            result.save(tmp, fmt, **options)
        reply = {
            "seconds": round(seconds, 4),
            "width": result.width,
            "height": result.height,
            "adapter": name,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        source_levels = np.asarray(image.resize(result.size, Image.Resampling.BICUBIC))
        warning = unchanged_warning(np.asarray(result), source_levels, photo, style_name)
        if warning:
            reply["warning"] = warning
        return reply


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
