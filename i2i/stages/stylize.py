"""The stylize stage: one preprocessed photo through one style of the registry."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from i2i import I2IError, backends
from i2i.core.files import atomic_path
from i2i.core.quality import FLAT_STD, check_render

STYLED_QUALITY = 95

# What a styled image can be written as, by the target's extension (the workflow writes WebP).
OUTPUT_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".webp": ("WEBP", {"quality": STYLED_QUALITY, "method": 4}),
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": STYLED_QUALITY}),
    ".jpeg": ("JPEG", {"quality": STYLED_QUALITY}),
    ".tif": ("TIFF", {"compression": "tiff_lzw"}),
    ".tiff": ("TIFF", {"compression": "tiff_lzw"}),
}


def output_format(target: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """The Pillow format and options for ``target``, from its extension; I2IError for others."""
    suffix = Path(target).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise I2IError(
            f"{target}: cannot write {f'a {suffix} file' if suffix else 'a file without extension'}"
            "; the output must end in .webp, .png, .jpg, .jpeg or .tif"
        )
    return OUTPUT_FORMATS[suffix]


def save_styled(image: Image.Image, target: str | os.PathLike[str]) -> None:
    """Write a styled image to ``target`` in the format its extension names."""
    fmt, options = output_format(target)
    with atomic_path(target) as tmp:
        image.save(tmp, fmt, **options)


def stylize(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    style: Mapping[str, Any],
    threads: int = 1,
    style_name: str = "its style",
    photo: str | None = None,
) -> None:
    """Render ``source`` in ``style`` with its pool backend (:mod:`i2i.backends`) and write it to
    ``target`` (WebP, PNG, JPEG or TIFF, by its extension). A broken render
    (:mod:`i2i.core.quality`) raises and writes nothing; ``photo`` and ``style_name`` name it
    in that error."""
    chosen = backends.backend(style["backend"])
    if chosen.resident:
        raise I2IError(f"stylize: backend {chosen.name!r} renders in its own worker, not here")
    output_format(target)
    render = chosen.render_function()
    with Image.open(source) as image:
        rgb = np.asarray(image.convert("RGB"))
    styled = render(rgb, style, threads)
    if not is_flat(rgb):
        check_render(styled, photo or Path(source).name, style_name)
    save_styled(Image.fromarray(styled), target)


def is_flat(rgb: np.ndarray) -> bool:
    """True for a photo of one colour (a lens cap's black frame, a blank card): its render may
    be flat too without being broken. The gate's own flat test (:func:`check_render`) stays as
    it is: it is in the FLUX rule's code digest."""
    return bool((rgb.reshape(-1, rgb.shape[-1]).std(axis=0) < FLAT_STD).all())
