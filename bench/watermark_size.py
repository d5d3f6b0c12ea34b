"""Bytes of the final WebP against a JPEG of the same visual quality, and watermark contrast.

For every styled image under ``results/styled`` the watermark is drawn as the workflow does it;
that watermarked image is the reference. It is encoded as the final WebP (quality from the
watermark defaults, with the EXIF block), then as JPEG at the lowest quality whose SSIM against
the reference is at least the WebP's (same EXIF, optimised Huffman tables, 4:2:0). The second
table gives the WCAG contrast between text pixels and the rest of the text box.

Usage: python bench/watermark_size.py [--results results]
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from i2i.core.files import read_json
from i2i.stages.tags import exif_block, published_fields
from i2i.stages.watermark import DEFAULTS, achieved_contrast, draw_watermark


@dataclass(frozen=True)
class Row:
    """One image's measurements."""

    name: str
    size: tuple[int, int]
    webp_bytes: int
    webp_ssim: float
    webp_psnr: float
    jpeg_quality: int
    jpeg_bytes: int
    jpeg_ssim: float


def encode(image: Image.Image, fmt: str, quality: int, exif: bytes) -> tuple[int, np.ndarray]:
    """Encoded size in bytes and the decoded pixels."""
    buffer = io.BytesIO()
    if fmt == "WEBP":
        image.save(buffer, "WEBP", quality=quality, method=4, exif=exif)
    else:
        image.save(buffer, "JPEG", quality=quality, optimize=True, exif=exif)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return buffer.getbuffer().nbytes, np.asarray(decoded.convert("RGB"))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two RGB arrays (0..255)."""
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def lowest_quality(target: float, measure: Callable[[int], float]) -> int:
    """Smallest quality in 1..100 whose ``measure`` reaches ``target`` (100 if none does)."""
    low, high = 1, 100
    while low < high:
        mid = (low + high) // 2
        if measure(mid) >= target:
            high = mid
        else:
            low = mid + 1
    return low


def measure(styled: Path, results: Path) -> Row:
    """Watermark one styled image and compare the encodings."""
    album, style, photo = styled.parent.parent.name, styled.parent.name, styled.stem
    metadata = read_json(results / "metadata" / album / f"{photo}.json")
    caption = read_json(results / "captions" / album / f"{photo}.json")["watermark_text"]
    with Image.open(styled) as image:
        marked = draw_watermark(image, caption, DEFAULTS)
    reference = np.asarray(marked)
    exif = exif_block(published_fields(metadata, caption, DEFAULTS), None)
    webp_bytes, webp_pixels = encode(marked, "WEBP", DEFAULTS["quality"], exif)
    webp_ssim = ssim(reference, webp_pixels)
    quality = lowest_quality(
        webp_ssim, lambda q: ssim(reference, encode(marked, "JPEG", q, exif)[1])
    )
    jpeg_bytes, jpeg_pixels = encode(marked, "JPEG", quality, exif)
    return Row(
        f"{album}/{style}/{photo}",
        marked.size,
        webp_bytes,
        webp_ssim,
        float(peak_signal_noise_ratio(reference, webp_pixels, data_range=255)),
        quality,
        jpeg_bytes,
        ssim(reference, jpeg_pixels),
    )


def box_contrast(image: Image.Image, caption: str) -> float:
    """WCAG contrast of the caption as drawn with the default settings."""
    return achieved_contrast(image, caption, DEFAULTS)


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args()
    styled = sorted((args.results / "styled").glob("*/*/*.webp"))
    if not styled:
        sys.exit(f"no styled images under {args.results / 'styled'}")
    out = sys.stdout.write
    out(
        f"{'image':<50} {'size':>9} {'webp B':>8} {'SSIM':>6} {'PSNR':>5} "
        f"{'jpeg q':>6} {'jpeg B':>8} {'SSIM':>6} {'webp/jpeg':>9}\n"
    )
    rows = [measure(path, args.results) for path in styled]
    for r in rows:
        out(
            f"{r.name[:50]:<50} {r.size[0]:>4}x{r.size[1]:<4} {r.webp_bytes:>8} "
            f"{r.webp_ssim:6.4f} {r.webp_psnr:5.1f} {r.jpeg_quality:>6} {r.jpeg_bytes:>8} "
            f"{r.jpeg_ssim:6.4f} {r.webp_bytes / r.jpeg_bytes:9.2f}\n"
        )
    webp = sum(r.webp_bytes for r in rows)
    jpeg = sum(r.jpeg_bytes for r in rows)
    out(
        f"{len(rows)} images: WebP {webp / len(rows):.0f} B/image, JPEG (same SSIM) "
        f"{jpeg / len(rows):.0f} B/image, WebP/JPEG {webp / jpeg:.2f}\n\n"
    )
    out(f"{'background':<50} {'WCAG contrast (text vs box)':>28}\n")
    sample = "i2i © 2019 ♋ Nice, France 東京"
    flats = [("white", (255, 255, 255)), ("black", (0, 0, 0)), ("grey 128", (128, 128, 128))]
    for name, colour in flats:
        value = box_contrast(Image.new("RGB", (800, 600), colour), sample)
        out(f"{'flat ' + name:<50} {value:>28.1f}\n")
    for path in styled:
        album, photo = path.parent.parent.name, path.stem
        caption = read_json(args.results / "captions" / album / f"{photo}.json")["watermark_text"]
        with Image.open(path) as image:
            value = box_contrast(image.convert("RGB"), caption)
        out(f"{str(path.relative_to(args.results / 'styled'))[:50]:<50} {value:>28.1f}\n")


if __name__ == "__main__":
    main()
