"""A resident style backend that lives in the test folder alone: posterised colours.

Its "model" (the colour levels) is loaded once per worker process by :func:`load_model`, in
the resident worker host (:mod:`i2i.run.resident`), which knows nothing of FLUX; the workflow
gets a rule ``stylize_toy_resident`` for its styles. ``I2I_TOY_RENDER_SECONDS`` makes each
render take that long (a FLUX image takes minutes), writing through a temp file as FLUX does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from i2i.backends import StyleBackend, register
from i2i.core.files import atomic_path


class Posteriser:
    """The loaded model: renders one image at a time."""

    device = "cpu"

    def __init__(self, levels: int) -> None:
        self.levels = levels

    def info(self) -> dict[str, Any]:
        return {"levels": self.levels}

    def render(self, source: str, target: str, style_name: str, style: Mapping[str, Any]):
        started = time.perf_counter()
        with Image.open(source) as image:
            rgb = np.asarray(image.convert("RGB"))
        step = 256 // self.levels
        out = Image.fromarray(((rgb // step) * step).astype(np.uint8))
        with atomic_path(target) as partial:
            out.save(partial, format="WEBP", lossless=True)
            time.sleep(float(os.environ.get("I2I_TOY_RENDER_SECONDS", "0")))
        return {"seconds": round(time.perf_counter() - started, 3)}


def load_model(settings: Mapping[str, Any]) -> Posteriser:
    return Posteriser(int(settings.get("levels", 4)))


BACKEND = register(
    StyleBackend(
        name="toy-resident",
        rule="stylize_toy_resident",
        schema={"properties": {}},
        resident=True,
        worker="toy_resident:load_model",
        code=("toy_resident",),
    )
)
