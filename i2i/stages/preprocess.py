"""The preprocess stage: oriented, sRGB, resized WebP ready for a style backend.

:func:`check_photo` and :func:`load_for_styling` open, size-check and decode a photo the same
way, so a photo the library inventory takes is one this stage can read.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from i2i import I2IError
from i2i.core.failures import failure_reason
from i2i.core.files import atomic_path
from i2i.core.images import MULTIPLE, check_size, decode, open_image, upright

log = logging.getLogger(__name__)

SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def target_size(
    width: int, height: int, long_side: int, multiple: int = MULTIPLE
) -> tuple[int, int]:
    """Scale so the long side is at most ``long_side`` (never up), then floor to ``multiple``."""
    scale = min(1.0, long_side / max(width, height))
    new_w = max(multiple, int(width * scale) // multiple * multiple)
    new_h = max(multiple, int(height * scale) // multiple * multiple)
    return new_w, new_h


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale (``I;16*``, ``I``) scaled to 8-bit ``L``; other modes unchanged.

    Pillow's own conversion clips at 255, which turns a 16-bit photo white. (Pillow already
    reads 16-bit RGB as 8-bit RGB from the high bytes.)
    """
    if image.mode not in SIXTEEN_BIT_GREY:
        return image
    values = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
    scaled = Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))
    scaled.info = dict(image.info)
    return scaled


def to_srgb(image: Image.Image, path: Path) -> Image.Image:
    """Convert to RGB in sRGB, through the embedded ICC profile when there is one."""
    image = to_8bit(image)
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


def _exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF, empty when unreadable (the metadata stage records why)."""
    try:
        return image.getexif()
    except Exception:  # Pillow raises many types on corrupt EXIF
        return Image.Exif()


def load_for_styling(path: str | os.PathLike[str]) -> Image.Image:
    """Open a photo, turn it upright and bring it to sRGB RGB; fully decoded.

    Upright as :func:`i2i.core.images.upright` says: by the EXIF orientation, or by the HEIF
    container's rotation that the decoder applies (never both). What makes the photo
    unusable raises ``I2IError`` naming the file once.
    """
    path = Path(path)
    try:
        with open_image(path) as opened:
            check_size(*opened.size)
            turn = upright(opened, _exif(opened))
            decode(opened)
            image = opened.transpose(TRANSPOSE[turn.pending]) if turn.pending != 1 else opened
            return to_srgb(image, path)
    except I2IError as exc:
        raise I2IError(f"{path}: {exc}") from exc


def preprocess(
    source: str | os.PathLike[str], target: str | os.PathLike[str], long_side: int, quality: int
) -> tuple[int, int]:
    """Write the preprocessed WebP of ``source``; return its size."""
    image = load_for_styling(source)
    size = target_size(*image.size, long_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    try:
        with atomic_path(target) as tmp:
            image.save(tmp, "WEBP", quality=quality, method=4)
    except OSError as exc:
        reason = failure_reason(exc)
        if reason is None:
            raise
        raise I2IError(f"{Path(source)}: {reason}") from exc
    return size
