"""The quality gate every styled image passes before it is written, whatever its backend.

A broken render (NaN or infinite values, or a flat image: one colour everywhere, as FLUX gives
when float16 overflows and the decoder's NaN become black) fails its job with one line naming
the photo and the style, and nothing is written, so the next run tries again. A render that is
almost its input (a LoRA that did nothing) is written, with a warning line in the job's log that
``i2i progress`` counts.
"""

from __future__ import annotations

import numpy as np

from i2i import I2IError

# A channel whose standard deviation is under this many levels (of 255) is flat.
FLAT_STD = 0.5
# A FLUX render whose mean absolute difference from its input is under this many levels did
# not restyle the photo.
UNCHANGED_MAD = 1.0
# The words that open the warning line; ``i2i progress`` counts the job logs that hold them.
UNCHANGED_WARNING = "looks unchanged from its photo"


class BrokenRender(I2IError):
    """A render that must not be published."""


def check_render(levels: np.ndarray, photo: str, style: str) -> None:
    """Raise BrokenRender when ``levels`` (height × width × channels, in 0–255 levels, any
    dtype) holds NaN or infinities, or when every channel is flat."""
    pixels = np.asarray(levels, dtype=np.float64).reshape(-1, levels.shape[-1])
    if not np.isfinite(pixels).all():
        bad = int((~np.isfinite(pixels)).any(axis=1).sum())
        raise BrokenRender(
            f"{photo} in {style}: broken render, {bad} of {len(pixels)} pixels are NaN or "
            "infinite (float16 overflow or a broken LoRA); nothing written"
        )
    spread = pixels.std(axis=0)
    if (spread < FLAT_STD).all():
        colour = ", ".join(f"{v:.0f}" for v in pixels.mean(axis=0))
        raise BrokenRender(
            f"{photo} in {style}: broken render, the image is one flat colour ({colour}); "
            "nothing written"
        )


def unchanged_warning(render: np.ndarray, source: np.ndarray, photo: str, style: str) -> str | None:
    """A warning line when ``render`` is within UNCHANGED_MAD levels (mean absolute
    difference) of ``source`` (same shape, 0–255 levels), else None."""
    difference = float(np.abs(render.astype(np.float64) - source.astype(np.float64)).mean())
    if difference >= UNCHANGED_MAD:
        return None
    return (
        f"{photo} in {style} {UNCHANGED_WARNING} (mean difference {difference:.2f} levels): "
        "the style's LoRA may have had no effect"
    )
