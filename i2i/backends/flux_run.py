"""The ``flux-kontext`` backend's start of a run, in the Snakemake process (no torch import):
the software it needs, the memory plan and the LoRA slot's rank. In no code digest: it decides
whether and how the run renders, and what it decides that changes pixels (the quantisation)
travels in ``stylize_flux``'s params."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from i2i import I2IError

# What the FLUX worker imports: checked by name only, so a missing one is one line at the
# start of the run, not a failed worker start for every image.
NEEDS = ("torch", "diffusers", "transformers", "accelerate", "peft", "safetensors")


def missing_modules(names: tuple[str, ...] = NEEDS) -> list[str]:
    """The modules of ``names`` that cannot be imported here (found without importing)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def prepare_run(config: dict[str, Any], styles: Mapping[str, Mapping[str, Any]]) -> str:
    """Check the FLUX software is installed (I2IError naming what to install), resolve the
    memory plan (its quantisation is in ``stylize_flux``'s params, so before any job) and, for
    a compiled run with ``lora_rank: auto``, the slot's rank from the run's ``styles`` (not a
    param: the slot's zero padding changes no image). Returns the plan's line."""
    from i2i.backends import lora_files, memory_plan

    missing = missing_modules()
    if missing:
        raise I2IError(
            f"the FLUX styles ({', '.join(sorted(styles))}) need {', '.join(missing)}, not "
            "installed where Snakemake runs: pip install 'i2i-workflow[flux]' (and torch for "
            "your GPU)"
        )
    config["flux"], plan = memory_plan.resolve(config["flux"])
    if config["flux"]["compile"] and config["flux"]["lora_rank"] == "auto":
        config["flux"]["slot_rank"] = lora_files.slot_rank(s["lora"] for s in styles.values())
    return plan
