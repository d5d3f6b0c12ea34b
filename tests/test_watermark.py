"""Watermark: font fallback, size, placement, contrast and EXIF of the final WebP."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import piexif
import pytest
from PIL import ExifTags, Image

from i2i import I2IError
from i2i.config import load_yaml, validate_config
from i2i.stages.captions import make_caption
from i2i.stages.metadata.read import read_metadata
from i2i.stages.tags import GPS_TAGS, PUBLISHED_FIELDS, ascii_safe, credits
from i2i.stages.watermark import (
    CORNERS,
    DEFAULTS,
    achieved_contrast,
    bundled_font,
    coverage,
    draw_watermark,
    font_chain,
    font_dir,
    load_font,
    plan_watermark,
    split_runs,
    text_mask,
    watermark,
)

CAPTION = "i2i © 2019 ♋ Nice, Côte d'Azur · 東京 서울 القاهرة नई दिल्ली"
METADATA: dict[str, Any] = {
    "exif": {"date_taken": "2019-07-14T21:30:00.250+02:00", "make": "FUJIFILM", "model": "X-T3"},
    "file": {"sha256": "ab" * 32},
    "gps": {"lat": 43.6952, "lon": 7.2656, "altitude": 12.0, "heading": 180.0},
}
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool not installed (apt-get install libimage-exiftool-perl)"
)


def settings(**overrides: Any) -> dict[str, Any]:
    """Schema-default watermark settings with overrides."""
    return {**DEFAULTS, **overrides}


def test_bundle_is_small_and_licensed() -> None:
    files = list(font_dir().iterdir())
    assert sum(f.stat().st_size for f in files) < 5 * 1024 * 1024
    names = {f.name for f in files}
    assert {"LICENSE-DejaVu.txt", "LICENSE-Noto-OFL.txt", "LICENSE-Droid-Apache-2.0.txt"} <= names
    assert all(Path(path).is_file() for path in font_chain())


def test_every_drawn_character_has_a_glyph() -> None:
    runs = split_runs(CAPTION + " 🜁✨\ufe0f", font_chain())
    drawn = "".join(part for part, _ in runs)
    assert "🜁" not in drawn and "✨" not in drawn
    for part, path in runs:
        assert all(ord(ch) in coverage(path) for ch in part), (part, path)
    fonts = {part.strip(): Path(path).name for part, path in runs}
    assert fonts["東京 서울"] == "DroidSansFallback-CJK.ttf"
    assert fonts["नई दिल्ली"] == "NotoSansDevanagari-Regular.ttf"
    assert fonts["i2i © 2019 ♋ Nice, Côte d'Azur ·"] == "DejaVuSans.ttf"


def test_cjk_is_drawn_not_boxed() -> None:
    image = Image.new("RGB", (400, 200), "white")
    config = settings(size=0.2, position="bottom-left")
    plan = plan_watermark(image, "東京", config)
    mask = np.asarray(text_mask(plan, image.size))
    tofu = load_font(str(bundled_font()), plan.layout.size).getmask("東").getbbox()
    assert mask.any() and plan.layout.runs[0][1].path.endswith("DroidSansFallback-CJK.ttf")
    assert plan.layout.extent != (tofu[2] - tofu[0], tofu[3] - tofu[1])


def test_unknown_font_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "nope.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(I2IError, match=r"nope\.ttf"):
        load_font(str(bad), 12)


def test_text_size_is_relative_to_the_image() -> None:
    small = plan_watermark(Image.new("RGB", (600, 400)), "i2i © 2019", settings())
    large = plan_watermark(Image.new("RGB", (1800, 1200)), "i2i © 2019", settings())
    assert small.layout.size == round(400 * DEFAULTS["size"])
    assert large.layout.size == round(1200 * DEFAULTS["size"])


def test_long_text_is_scaled_to_fit() -> None:
    image = Image.new("RGB", (300, 300))
    plan = plan_watermark(image, CAPTION * 2, settings())
    assert plan.box[0] >= 0 and plan.box[2] <= image.width


@pytest.mark.parametrize("position", [*CORNERS, "bottom-center", "top-center"])
def test_named_positions(position: str) -> None:
    image = Image.new("RGB", (800, 600), "grey")
    x0, y0, x1, y1 = plan_watermark(image, "i2i © 2019", settings(position=position)).box
    vertical, horizontal = position.split("-")
    assert (y0 < 300) == (vertical == "top") and (y1 > 300) == (vertical == "bottom")
    centre = (x0 + x1) / 2
    expected = {"left": centre < 400, "right": centre > 400, "center": abs(centre - 400) <= 1}
    assert expected[horizontal]


@pytest.mark.parametrize("calm", CORNERS)
def test_auto_picks_the_calmest_corner(calm: str) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    vertical, horizontal = calm.split("-")
    rows = slice(0, 200) if vertical == "top" else slice(400, 600)
    cols = slice(0, 400) if horizontal == "left" else slice(400, 800)
    pixels[rows, cols] = 128
    plan = plan_watermark(Image.fromarray(pixels), "i2i © 2019", settings(position="auto"))
    assert plan.position == calm


@pytest.mark.parametrize(
    "colour", [(255, 255, 255), (0, 0, 0), (128, 128, 128), (255, 230, 0), (0, 40, 120)]
)
def test_readable_on_flat_backgrounds(colour: tuple[int, int, int]) -> None:
    image = Image.new("RGB", (800, 600), colour)
    assert achieved_contrast(image, "i2i © 2019 ♋ Nice 東京", settings()) >= 3


def test_readable_on_noise() -> None:
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8))
    assert achieved_contrast(image, "i2i © 2019 ♋ Nice", settings()) >= 3


def test_empty_caption_leaves_the_image_alone() -> None:
    image = Image.new("RGB", (64, 64), "white")
    assert np.array_equal(np.asarray(draw_watermark(image, "  ", settings())), np.asarray(image))


SOURCE_REF = "Côte d'Azur & Paris/café_crème.jpg"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
# exiftool groups that describe the file or the container, not tags i2i writes.
NOT_WRITTEN = ("SourceFile", "File:", "System:", "ExifTool:", "RIFF:", "Composite:")


def _final(tmp_path: Path, keep_gps: bool, metadata: dict[str, Any] = METADATA) -> Path:
    styled = tmp_path / "styled.webp"
    Image.new("RGB", (640, 480), (30, 90, 160)).save(styled, "WEBP")
    target = tmp_path / "out" / "final.webp"
    config = settings(brand="Studio Ünï", artist="Zoë Doe")
    watermark(styled, target, metadata, CAPTION, config, keep_gps=keep_gps)
    return target


def pillow_tags(path: Path) -> dict[str, Any]:
    """What Pillow reads from a WebP: EXIF tags by name (XP tags decoded) and XMP dc fields."""
    with Image.open(path) as image:
        exif = image.getexif()
        xmp = image.info.get("xmp")
    tags: dict[str, Any] = {ExifTags.TAGS.get(k, k): v for k, v in exif.items()}
    tags.update({ExifTags.TAGS[k]: v for k, v in exif.get_ifd(ExifTags.IFD.Exif).items()})
    for name in ("XPTitle", "XPAuthor", "XPComment"):
        if name in tags:
            tags[name] = bytes(tags[name]).decode("utf-16-le").rstrip("\0")
    if xmp:
        for node in ET.fromstring(xmp).iter():
            if node.tag.startswith(DC):
                tags[f"dc:{node.tag[len(DC) :]}"] = next(node.iter(f"{RDF}li")).text
    return tags


def test_final_webp_roundtrip_in_pillow(tmp_path: Path) -> None:
    target = _final(tmp_path, keep_gps=False)
    with Image.open(target) as image:
        assert image.format == "WEBP" and image.size == (640, 480)
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    tags = pillow_tags(target)
    assert tags["dc:description"] == tags["XPComment"] == CAPTION
    assert "ImageDescription" not in tags, "CJK has no ASCII form: XMP and XPComment carry it"
    assert tags["dc:creator"] == tags["XPAuthor"] == "Zoë Doe"
    assert tags["Artist"] == "Zoe Doe"
    assert tags["dc:rights"] == "© 2019 Zoë Doe"
    assert tags["Copyright"] == "(c) 2019 Zoe Doe", "no UTF-8 bytes in an ASCII tag (Â©)"
    assert tags["DateTimeOriginal"] == "2019:07:14 21:30:00"


def exiftool(path: Path, *options: str) -> dict[str, Any]:
    """exiftool's JSON for one file, every tag (-a) with its group (-G1)."""
    out = subprocess.run(
        [EXIFTOOL, "-j", "-G1", "-a", *options, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)[0]


def written(tags: dict[str, Any]) -> set[str]:
    """The tags of an exiftool listing that the file carries (not file or container facts)."""
    return {key for key in tags if not key.startswith(NOT_WRITTEN)}


@needs_exiftool
def test_exiftool_reads_the_tags_without_gps(tmp_path: Path) -> None:
    tags = exiftool(_final(tmp_path, keep_gps=False), "-n")
    assert tags["XMP-dc:Rights"] == "© 2019 Zoë Doe", "the artist's, not the brand's"
    assert tags["IFD0:Copyright"] == "(c) 2019 Zoe Doe"
    assert tags["XMP-dc:Creator"] == tags["IFD0:XPAuthor"] == "Zoë Doe"
    assert tags["XMP-dc:Description"] == tags["IFD0:XPComment"] == CAPTION
    assert tags["ExifIFD:DateTimeOriginal"] == "2019:07:14 21:30:00"
    assert tags["ExifIFD:OffsetTimeOriginal"] == "+02:00"
    assert tags["ExifIFD:SubSecTimeOriginal"] == 25
    assert tags["XMP-photoshop:DateCreated"] == "2019:07:14 21:30:00.250+02:00"
    assert tags["IFD0:Make"] == "FUJIFILM" and tags["IFD0:Model"] == "X-T3"
    assert tags["IFD0:Software"].startswith("i2i ")
    assert not [key for key in tags if "GPS" in key]


@needs_exiftool
def test_exiftool_reads_gps_when_kept(tmp_path: Path) -> None:
    tags = exiftool(_final(tmp_path, keep_gps=True), "-n")
    assert tags["GPS:GPSLatitude"] == pytest.approx(43.6952, abs=1e-6)
    assert tags["GPS:GPSLongitude"] == pytest.approx(7.2656, abs=1e-6)
    assert tags["GPS:GPSAltitude"] == pytest.approx(12.0)
    assert tags["GPS:GPSImgDirection"] == pytest.approx(180.0)
    allowed = {tag for tags in PUBLISHED_FIELDS.values() for tag in tags} | set(GPS_TAGS)
    assert written(tags) <= allowed


RICH_METADATA: dict[str, Any] = {
    "source_path": SOURCE_REF,
    "file": {"name": "café_crème.jpg", "sha256": "5e" * 32},
    "exif": {
        **METADATA["exif"],
        "artist": "Zoë Doe",
        "lens_make": "FUJIFILM",
        "lens_model": "XF23mmF2 R WR",
        "exposure_time": 0.004,
        "f_number": 2.8,
        "iso": 400,
        "focal_length": 23.0,
        "focal_length_35mm": 35,
        "body_serial_number": "5CA12345",
        "lens_serial_number": "8AB00042",
        "camera_owner": "Zoé D.",
        "software": "Digital Camera X-T3 Ver4.10",
        "image_description": "OLYMPUS DIGITAL CAMERA",
    },
    "gps": METADATA["gps"],
    "apple_photos": {
        "uuid": "3DD2C897-1F1B-4A5B",
        "title": "Café crème",
        "description": "Terrasse à Nice, «matin»",
        "keywords": ["Zoë", "secret"],
        "persons": ["Zoë Doe"],
    },
}


@needs_exiftool
def test_published_tags_are_the_allowlist(tmp_path: Path) -> None:
    target = _final(tmp_path, keep_gps=False, metadata=RICH_METADATA)
    tags = exiftool(target, "-n")
    allowed = {tag for tags in PUBLISHED_FIELDS.values() for tag in tags}
    assert written(tags) == allowed
    assert tags["ExifIFD:ExposureTime"] == pytest.approx(0.004)
    assert tags["ExifIFD:FNumber"] == 2.8 and tags["ExifIFD:ISO"] == 400
    assert tags["ExifIFD:FocalLength"] == 23 and tags["ExifIFD:FocalLengthIn35mmFormat"] == 35
    assert tags["ExifIFD:LensModel"] == "XF23mmF2 R WR"
    assert tags["XMP-dc:Title"] == tags["IFD0:XPTitle"] == "Café crème"
    assert tags["XMP-dc:Description"] == "Terrasse à Nice, «matin»", "the owner's, not the caption"
    data = target.read_bytes()
    for secret in ("café_crème", "cafe", "Côte", "5CA12345", "8AB00042", "Zoé D.", "secret"):
        for encoding in ("utf-8", "utf-16-le", "latin-1"):
            assert secret.encode(encoding, "ignore") not in data, (secret, encoding)
    assert b"5e5e5e5e" not in data and b"3DD2C897" not in data


@needs_exiftool
def test_unicode_text_reads_the_same_in_exiftool_and_pillow(tmp_path: Path) -> None:
    metadata = {**RICH_METADATA, "apple_photos": {"title": "Ærøskøbing © Zoë", "description": ""}}
    target = _final(tmp_path, keep_gps=False, metadata=metadata)
    tool, pil = exiftool(target), pillow_tags(target)
    assert tool["XMP-dc:Title"] == pil["dc:title"] == pil["XPTitle"] == "Ærøskøbing © Zoë"
    assert tool["XMP-dc:Rights"] == pil["dc:rights"] == "© 2019 Zoë Doe"
    assert tool["XMP-dc:Creator"] == pil["dc:creator"] == "Zoë Doe"
    assert tool["IFD0:Artist"] == pil["Artist"] == "Zoe Doe"
    assert tool["IFD0:Copyright"] == pil["Copyright"] == "(c) 2019 Zoe Doe"
    ascii_tags = [v for v in pil.values() if isinstance(v, str)]
    assert not [v for v in ascii_tags if "Ã" in v or "Â" in v], "no UTF-8 read as Latin-1"


def test_ascii_safe() -> None:
    assert ascii_safe("© 2019 Zoë Doe") == "(c) 2019 Zoe Doe"
    assert ascii_safe("Ærøskøbing “Straße” – …") == 'AEroskobing "Strasse" - ...'
    assert ascii_safe("Nice 東京") is None
    assert ascii_safe("") is None


def test_no_xmp_without_text(tmp_path: Path) -> None:
    styled = tmp_path / "styled.webp"
    Image.new("RGB", (64, 64)).save(styled, "WEBP")
    watermark(styled, tmp_path / "final.webp", {"exif": {}}, "", settings())
    with Image.open(tmp_path / "final.webp") as image:
        assert "xmp" not in image.info
        assert dict(image.getexif()) == {ExifTags.Base.Software: image.getexif()[305]}


ROOT = Path(__file__).resolve().parent.parent


def source_photo(path: Path, **tags: str) -> Path:
    """A JPEG whose EXIF piexif writes: Artist/Copyright as given, taken on 2024-05-01."""
    zeroth = {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS R5"}
    names = {"artist": piexif.ImageIFD.Artist, "copyright": piexif.ImageIFD.Copyright}
    zeroth.update({names[key]: value.encode() for key, value in tags.items()})
    exif = {piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00"}
    Image.new("RGB", (320, 240), (90, 120, 60)).save(
        path, "JPEG", exif=piexif.dump({"0th": zeroth, "Exif": exif})
    )
    return path


def publish_credits(tmp_path: Path, config: dict[str, Any], **tags: str) -> dict[str, Any]:
    """What Pillow reads from the final image made from a source photo with ``tags``."""
    metadata = read_metadata(source_photo(tmp_path / "source.jpg", **tags))
    styled = tmp_path / "styled.webp"
    Image.new("RGB", (320, 240), (200, 180, 160)).save(styled, "WEBP")
    final = tmp_path / "final.webp"
    watermark(styled, final, metadata, "i2i © 2024", config["watermark"])
    return pillow_tags(final)


def test_the_metadata_record_holds_the_source_credits(tmp_path: Path) -> None:
    path = source_photo(tmp_path / "s.jpg", artist="Jane Doe", copyright="© 2024 Jane Doe")
    assert read_metadata(path)["exif"]["artist"] == "Jane Doe"
    assert read_metadata(path)["exif"]["copyright"] == "© 2024 Jane Doe"


@pytest.mark.parametrize(
    "config_file", [None, "config.yaml"], ids=["schema defaults", "config.yaml"]
)
def test_default_config_keeps_the_source_artist(tmp_path: Path, config_file: str | None) -> None:
    config = validate_config(load_yaml(ROOT / config_file) if config_file else {})
    tags = publish_credits(tmp_path, config, artist="Jane Doe")
    assert tags["Artist"] == tags["dc:creator"] == "Jane Doe"
    assert tags["dc:rights"] == "© 2024 Jane Doe" and tags["Copyright"] == "(c) 2024 Jane Doe"
    assert "i2i" not in tags["Artist"] + tags["Copyright"]


def test_the_source_copyright_is_kept_as_written(tmp_path: Path) -> None:
    config = validate_config({})
    tags = publish_credits(
        tmp_path, config, artist="Zoë Doe", copyright="Copyright 2023 Zoë Doe Studio, CC BY 4.0"
    )
    assert tags["dc:creator"] == "Zoë Doe"
    assert tags["dc:rights"] == "Copyright 2023 Zoë Doe Studio, CC BY 4.0"
    assert tags["Copyright"] == "Copyright 2023 Zoe Doe Studio, CC BY 4.0"


def test_config_credits_win_over_the_source(tmp_path: Path) -> None:
    config = validate_config(
        {
            "watermark": {
                "brand": "Doe Studio",
                "artist": "Ann Other",
                "copyright": "© {year} {brand}",
            }
        }
    )
    tags = publish_credits(tmp_path, config, artist="Jane Doe", copyright="© 2024 Jane Doe")
    assert tags["Artist"] == "Ann Other"
    assert tags["dc:rights"] == "© 2024 Doe Studio"
    config["watermark"]["copyright"] = "© {year} {artist}. All rights reserved."
    tags = publish_credits(tmp_path, config, artist="Jane Doe")
    assert tags["dc:rights"] == "© 2024 Ann Other. All rights reserved."


def test_no_artist_anywhere_writes_no_credits(tmp_path: Path) -> None:
    tags = publish_credits(tmp_path, validate_config({}))
    assert not {"Artist", "Copyright", "XPAuthor", "dc:creator", "dc:rights"} & set(tags)
    assert tags["Software"].startswith("i2i ")


def test_credits_without_a_date_or_an_artist() -> None:
    assert credits({"exif": {"artist": "Jane Doe"}}, {}) == ("Jane Doe", "© Jane Doe")
    assert credits({"exif": {}}, {"copyright": "© {year} {artist}"}) == (None, None)
    assert credits({"exif": {}}, {"copyright": "© {year} {brand}", "brand": "Doe"}) == (
        None,
        "© Doe",
    )
    with pytest.raises(I2IError, match=r"watermark\.copyright.*camera"):
        credits({"exif": {}}, {"copyright": "© {camera}"})


@needs_exiftool
def test_exiftool_reads_the_source_artist(tmp_path: Path) -> None:
    metadata = read_metadata(source_photo(tmp_path / "source.jpg", artist="Jane Doe"))
    styled = tmp_path / "styled.webp"
    Image.new("RGB", (320, 240), (200, 180, 160)).save(styled, "WEBP")
    final = tmp_path / "final.webp"
    watermark(styled, final, metadata, "i2i © 2024", validate_config({})["watermark"])
    tags = exiftool(final)
    assert tags["IFD0:Artist"] == tags["XMP-dc:Creator"] == "Jane Doe"
    assert tags["XMP-dc:Rights"] == "© 2024 Jane Doe"


def test_the_photos_title_reaches_the_published_image(tmp_path: Path) -> None:
    apple = {"uuid": "3DD2C897", "title": "Elder Park", "description": "Adelaide at dusk"}
    metadata = read_metadata(source_photo(tmp_path / "source.jpg"), "album/source.jpg", apple)
    template = {"brand": "i2i", "template": "{brand} © {year} {title} · {description}"}
    caption = make_caption(metadata, {}, template, cache_dir=None)["watermark_text"]
    assert caption == "i2i © 2024 Elder Park · Adelaide at dusk"
    styled = tmp_path / "styled.webp"
    Image.new("RGB", (320, 240), (200, 180, 160)).save(styled, "WEBP")
    final = tmp_path / "final.webp"
    watermark(styled, final, metadata, caption, settings())
    tags = pillow_tags(final)
    assert tags["dc:title"] == tags["XPTitle"] == "Elder Park"
    assert tags["dc:description"] == tags["ImageDescription"] == "Adelaide at dusk"
    assert b"album/source.jpg" not in final.read_bytes()
