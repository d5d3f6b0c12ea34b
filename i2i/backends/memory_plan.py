"""The FLUX memory plan: how the model is held on the GPU the user owns (``flux.memory: auto``).

Chosen once at the start of a run from the device's memory, in the Snakemake process, without
torch (``nvidia-smi``, or the Mac's unified memory): the plan's quantisation changes pixels, so it
is resolved before the jobs are built and travels in ``stylize_flux``'s params; a GPU that needs
another quantisation reruns exactly the FLUX images. Offload changes no bytes. With
``flux.memory: explicit`` the ``offload`` and ``quantize`` keys are used as written.

Sizes behind the thresholds (bf16): transformer 22.2 GiB (int8 11.1), T5-XXL 8.9 GiB, CLIP and
VAE under 0.5 GiB, activations at 1024² a few GiB. float32 doubles the weights. On Apple
Silicon, the GPU may use about three quarters of the unified memory and offload frees nothing
(CPU and GPU share it), so only quantisation helps there.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from i2i import I2IError
from i2i.backends.flux_settings import flag

# Fraction of a Mac's unified memory the GPU may use (Metal's recommended working set).
MPS_SHARE = 0.75


@dataclass(frozen=True)
class Device:
    """What the plan is chosen from: ``cuda``, ``mps`` or ``cpu``, memory, bf16 support."""

    kind: str
    memory_gib: float
    bf16: bool = True
    name: str = ""


@dataclass(frozen=True)
class MemoryPlan:
    """How FLUX is held: offload and quantisation, and the peak memory to expect."""

    label: str
    offload: str
    quantize: str
    peak_gib: float

    def describe(self, device: Device) -> str:
        where = device.name or device.kind
        if device.kind != "cpu":
            where += f" ({device.memory_gib:.0f} GiB)"
        return (
            f"memory plan for {where}: {self.label} "
            f"(offload: {self.offload}, quantize: {self.quantize}, peak about "
            f"{self.peak_gib:.0f} GiB)"
        )


RESIDENT = MemoryPlan("all resident", "none", "none", 34)
MODEL_OFFLOAD = MemoryPlan("model offload", "model", "none", 25)
INT8_MODEL_OFFLOAD = MemoryPlan("int8 weights, model offload", "model", "int8", 14)
INT8_GROUP_OFFLOAD = MemoryPlan("int8 weights, group offload", "group", "int8", 7)
CPU = MemoryPlan("CPU, float32", "none", "none", 70)

# (least GiB, plan), largest first, for a CUDA GPU with and without bfloat16.
CUDA_PLANS = {
    True: ((40, RESIDENT), (28, MODEL_OFFLOAD), (20, INT8_MODEL_OFFLOAD), (11, INT8_GROUP_OFFLOAD)),
    False: (
        (72, MemoryPlan("all resident, float32", "none", "none", 68)),
        (52, MemoryPlan("model offload, float32", "model", "none", 48)),
        (22, MemoryPlan("int8 weights, model offload, float32", "model", "int8", 18)),
        (12, MemoryPlan("int8 weights, group offload, float32", "group", "int8", 9)),
    ),
}
MPS_PLANS = ((40, RESIDENT), (26, MemoryPlan("int8 weights", "none", "int8", 24)))


def plan_for(device: Device) -> MemoryPlan:
    """The plan that fits ``device``; I2IError saying why when none does."""
    if device.kind == "cpu":
        return CPU
    if device.kind == "mps":
        if not device.bf16:
            raise I2IError(
                "flux.memory: this Mac's GPU has no bfloat16 (macOS 14 or newer has it) and "
                "float32 FLUX does not fit its unified memory: update macOS"
            )
        usable = device.memory_gib * MPS_SHARE
        for least, plan in MPS_PLANS:
            if usable >= least:
                return plan
        raise I2IError(
            f"flux.memory: {device.memory_gib:.0f} GiB of unified memory is too little for "
            "FLUX.1-Kontext (int8 weights need about 36 GiB in all); use classic styles"
        )
    plans = CUDA_PLANS[device.bf16]
    for least, plan in plans:
        if device.memory_gib >= least:
            return plan
    smallest = plans[-1][0]
    raise I2IError(
        f"flux.memory: {device.name or 'the GPU'} has {device.memory_gib:.0f} GiB, FLUX.1-Kontext "
        f"needs at least {smallest} GiB even with int8 weights and group offload"
    )


def _nvidia_smi() -> Device | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,compute_cap",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        name, total_mib, capability = (
            part.strip() for part in result.stdout.splitlines()[0].split(",")
        )
        return Device("cuda", float(total_mib) / 1024, float(capability) >= 8.0, name)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _mac() -> Device | None:
    if platform.system() != "Darwin" or platform.machine() != "arm64":
        return None
    try:
        memory = int(
            subprocess.run(
                ["sysctl", "-n", "hw.memsize"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    major = int((platform.mac_ver()[0] or "0").split(".")[0])
    return Device("mps", memory / 2**30, major >= 14, "Apple Silicon")


def detect_device(requested: str = "auto") -> Device:
    """The device FLUX will run on, as ``flux.device`` asks, read without torch."""
    found = None
    if requested in ("auto", "cuda"):
        found = _nvidia_smi()
    if found is None and requested in ("auto", "mps"):
        found = _mac()
    return found or Device("cpu", 0.0, False, "CPU")


def resolve(flux: Mapping[str, Any], device: Device | None = None) -> tuple[dict[str, Any], str]:
    """``flux`` with its offload and quantize set by the plan (``memory: auto``) and the line
    that says what was chosen; impossible combinations refused in one line."""
    resolved = dict(flux)
    if flux.get("memory", "auto") == "auto":
        device = device or detect_device(str(flux.get("device", "auto")))
        plan = plan_for(device)
        resolved.update(offload=plan.offload, quantize=plan.quantize)
        line = plan.describe(device)
    else:
        line = f"memory: explicit (offload: {flux['offload']}, quantize: {flux['quantize']})"
    if flag(resolved.get("compile")) and resolved.get("offload") != "none":
        raise I2IError(
            f"flux.compile needs the model resident, and the plan offloads ({line}): set "
            "flux.compile: false, or flux.memory: explicit with offload: none"
        )
    if resolved.get("quantize") == "float8" and resolved.get("offload") != "none":
        raise I2IError(
            "flux.quantize: float8 with flux.offload is not supported (torchao's float8 "
            "weights do not move between devices): use int8, or offload: none"
        )
    return resolved, line
