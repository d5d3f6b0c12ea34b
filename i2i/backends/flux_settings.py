"""The FLUX settings that identify a loaded model, as the worker and the backend share them.

Kept apart from the worker's transport (:mod:`i2i.run.resident_client`) so that the code
digest of rule ``stylize_flux`` follows what renders an image, not how a request travels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class Settings:
    """What identifies a loaded model: the ``flux`` config keys other than the timeouts."""

    model: str = "black-forest-labs/FLUX.1-Kontext-dev"
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    quantize: str = "none"
    compile: bool = False
    lora_rank: int = 0
    cache: str = "none"
    cache_threshold: float = 0.08

    @classmethod
    def from_config(cls, flux: Mapping[str, Any]) -> Settings:
        """Settings from the config's ``flux`` mapping; other keys are ignored. ``lora_rank:
        auto`` is the largest rank of the run's FLUX styles' files (``slot_rank``, read at the
        start of the run), 0 when none was known (the first LoRA's rank then)."""
        kinds = {"compile": flag, "lora_rank": int, "cache_threshold": float}
        values = dict(flux)
        if str(values.get("lora_rank", "auto")) == "auto":
            values["lora_rank"] = values.get("slot_rank", 0)
        return cls(
            **{k: kinds.get(k, str)(values[k]) for k in cls.__dataclass_fields__ if k in values}
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def identity(flux: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a loaded FLUX model, from the config's ``flux`` section."""
    return Settings.from_config(flux).as_dict()
