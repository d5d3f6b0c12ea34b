"""The stylize stage: one preprocessed photo through one style of the registry."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from i2i import I2IError
from i2i.files import atomic_path

STYLED_QUALITY = 95


def stylize(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    style: Mapping[str, Any],
    threads: int = 1,
) -> None:
    """Render ``source`` in ``style`` and write the styled WebP to ``target``."""
    backend = style["backend"]
    if backend != "classic":
        raise I2IError(f"stylize: backend {backend!r} runs in the stylize_flux rule, not here")
    from i2i.backends import classic

    with Image.open(source) as image:
        rgb = np.asarray(image.convert("RGB"))
    styled = classic.render(rgb, style, threads)
    with atomic_path(target) as tmp:
        Image.fromarray(styled).save(tmp, "WEBP", quality=STYLED_QUALITY, method=4)
