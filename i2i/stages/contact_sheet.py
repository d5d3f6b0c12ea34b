"""Contact sheets for the report: one grid per album, photos as rows, styles as columns."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from i2i.core.files import atomic_path
from i2i.stages.watermark import bundled_font, load_font

CELL = 240
PAD = 8
LABEL = 28
BACKGROUND = (24, 24, 24)
INK = (235, 235, 235)


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[str | os.PathLike[str] | None]]],
    columns: Sequence[str],
    target: str | os.PathLike[str],
) -> tuple[int, int]:
    """Draw ``rows`` (photo name, one image path per column) under column headings; save JPEG."""
    font = load_font(str(bundled_font()), 16)
    width = PAD + LABEL * 5 + len(columns) * (CELL + PAD)
    height = PAD + LABEL + len(rows) * (CELL + PAD)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    x0 = PAD + LABEL * 5
    for col, name in enumerate(columns):
        draw.text((x0 + col * (CELL + PAD), PAD), name, font=font, fill=INK)
    for row, (photo, images) in enumerate(rows):
        y = PAD + LABEL + row * (CELL + PAD)
        draw.text((PAD, y + CELL // 2 - 8), photo[:16], font=font, fill=INK)
        for col, path in enumerate(images):
            if path is None:
                continue
            with Image.open(Path(path)) as image:
                thumb = image.convert("RGB")
                thumb.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
            x = x0 + col * (CELL + PAD) + (CELL - thumb.width) // 2
            sheet.paste(thumb, (x, y + (CELL - thumb.height) // 2))
    with atomic_path(target) as tmp:
        sheet.save(tmp, "JPEG", quality=85, optimize=True)
    return sheet.size
