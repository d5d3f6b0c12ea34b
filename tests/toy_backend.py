"""A style backend that lives in the test folder alone: the photographic negative.

Named in a config's ``style_backends``, it registers itself on import; the workflow then has a
rule ``stylize_toy`` for its styles, rendered in the worker pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from i2i.backends import StyleBackend, register


def render(rgb: np.ndarray, style: Mapping[str, Any], threads: int = 1) -> np.ndarray:
    """The negative, optionally only of the red channel."""
    out = rgb.copy()
    channels = slice(0, 1) if style.get("red_only") else slice(None)
    out[..., channels] = 255 - rgb[..., channels]
    return out


BACKEND = register(
    StyleBackend(
        name="toy",
        rule="stylize_toy",
        schema={"properties": {"red_only": {"type": "boolean", "default": False}}},
        render="toy_backend:render",
        code=("toy_backend",),
    )
)
