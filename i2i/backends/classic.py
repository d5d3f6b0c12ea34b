"""The ``classic`` backend: OpenCV's non-photorealistic filters, seconds per image on a CPU.

Each filter takes and returns an RGB ``uint8`` array; parameters come from the style registry
and fall back to the defaults below. Every filter is deterministic for the same input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np

from i2i import I2IError
from i2i.backends import StyleBackend, register

Array = np.ndarray
Filter = Callable[[Array, Mapping[str, Any]], Array]


def _bgr(rgb: Array) -> Array:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _rgb(bgr: Array) -> Array:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _pencil(rgb: Array, p: Mapping[str, Any]) -> tuple[Array, Array]:
    """``cv2.pencilSketch``: the grey and the colour drawing (BGR)."""
    return cv2.pencilSketch(
        _bgr(rgb),
        sigma_s=p.get("sigma_s", 60),
        sigma_r=p.get("sigma_r", 0.07),
        shade_factor=p.get("shade_factor", 0.05),
    )


def pencil_sketch(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Graphite on paper: the grey output of ``cv2.pencilSketch``."""
    return cv2.cvtColor(_pencil(rgb, p)[0], cv2.COLOR_GRAY2RGB)


def colour_pencil(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Coloured pencils: the colour output of ``cv2.pencilSketch``."""
    return _rgb(_pencil(rgb, p)[1])


def oil_paint(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Oil on canvas: ``cv2.xphoto.oilPainting`` (brush size, dynamic ratio)."""
    return _rgb(
        cv2.xphoto.oilPainting(_bgr(rgb), int(p.get("size", 7)), int(p.get("dyn_ratio", 1)))
    )


def watercolour(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Watercolour wash: ``cv2.stylization`` with a light paper tint."""
    styled = cv2.stylization(
        _bgr(rgb), sigma_s=p.get("sigma_s", 60), sigma_r=p.get("sigma_r", 0.45)
    )
    paper = np.full_like(styled, 245)
    return _rgb(cv2.addWeighted(styled, 1 - p.get("paper", 0.08), paper, p.get("paper", 0.08), 0))


def cartoon(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Flat colours and ink outlines: bilateral smoothing, posterised, adaptive-threshold edges."""
    bgr = _bgr(rgb)
    smooth = bgr
    for _ in range(int(p.get("passes", 4))):
        smooth = cv2.bilateralFilter(smooth, d=9, sigmaColor=p.get("sigma_color", 40), sigmaSpace=7)
    levels = int(p.get("levels", 8))
    step = 256 // levels
    flat = (smooth // step * step + step // 2).astype(np.uint8)
    grey = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
    edges = cv2.adaptiveThreshold(
        grey,
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY,
        int(p.get("block_size", 9)),
        p.get("edge_c", 2),
    )
    return _rgb(cv2.bitwise_and(flat, flat, mask=edges))


def detail_enhance(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Crisp, illustrative detail: ``cv2.detailEnhance``."""
    return _rgb(
        cv2.detailEnhance(_bgr(rgb), sigma_s=p.get("sigma_s", 10), sigma_r=p.get("sigma_r", 0.15))
    )


def soft_focus(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Dreamy, painterly smoothing: ``cv2.edgePreservingFilter`` (recursive filter)."""
    return _rgb(
        cv2.edgePreservingFilter(
            _bgr(rgb),
            flags=cv2.RECURS_FILTER,
            sigma_s=p.get("sigma_s", 60),
            sigma_r=p.get("sigma_r", 0.4),
        )
    )


def pop_art(rgb: Array, p: Mapping[str, Any]) -> Array:
    """Screen-print look: boosted saturation, few colour levels, smoothed first."""
    bgr = cv2.bilateralFilter(_bgr(rgb), d=9, sigmaColor=60, sigmaSpace=9)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * p.get("saturation", 1.8), 0, 255)
    bgr = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    levels = int(p.get("levels", 4))
    step = 256 // levels
    return _rgb((bgr // step * step + step // 2).astype(np.uint8))


FILTERS: dict[str, Filter] = {
    "pencil_sketch": pencil_sketch,
    "colour_pencil": colour_pencil,
    "oil_paint": oil_paint,
    "watercolour": watercolour,
    "cartoon": cartoon,
    "detail_enhance": detail_enhance,
    "soft_focus": soft_focus,
    "pop_art": pop_art,
}


def render(rgb: Array, style: Mapping[str, Any], threads: int = 1) -> Array:
    """Apply the style's filter with its parameters."""
    name = style["filter"]
    if name not in FILTERS:
        raise I2IError(f"classic backend: unknown filter {name!r}; known: {', '.join(FILTERS)}")
    cv2.setNumThreads(max(1, threads))
    return FILTERS[name](np.ascontiguousarray(rgb), style.get("params") or {})


BACKEND = register(
    StyleBackend(
        name="classic",
        rule="stylize_classic",
        schema={
            "required": ["filter"],
            "properties": {
                "filter": {"enum": list(FILTERS)},
                "params": {
                    "type": "object",
                    "additionalProperties": {"type": ["number", "integer", "boolean"]},
                    "default": {},
                },
            },
        },
        render="i2i.backends.classic:render",
        code=("i2i.backends.classic",),
        default=True,
    )
)
