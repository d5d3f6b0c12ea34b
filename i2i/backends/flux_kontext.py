"""The ``flux-kontext`` backend's declaration: FLUX.1-Kontext with one LoRA per style.

Light on purpose (the Snakemake process reads it): the model runs in a resident worker
(:mod:`i2i.run.resident` hosting :mod:`i2i.backends.flux`), loaded once per run, one image at a
time on the GPU (rule ``stylize_flux``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from i2i import I2IError
from i2i.backends import StyleBackend, register
from i2i.backends.flux_settings import Settings

NAME = "flux-kontext"


def load_model(settings: Mapping[str, Any]) -> Any:
    """The loaded pipeline (in the resident worker): torch and diffusers are imported here."""
    try:
        from i2i.backends import flux
    except ImportError as exc:
        raise I2IError(
            f"the flux-kontext backend needs torch and diffusers ({exc}); install them "
            "where Snakemake runs: `pip install 'i2i[flux]'`"
        ) from exc
    flux.quiet_libraries()
    return flux.Backend.load(Settings.from_config(settings))


BACKEND = register(
    StyleBackend(
        name=NAME,
        rule="stylize_flux",
        schema={
            "required": ["lora", "prompt"],
            "properties": {
                "lora": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "a Hugging Face repo (+ weight file) or a local .safetensors",
                    "properties": {
                        "repo": {"type": "string"},
                        "weight_name": {"type": "string"},
                        "path": {"type": "string"},
                    },
                    "oneOf": [{"required": ["repo"]}, {"required": ["path"]}],
                },
                "prompt": {"type": "string", "minLength": 1},
                "lora_scale": {"type": "number", "minimum": 0, "maximum": 4, "default": 1.0},
                "steps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 24},
                "guidance": {"type": "number", "minimum": 0, "maximum": 20, "default": 2.5},
                "seed": {"type": "integer", "minimum": 0, "default": 42},
                "size": {
                    "type": "integer",
                    "description": "long side of the output in pixels (aspect ratio of the input, "
                    "multiple of 16)",
                    "minimum": 64,
                    "maximum": 2048,
                    "default": 1024,
                },
                "resize_input": {
                    "type": "boolean",
                    "description": "resize the input to the nearest Kontext training resolution "
                    "first (false keeps its size)",
                    "default": True,
                },
            },
        },
        resident=True,
        settings={
            "flux": (
                "model",
                "dtype",
                "quantize",
                "compile",
                "lora_rank",
                "cache",
                "cache_threshold",
            )
        },
        code=("i2i.backends.flux", "i2i.backends.flux_kontext"),
        worker="i2i.backends.flux_kontext:load_model",
        section="flux",
        identity="i2i.backends.flux_settings:identity",
        prepare="i2i.backends.flux_run:prepare_run",
        resources={"gpu": 1},
    )
)
