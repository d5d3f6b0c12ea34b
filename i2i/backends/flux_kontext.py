"""The ``flux-kontext`` backend's declaration: FLUX.1-Kontext with one LoRA per style.

Light on purpose (the Snakemake process reads it): the model runs in the resident FLUX worker
(:mod:`i2i.flux_worker`, :mod:`i2i.backends.flux`), loaded once per run, one image at a time on
the GPU (rule ``stylize_flux``).
"""

from __future__ import annotations

from i2i.backends import StyleBackend, register

NAME = "flux-kontext"

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
    )
)
