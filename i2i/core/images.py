"""Opening photos and turning them upright: what every stage that reads a photo shares.

Opening is lazy (headers only) and covers HEIC through pillow-heif; a file that cannot be
opened raises ``I2IError`` with a plain reason that does not name the file (the caller does).
:func:`upright` says how the stored pixels become upright, without rotating twice.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import Base

from i2i import I2IError

TRUNCATED = "truncated image file"
NOT_AN_IMAGE = "not an image Pillow can read (JPEG, HEIC, PNG, TIFF, WebP)"
# Styled sizes are multiples of this many pixels; a smaller photo cannot be used.
MULTIPLE = 16
_BOMB = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+)")


def register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (idempotent)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def orientation(value: Any) -> int | None:
    """The EXIF orientation (1-8); anything else as None."""
    if isinstance(value, tuple | list) and value:
        value = value[0]
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 1 <= number <= 8 else None


# EXIF orientation codes as (x, y) -> (a·x + b·y, c·x + d·y) on centred pixel coordinates
# (y pointing down): the transform that turns stored pixels upright.
_MATRICES: dict[int, tuple[int, int, int, int]] = {
    1: (1, 0, 0, 1),
    2: (-1, 0, 0, 1),
    3: (-1, 0, 0, -1),
    4: (1, 0, 0, -1),
    5: (0, 1, 1, 0),
    6: (0, -1, 1, 0),
    7: (0, -1, -1, 0),
    8: (0, 1, -1, 0),
}
_CODES = {matrix: code for code, matrix in _MATRICES.items()}
# The same transforms as "mirror left-right (or not), then rotate clockwise by so many degrees".
_STEPS: dict[int, tuple[bool, int]] = {
    1: (False, 0),
    2: (True, 0),
    3: (False, 180),
    4: (True, 180),
    5: (True, 270),
    6: (False, 90),
    7: (True, 90),
    8: (False, 270),
}
# HEIF properties as EXIF codes: irot turns anticlockwise; imir 1 mirrors left-right, 0 top-bottom.
_HEIF_CODES: dict[tuple[str, int], int] = {
    ("irot", 0): 1,
    ("irot", 90): 8,
    ("irot", 180): 3,
    ("irot", 270): 6,
    ("imir", 0): 4,
    ("imir", 1): 2,
}


def _then(first: int, second: int) -> int:
    """The EXIF orientation code of applying ``first`` and then ``second``."""
    a, b, c, d = _MATRICES[first]
    e, f, g, h = _MATRICES[second]
    return _CODES[(e * a + f * c, e * b + f * d, g * a + h * c, g * b + h * d)]


def heif_transforms(image: Image.Image) -> tuple[tuple[Any, ...], ...] | None:
    """The rotations and mirrorings (irot, imir) of a HEIF image's container, in order.

    None when ``image`` is not an unloaded HEIF image from pillow-heif, or when pillow-heif
    does not tell (its ``transformations`` are not public API: libheif applies them while
    decoding, and pillow-heif then resets the EXIF orientation to 1).
    """
    heif_file = getattr(image, "_heif_file", None)
    if heif_file is None:
        return None
    try:
        transforms = heif_file[image.tell()]._c_image.transformations
    except (AttributeError, IndexError, TypeError):
        return None
    return tuple(t for t in transforms if t[0] in {"irot", "imir"})


@dataclass(frozen=True)
class Upright:
    """What turns a photo's stored pixels upright: an EXIF orientation code and who applies it.

    ``by`` is ``"heif"`` when the HEIF decoder applies the container's irot/imir (the pixels
    Pillow gives are upright already), ``"exif"`` when the Orientation tag asks for it (EXIF,
    or XMP in a HEIC; the caller applies it to Pillow's pixels) and None for a photo stored
    upright. Recorded as ``image.applied_rotation``.
    """

    orientation: int = 1
    by: str | None = None

    @property
    def pending(self) -> int:
        """The orientation code still to apply to the pixels Pillow decodes."""
        return self.orientation if self.by == "exif" else 1

    def stored_size(self, decoded: tuple[int, int]) -> tuple[int, int]:
        """The stored pixel size (as exiftool reports it) from the size Pillow gives."""
        width, height = decoded
        return (height, width) if self.by == "heif" and self.orientation >= 5 else (width, height)

    def record(self) -> dict[str, Any]:
        """``image.applied_rotation``: mirror left-right first when ``mirror``, then rotate."""
        mirror, degrees = _STEPS[self.orientation]
        return {
            "orientation": self.orientation,
            "mirror": mirror,
            "rotate_cw": degrees,
            "by": self.by,
        }


def upright(image: Image.Image, exif: Image.Exif) -> Upright:
    """How ``image`` (opened, not yet loaded) becomes upright, without rotating twice.

    A HEIF container's irot/imir wins over the EXIF tag (the HEIF rule, and what libheif
    applies); a HEIC without them follows its EXIF (or XMP) orientation like a JPEG does.
    """
    transforms = heif_transforms(image)
    if transforms is None and "original_orientation" in image.info:
        return Upright()  # pillow-heif does not say: like it, take the container as rotating
    if transforms:
        code = 1
        for transform in transforms:
            code = _then(code, _HEIF_CODES.get(transform, 1))
        return Upright(code, "heif") if code != 1 else Upright()
    if "original_orientation" in image.info:  # pillow-heif moved the tag here
        code = orientation(image.info["original_orientation"]) or 1
    else:
        code = orientation(exif.get(Base.Orientation)) or 1
    return Upright(code, "exif") if code != 1 else Upright()


def image_failure(exc: BaseException) -> str | None:
    """A plain one-line reason, naming no file, for what a bad photo makes Pillow or
    pillow-heif raise (truncated, a decompression bomb, no image); None for anything else."""
    if isinstance(exc, Image.DecompressionBombError):
        found = _BOMB.search(str(exc))
        count = f" {int(found[1]):,} (limit {int(found[2]):,})," if found else ""
        return f"too many pixels:{count} possibly a decompression bomb"
    if isinstance(exc, UnidentifiedImageError):
        return NOT_AN_IMAGE
    if isinstance(exc, EOFError):
        return TRUNCATED
    if isinstance(exc, OSError) and exc.errno is None and "truncated" in str(exc).lower():
        return TRUNCATED  # Pillow's decoders: "image file is truncated", "Truncated File Read"
    return None


def image_error(exc: BaseException) -> str:
    """A plain one-line reason, naming no file, for any exception raised reading a photo."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f"cannot read: {exc.strerror.lower()}"
    reason = image_failure(exc)
    if reason is not None:
        return reason
    text = " ".join(str(exc).split())
    if "end of file" in text.lower():  # libheif: "Unexpected end of file"
        return TRUNCATED
    if len(text) > 160:
        text = text[:160] + "…"
    return f"cannot decode image ({type(exc).__name__}: {text})"


def open_image(path: Path) -> Image.Image:
    """Open a photo lazily (headers only), HEIC included.

    Whatever stops it raises ``I2IError`` with a plain reason that does not name the file: the
    caller does.
    """
    try:
        status = path.stat()
    except OSError as exc:
        raise I2IError(f"cannot read: {(exc.strerror or str(exc)).lower()}") from exc
    if not stat.S_ISREG(status.st_mode):
        raise I2IError("not a regular file")
    if status.st_size == 0:
        raise I2IError("empty file (0 bytes), not an image")
    register_heif()
    try:
        return Image.open(path)
    except MemoryError:
        raise
    except Exception as exc:  # plugins raise OSError, SyntaxError, ValueError, RuntimeError, ...
        raise I2IError(image_error(exc)) from exc


def check_size(width: int, height: int) -> None:
    """Refuse a photo too small for the sizes the styles work in (multiples of 16 px)."""
    if width < MULTIPLE or height < MULTIPLE:
        raise I2IError(f"too small: {width}×{height} px, at least {MULTIPLE}×{MULTIPLE} needed")


def decode(image: Image.Image) -> None:
    """Decode every pixel; truncated or corrupt data raises ``I2IError`` (a plain reason)."""
    try:
        image.load()
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, EOFError, ...
        raise I2IError(image_error(exc)) from exc


def check_photo(path: str | os.PathLike[str]) -> None:
    """Raise ``I2IError`` if the photo at ``path`` cannot be used; its message is one line
    with the reason only (the caller names the file).

    Refused: a file that cannot be opened or read, is empty or not an image, is a possible
    decompression bomb, is smaller than 16×16 px, or whose pixels do not fully decode. A JPEG
    is decoded at 1/8 scale: DCT scaling still reads the whole entropy-coded data, so a
    truncated or corrupt file is still caught, at a fraction of the cost.
    """
    with open_image(Path(path)) as image:
        check_size(*image.size)
        if image.format == "JPEG":
            image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        decode(image)
