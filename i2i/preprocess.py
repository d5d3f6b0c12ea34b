"""The preprocess stage: oriented, sRGB, resized WebP ready for a style backend."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from i2i import I2IError
from i2i.files import atomic_path
from i2i.metadata import register_heif

log = logging.getLogger(__name__)

MULTIPLE = 16


def target_size(
    width: int, height: int, long_side: int, multiple: int = MULTIPLE
) -> tuple[int, int]:
    """Scale so the long side is at most ``long_side`` (never up), then floor to ``multiple``."""
    scale = min(1.0, long_side / max(width, height))
    new_w = max(multiple, int(width * scale) // multiple * multiple)
    new_h = max(multiple, int(height * scale) // multiple * multiple)
    return new_w, new_h


def to_srgb(image: Image.Image, path: Path) -> Image.Image:
    """Convert to RGB in sRGB, through the embedded ICC profile when there is one."""
    icc = image.info.get("icc_profile")
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(flat, rgba)
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image.mode not in {"RGB", "L", "CMYK", "LAB"}:
                image = image.convert("RGB")
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.warning("%s: ICC profile ignored (%s); colours taken as sRGB", path, exc)
    return image.convert("RGB")


def load_for_styling(path: str | os.PathLike[str]) -> Image.Image:
    """Open a photo, apply its EXIF orientation and bring it to sRGB RGB; fully decoded."""
    path = Path(path)
    register_heif()
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            image.info.setdefault("icc_profile", opened.info.get("icc_profile"))
            return to_srgb(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise I2IError(f"{path}: cannot decode image ({exc})") from exc


def preprocess(
    source: str | os.PathLike[str], target: str | os.PathLike[str], long_side: int, quality: int
) -> tuple[int, int]:
    """Write the preprocessed WebP of ``source``; return its size."""
    image = load_for_styling(source)
    size = target_size(*image.size, long_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    with atomic_path(target) as tmp:
        image.save(tmp, "WEBP", quality=quality, method=4)
    return size
