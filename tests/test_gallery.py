"""The file:// gallery: pages from templates with relative links right for any key depth, no
external assets, human titles, dates and camera lines, the original beside its styles,
responsive images, chosen covers, deterministic builds; and in a real headless Chromium
(DevTools protocol over a websocket) every image decodes, the viewer walks a whole album by
keyboard and by swipes, nothing logs an error, and the pages fit a 390 px phone. Screenshots
at 390 and 1280 px are kept under the test's temp folder and in tests/artefacts/ (ignored)."""

from __future__ import annotations

import base64
import html
import itertools
import posixpath
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from i2i import I2IError
from i2i.config import validate_config
from i2i.core.files import is_safe_name
from i2i.stages.gallery.build import build_album, build_index
from i2i.stages.gallery.keys import (
    ALBUM_DIR,
    COVER_SIZES,
    DERIVED_DIR,
    INDEX,
    album_keys,
    cover_key,
    gallery_settings,
    original_key,
    planned_keys,
    relative_url,
)
from i2i.stages.gallery.pages import DESKTOP, PHONE, justified_rows, shown_text
from i2i.stages.gallery.upload import site_headers
from i2i.stages.gallery.words import (
    camera_line,
    credit_lines,
    date_span,
    human_date,
    merged_notices,
    photo_title,
    taken,
    tidy_name,
)
from i2i.stages.publish import publish

from chromium import LOAD_ALL_IMAGES, DevTools, open_page, problems
from conftest import REPO, copy_workflow, planned, snakemake

STYLES = ["oil_paint", "pencil_sketch"]
ALBUMS = {"Côte d'Azur & Paris": ["café crème", "chelsea"], "100% #1 ?q": ["deep_field"]}
LAYOUTS = {
    "default": "{prefix}/{album}/{photo}_{style}.webp",
    "deep": "site/v1/{album}/{style}/{photo}.webp",
    "flat": "{photo}_{style}.webp",
}
SETTINGS = {"title": "Travels <2024>", "brand": "Jane & Co", "covers": {}}
EXIF = {
    "date_taken": "2024-07-05T09:12:30.250+02:00",
    "make": "FUJIFILM",
    "model": "X-T4",
    "lens_model": "XF23mmF1.4 R",
    "focal_length": 23.0,
    "focal_length_35mm": 35,
    "f_number": 2.0,
    "shutter_speed": "1/125",
    "iso": 320,
}
ARTEFACTS = REPO / "tests" / "artefacts"


class Links(HTMLParser):
    """Every href, src and srcset URL of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in {"href", "src"}:
                self.urls.append(value)
            elif name in {"srcset", "data-srcset"}:
                self.urls += [part.split()[0] for part in value.split(",")]


class Text(HTMLParser):
    """The text a page shows (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in {"script", "style", "title"}

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in {"script", "style", "title"}

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def shown(html_text: str) -> str:
    parser = Text()
    parser.feed(html_text)
    return " ".join(" ".join(parser.parts).split())


def colour(number: int, shade: int) -> tuple[int, int, int]:
    return (40 * shade + 60, 90 + 40 * number, 200 - 30 * number)


def build_gallery(
    catalog: Mapping[str, Any],
    root: Path,
    originals: Mapping[tuple[str, str], str | Path] | None = None,
    settings: Mapping[str, Any] | None = None,
    prefix: str = "",
) -> list[str]:
    """Every album page and the index for a whole catalog, as the rules build them one album
    at a time; return the pages written."""
    originals = originals or {}
    albums: dict[str, list[Mapping[str, Any]]] = {}
    for entry in catalog["photos"]:
        albums.setdefault(entry["album"], []).append(entry)
    pages = []
    for album, photos in albums.items():
        mine = {photo: path for (a, photo), path in originals.items() if a == album}
        built = build_album(
            {"album": album, "photos": photos, "styles": catalog["styles"]},
            root,
            mine,
            settings,
            prefix=prefix,
        )
        pages += built["pages"]
    counts = {a: (len(p), album_keys(p)) for a, p in albums.items()}
    pages.append(build_index(counts, root, settings, prefix))
    return pages


def make_gallery(
    root: Path, template: str, tmp: Path, settings: dict | None = None, prefix: str = ""
) -> list[str]:
    """Publish synthetic images with ``template`` into ``root`` and build the gallery; the
    originals are flat colours (photo ``chelsea`` is a favourite, ``café crème`` has a Photos
    title, ``deep_field`` is portrait and undated)."""
    target = {"target": f"file://{root}", "key_template": template}
    photos, originals = [], {}
    for number, (album, names) in enumerate(ALBUMS.items()):
        for index, photo in enumerate(names):
            size = (640, 960) if photo == "deep_field" else (960, 640)
            styles = {}
            for shade, style in enumerate(STYLES):
                source = tmp / f"{number}-{photo}-{style}.webp"
                Image.new("RGB", size, colour(number, shade + 1)).save(source, "WEBP")
                styles[style] = publish(source, album, photo, style, target)
            original = tmp / f"{number}-{photo}-original.webp"
            Image.new("RGB", size, colour(number, index + 3)).save(original, "WEBP")
            originals[album, photo] = original
            entry = {
                "album": album,
                "photo": photo,
                "source_path": f"{album}/{photo}.jpg",
                "styles": styles,
                "watermark_text": f"i2i © 2024 {photo} Paris, France",
                "caption_source": "template",
                "location_formatted": "Paris, France",
                "exif": {**EXIF, "date_taken": f"2024-07-0{5 - index}T09:12:30+02:00"},
            }
            if photo == "café crème":
                entry["title"] = "Morning <coffee>"
            if photo == "chelsea":
                entry["favorite"] = True
            if photo == "deep_field":
                entry["exif"] = {}
                entry["location_formatted"] = ""
            photos.append(entry)
    catalog = {"photos": photos, "styles": STYLES}
    return build_gallery(catalog, root, originals, settings or SETTINGS, prefix)


@pytest.fixture(params=sorted(LAYOUTS))
def built(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "site with space"
    return root, make_gallery(root, LAYOUTS[request.param], tmp_path)


def page_text(root: Path, page: str) -> str:
    return (root / page).read_text(encoding="utf-8")


def test_every_link_resolves_locally(built: tuple[Path, list[str]]) -> None:
    root, pages = built
    assert INDEX in pages
    assert len(pages) == len(ALBUMS) + 1
    for page in pages:
        parser = Links()
        parser.feed(page_text(root, page))
        assert parser.urls
        for url in parser.urls:
            if url.startswith(("data:", "#")):
                continue
            parts = urllib.parse.urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page}: external URL {url}"
            target = (root / page).parent / urllib.parse.unquote(parts.path)
            assert target.is_file(), f"{page}: {url} does not resolve"
        if page != INDEX:
            href = html.escape(relative_url(INDEX, page), quote=True)
            assert f'href="{href}"' in page_text(root, page)


def test_albums_sharing_a_folder_get_their_own_pages(tmp_path: Path) -> None:
    pages = make_gallery(tmp_path / "site", LAYOUTS["flat"], tmp_path)
    assert sorted(pages) == sorted([INDEX, *(f"{ALBUM_DIR}/{a}.html" for a in ALBUMS)])


def test_a_prefix_holds_the_index_and_the_shared_album_pages(tmp_path: Path) -> None:
    """An s3:// target's prefix: the index and ``_albums`` go under it, the links still resolve."""
    root = tmp_path / "site"
    pages = make_gallery(root, "site/v1/{photo}_{style}.webp", tmp_path, prefix="site/v1")
    shared = [f"site/v1/{ALBUM_DIR}/{album}.html" for album in ALBUMS]
    assert sorted(pages) == sorted(["site/v1/index.html", *shared])
    for page in pages:
        parser = Links()
        parser.feed(page_text(root, page))
        for url in parser.urls:
            if not url.startswith(("data:", "#")):
                target = (root / page).parent / urllib.parse.unquote(url)
                assert target.is_file(), f"{page}: {url} does not resolve"
    assert 'href="../index.html"' in page_text(root, shared[0])
    assert not (root / INDEX).exists() and not (root / ALBUM_DIR).exists()


def test_site_headers() -> None:
    publish = {"cache_control": "max-age=9", "page_cache_control": "max-age=1"}
    assert site_headers("a/index.html", publish) == {
        "ContentType": "text/html; charset=utf-8",
        "CacheControl": "max-age=1",
    }
    assert site_headers("a/_gallery/p.400.webp", publish) == {
        "ContentType": "image/webp",
        "CacheControl": "max-age=9",
    }
    assert site_headers("x.css", {})["ContentType"] == "text/css; charset=utf-8"
    assert site_headers("x.js", {})["ContentType"] == "application/javascript; charset=utf-8"
    assert site_headers("x.html", {})["CacheControl"] == "public, max-age=300"
    assert site_headers("x.webp", {})["CacheControl"] == "public, max-age=31536000, immutable"


def test_relative_url_quotes_and_climbs() -> None:
    assert relative_url("index.html", "a/b/c/index.html") == "../../../index.html"
    assert relative_url("a/x #1.webp", "a/index.html") == "x%20%231.webp"
    assert relative_url("b/y.webp", "a/index.html") == "../b/y.webp"


def test_derived_images_are_never_image_keys(built: tuple[Path, list[str]]) -> None:
    """Gallery-made files sit one level deeper than every key the template gives, so the
    publish audit never takes them for published images."""
    root, _ = built
    files = [p.relative_to(root) for p in root.rglob("*.webp")]
    made = [p for p in files if DERIVED_DIR in p.parts]
    published = [p for p in files if DERIVED_DIR not in p.parts]
    assert made and published
    (depth,) = {len(p.parts) for p in published}
    assert {len(p.parts) for p in made} == {depth + 1}


def test_the_originals_copy_is_named_for_the_photo(built: tuple[Path, list[str]]) -> None:
    """``<photo>.original.webp`` (and its sizes) beside the first style's image, not
    ``<photo>_<style>.original.webp``."""
    root, _ = built
    originals = sorted(p.name for p in root.rglob(f"*{DERIVED_DIR}/*.original*.webp"))
    assert originals == sorted(
        f"{photo}.original{size}.webp"
        for names in ALBUMS.values()
        for photo in names
        for size in ("", ".400", ".800")
    )


def exiftool(path: Path, *tags: str) -> None:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-codedcharacterset=utf8", *tags, str(path)],
        check=True,
    )


@pytest.mark.parametrize(
    ("tags", "title"),
    [
        (
            [
                "-XMP-dc:Title=Départ à l'aube",
                "-IPTC:ObjectName=IPTC name",
                "-EXIF:XPTitle=XP title",
                "-EXIF:ImageDescription=Description",
            ],
            "Départ à l'aube",
        ),
        (["-IPTC:ObjectName=Pad 39A, nuit", "-EXIF:XPTitle=XP title"], "Pad 39A, nuit"),
        (["-EXIF:XPTitle=Fenêtre  sur\ncour", "-EXIF:ImageDescription=Desc"], "Fenêtre sur cour"),
        (["-EXIF:ImageDescription=Night launch"], "Night launch"),
        (["-EXIF:ImageDescription=OLYMPUS DIGITAL CAMERA"], "Deep field"),
        ([], "Deep field"),
    ],
)
def test_titles_come_from_the_files_own_metadata(
    tmp_path: Path, tags: list[str], title: str
) -> None:
    """Without a Photos title the file's XMP dc:title, IPTC ObjectName, EXIF XPTitle or a real
    ImageDescription names the photo (read by the metadata stage), else its tidied name."""
    from i2i.stages.catalog import photo_entry
    from i2i.stages.metadata.read import read_metadata

    source = tmp_path / "deep_field.jpg"
    Image.new("RGB", (32, 24), (90, 120, 150)).save(source, "JPEG")
    if tags:
        exiftool(source, *tags)
    record = read_metadata(source)
    assert record["problems"] == []
    caption = {"watermark_text": "", "source": "template"}
    entry = photo_entry("A", "deep_field", record, {}, caption)
    assert photo_title(entry) == title
    assert photo_title({**entry, "title": "From Photos"}) == "From Photos"


def test_words_are_human() -> None:
    assert tidy_name("deep_field") == "Deep field"
    assert tidy_name("IMG_0042") == "IMG 0042"
    assert tidy_name("falcon9_launch") == "Falcon9 launch"
    assert tidy_name("IMG_0042.JPG") == "IMG 0042"
    assert tidy_name("CAPE_CANAVERAL__night") == "CAPE CANAVERAL night"
    assert tidy_name("CAPE_CANAVERAL") == "Cape canaveral"
    moment = taken({"exif": {"date_taken": "2024-03-21T21:45:10.250-04:00"}})
    assert human_date(moment) == "21 March 2024, 21:45"
    assert human_date(None) == ""
    assert taken({"exif": {"date_taken": "not a date"}}) is None
    july = taken({"exif": {"date_taken": "2024-07-05T09:12:30"}})
    assert date_span([moment, july]) == "March\u2009–\u2009July 2024"
    assert date_span([july]) == "July 2024"
    assert date_span([taken({"exif": {"date_taken": "2015-05-01T10:00:00"}}), july]) == (
        "May 2015\u2009–\u2009July 2024"
    )
    assert camera_line(EXIF) == (
        "FUJIFILM X-T4 · XF23mmF1.4 R · 35\u00a0mm · ƒ/2 · 1/125\u00a0s · ISO\u00a0320"
    )
    iphone = {
        "make": "Apple",
        "model": "iPhone 15 Pro",
        "lens_model": "iPhone 15 Pro back triple camera 6.765mm f/1.78",
        "focal_length": 6.765,
        "f_number": 1.78,
    }
    assert camera_line(iphone) == "Apple iPhone 15 Pro · Back triple camera 6.765mm f/1.78 · " + (
        "6.8\u00a0mm · ƒ/1.8"
    )
    assert camera_line({}) == ""
    assert gallery_settings({"watermark": {"brand": "Ann"}, "gallery": {"brand": ""}}) == {
        "title": "Gallery",
        "brand": "Ann",
        "covers": {},
        "locale": "en_GB",
        "album_locales": {},
        "credits": {"brand": "Ann", "artist": "", "copyright": ""},
    }


@pytest.mark.parametrize(
    ("locale", "when", "span"),
    [
        ("en_GB", "21 March 2024, 21:45", "March\u2009–\u2009July 2024"),
        ("en", "March 21, 2024, 9:45\u202fPM", "March\u2009–\u2009July 2024"),
        ("fr", "21 mars 2024, 21:45", "mars\u2009–\u2009juillet 2024"),
        ("de-CH", "21. März 2024, 21:45", "März–Juli 2024"),
        ("ja", "2024年3月21日 21:45", "2024年3月～7月"),
    ],
)
def test_dates_in_the_gallerys_language(locale: str, when: str, span: str) -> None:
    """Month names and date order come from CLDR (babel) for any locale; the time is the
    camera's, whatever its zone."""
    moment = taken({"exif": {"date_taken": "2024-03-21T21:45:10-04:00"}})
    july = taken({"exif": {"date_taken": "2024-07-05T09:12:30+09:00"}})
    assert human_date(moment, locale) == when
    assert date_span([july, moment], locale) == span


def test_an_album_can_have_its_own_locale(tmp_path: Path) -> None:
    root = tmp_path / "site"
    settings = {**SETTINGS, "locale": "de", "album_locales": {"Côte d'Azur & Paris": "fr"}}
    make_gallery(root, LAYOUTS["default"], tmp_path, settings)
    french = page_text(root, "Côte d'Azur & Paris/index.html")
    assert '<html lang="fr">' in french and "5 juillet 2024, 09:12" in french
    german = page_text(root, "100% #1 ?q/index.html")
    assert '<html lang="de">' in german
    assert '<html lang="de">' in page_text(root, INDEX)
    with pytest.raises(I2IError, match="not a known locale"):
        human_date(taken({"exif": EXIF}), "xx_QQ")
    with pytest.raises(I2IError, match=r"gallery.album_locales\['A'\]: 'zz' is not a known"):
        validate_config({"gallery": {"album_locales": {"A": "zz"}}})


def test_album_page_reads_like_an_album(tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path)
    text = page_text(root, "Côte d'Azur & Paris/index.html")
    assert "<title>Côte d&#x27;Azur &amp; Paris · Travels &lt;2024&gt;</title>" in text
    assert "Jane &amp; Co" in text
    assert "Morning &lt;coffee&gt;" in text, "the Photos title"
    assert "<h2>Chelsea</h2>" in text, "a tidied file name"
    assert "5 July 2024, 09:12" in text
    assert text.count("2024-07-05T09:12:30") == text.count('datetime="2024-07-05T09:12:30')
    visible = shown(text)
    assert visible.count("Paris, France") == 2, "the place once per photo, not the caption too"
    assert "i2i © 2024" not in text, "a template caption repeats the place: not shown"
    assert "Chelsea 4 July 2024, 09:12 · Paris, France FUJIFILM X-T4" in visible
    assert "FUJIFILM X-T4 · XF23mmF1.4 R" in text
    assert text.count('class="original"') == 2, "the original beside the styles"
    assert text.index("<h2>Chelsea</h2>") < text.index("Morning &lt;coffee&gt;"), "by date"
    srcsets = re.findall(r' srcset="([^"]+)"', text)
    assert srcsets and all(len(s.split(",")) >= 2 for s in srcsets), "at least two sizes"
    assert "http" not in text.replace("http-equiv", "")
    index = page_text(root, INDEX)
    assert "<h1>Travels &lt;2024&gt;</h1>" in index and "Jane &amp; Co" in index
    assert "Côte d&#x27;Azur &amp; Paris" in index


def footer(text: str) -> str:
    start = text.index('<footer class="site-footer">')
    return shown(text[start : text.index("</footer>", start)])


@pytest.mark.parametrize(
    ("watermark", "album", "index"),
    [
        ({"brand": "i2i"}, "Made with i2i", "Made with i2i"),
        (
            {"brand": "i2i", "artist": "Jane Doe"},
            "© 2024 Jane Doe · Made with i2i",
            "© Jane Doe · Made with i2i",
        ),
        (
            {"brand": "i2i", "artist": "Jane Doe", "copyright": "© {year} {artist}, {brand}"},
            "© 2024 Jane Doe, i2i · Made with i2i",
            "© Jane Doe, i2i · Made with i2i",
        ),
    ],
)
def test_the_footer_credits_the_artist_not_the_brand(
    tmp_path: Path, watermark: dict, album: str, index: str
) -> None:
    """The footer says what the published images' EXIF Copyright says (watermark.artist,
    watermark.copyright), never "© i2i" for the brand."""
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path, gallery_settings({"watermark": watermark}))
    assert footer(page_text(root, "Côte d'Azur & Paris/index.html")) == album
    assert footer(page_text(root, INDEX)) == index
    assert "© i2i" not in page_text(root, INDEX)


def test_credit_lines_follow_each_photos_own_copyright() -> None:
    """Without watermark settings each photo's own EXIF credits count; a notice that differs
    only by year is one line with a span."""
    photos = [
        {"exif": {"date_taken": "2015-05-01T10:00:00", "artist": "Ann"}},
        {"exif": {"date_taken": "2024-05-01T10:00:00", "artist": "Ann"}},
        {"exif": {"copyright": "CC BY 4.0 Bob"}},
        {"exif": {}},
    ]
    settings = {"brand": "i2i", "artist": "", "copyright": ""}
    assert credit_lines(photos, settings) == ["© 2015–2024 Ann", "CC BY 4.0 Bob"]
    assert credit_lines([], settings) == []
    assert merged_notices(["© 2024 Ann", "© 2024 Ann", "© 1999–2003 Bob"]) == [
        "© 2024 Ann",
        "© 1999–2003 Bob",
    ]


def test_portrait_and_undated_photos(tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path)
    text = page_text(root, "100% #1 ?q/index.html")
    assert "<h2>Deep field</h2>" in text
    assert "<time" not in text and 'class="camera"' not in text and 'class="meta"' not in text
    assert 'width="267" height="400"' in text, "the 400 px copy keeps the portrait's shape"


def mean(path: Path) -> tuple[int, ...]:
    with Image.open(path) as image:
        small = image.convert("RGB").resize((1, 1), Image.Resampling.BOX)
        return small.getpixel((0, 0))


def cover_of(root: Path, album: str) -> Path:
    keys = planned_keys(
        [{"album": a, "photo": p} for a, names in ALBUMS.items() for p in names],
        STYLES,
        {"target": f"file://{root}", "key_template": LAYOUTS["default"]},
    )
    return root / cover_key(keys[album][1][0], COVER_SIZES[0][0])


def close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 6 for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("covers", "album", "expected"),
    [
        ({}, "Côte d'Azur & Paris", colour(0, 4)),  # the favourite (chelsea)'s original
        ({}, "100% #1 ?q", colour(1, 3)),  # the first photo's original
        ({"Côte d'Azur & Paris": "café crème"}, "Côte d'Azur & Paris", colour(0, 3)),
        ({"Côte d'Azur & Paris": "café crème/pencil_sketch"}, "Côte d'Azur & Paris", colour(0, 2)),
        ({"Côte d'Azur & Paris": "nobody"}, "Côte d'Azur & Paris", colour(0, 4)),
    ],
)
def test_covers(tmp_path: Path, covers: dict, album: str, expected: tuple) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path, {**SETTINGS, "covers": covers})
    cover = cover_of(root, album)
    box = COVER_SIZES[0]
    with Image.open(cover) as image:
        width, height = image.size
    assert (width, height) == ((213, 320) if album == "100% #1 ?q" else box), "fitted, not cut"
    assert close(mean(cover), expected), (mean(cover), expected)
    assert urllib.parse.quote(cover.relative_to(root).as_posix()) in page_text(root, INDEX)


def test_the_index_needs_only_the_inventory(tmp_path: Path) -> None:
    """The index built from the inventory alone names the covers and pages the album builds
    write, and it is the same page that a build from the catalog gives."""
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["deep"], tmp_path)
    whole = page_text(root, INDEX)
    inventory = [{"album": a, "photo": p} for a, names in ALBUMS.items() for p in names]
    publish_settings = {"target": f"file://{root}", "key_template": LAYOUTS["deep"]}
    (root / INDEX).unlink()
    build_index(planned_keys(inventory, STYLES, publish_settings), root, SETTINGS)
    assert page_text(root, INDEX) == whole


def test_builds_are_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "site", tmp_path / "b" / "site"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    make_gallery(first, LAYOUTS["default"], tmp_path / "a")
    make_gallery(second, LAYOUTS["default"], tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*.webp")}
    make_gallery(first, LAYOUTS["default"], tmp_path / "a")
    touched = [p for p, t in stamps.items() if p.stat().st_mtime_ns != t]
    assert all(DERIVED_DIR not in p.parts for p in touched), "unchanged copies stay"


def test_album_build_lists_what_it_wrote(tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path)
    album = "100% #1 ?q"
    entries = []
    for photo in ALBUMS[album]:
        keys = {s: f"{album}/{photo}_{s}.webp" for s in STYLES}
        entries.append(
            {"album": album, "photo": photo, "styles": {s: {"key": k} for s, k in keys.items()}}
        )
    built = build_album({"album": album, "photos": entries, "styles": STYLES}, root)
    assert built["pages"] == [f"{album}/index.html"]
    assert all((root / key).is_file() for key in built["assets"])
    assert album_keys(entries)[0] == f"{album}/deep_field_oil_paint.webp"


# ---------------------------------------------------------------------------------------------
# Headless Chromium


def keep(shot: Path) -> None:
    """Keep a screenshot as a test artefact (tests/artefacts/ is ignored by git)."""
    ARTEFACTS.mkdir(exist_ok=True)
    shutil.copy2(shot, ARTEFACTS / shot.name)


def capture(browser: DevTools, shot: Path, *, whole: bool = False) -> None:
    params: dict = {"format": "png"}
    if whole:
        browser.evaluate(
            "document.querySelectorAll('img').forEach(img => { img.loading = 'eager'; })"
        )
        browser.evaluate(LOAD_ALL_IMAGES)
        browser.evaluate("window.scrollTo(0, 0)")
        width = browser.evaluate("window.innerWidth")
        height = min(browser.evaluate("document.documentElement.scrollHeight"), 6000)
        params.update(
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
    shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", **params)["data"]))
    assert shot.stat().st_size > 1000
    keep(shot)


def viewport(browser: DevTools, width: int) -> None:
    if width == 1280:
        browser.call("Emulation.clearDeviceMetricsOverride")
        browser.call("Emulation.setTouchEmulationEnabled", enabled=False)
    else:
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        browser.call("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)


VIEWER = """(async () => {
  const viewer = document.getElementById("viewer");
  const img = viewer.querySelector(".v-stage img");
  if (img && !img.complete) await new Promise(done => { img.onload = img.onerror = done; });
  if (img) { try { await img.decode(); } catch (e) {} }
  return {open: !viewer.hidden, count: viewer.querySelector(".v-count").textContent,
          hash: decodeURIComponent(location.hash.slice(1)),
          width: img ? img.naturalWidth : 0, src: img ? img.currentSrc : "",
          title: viewer.querySelector(".v-title").textContent};
})()"""


def key(browser: DevTools, name: str, code: int) -> None:
    for kind in ("rawKeyDown", "keyUp"):
        browser.call(
            "Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=code
        )


def swipe(browser: DevTools, dx: int) -> None:
    y = browser.evaluate("innerHeight / 2")
    x = browser.evaluate("innerWidth / 2")
    browser.call("Input.dispatchTouchEvent", type="touchStart", touchPoints=[{"x": x, "y": y}])
    browser.call(
        "Input.dispatchTouchEvent", type="touchMove", touchPoints=[{"x": x + dx / 2, "y": y}]
    )
    browser.call("Input.dispatchTouchEvent", type="touchMove", touchPoints=[{"x": x + dx, "y": y}])
    browser.call("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_gallery_renders_in_chromium(browser: DevTools, tmp_path: Path, layout: str) -> None:
    root = tmp_path / "site with space"
    make_gallery(root, LAYOUTS[layout], tmp_path)
    index_url = (root / INDEX).as_uri()
    images = open_page(browser, index_url, tmp_path / "index.png")
    assert len(images) == len(ALBUMS)
    assert all(width > 0 for _, width in images), images
    assert problems(browser) == []
    albums = browser.evaluate("[...document.querySelectorAll('.album a')].map(a => a.href)")
    assert len(albums) == len(ALBUMS)
    for number, album_url in enumerate(albums):
        images = open_page(browser, album_url, tmp_path / f"album-{number}.png")
        album = browser.evaluate("document.querySelector('h1').textContent")
        assert len(images) == (len(STYLES) + 1) * len(ALBUMS[album])
        assert all(width > 0 for _, width in images), images
        assert problems(browser) == []
        assert browser.evaluate("document.querySelector('a.back').href") == index_url
        full = browser.evaluate("[...document.querySelectorAll('a[data-v]')].map(a => a.href)")
        for url in full:
            assert Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).is_file()
    assert (tmp_path / "index.png").stat().st_size > 1000


def test_viewer_walks_a_whole_album_by_keyboard(browser: DevTools, tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path)
    page = (root / "Côte d'Azur & Paris" / INDEX).as_uri()
    open_page(browser, page, tmp_path / "album.png")
    ids = browser.evaluate("[...document.querySelectorAll('a[data-v]')].map(a => a.id)")
    assert len(ids) == (len(STYLES) + 1) * 2 == len(set(ids))
    browser.evaluate("document.querySelector('a[data-v]').click()")
    seen = [browser.evaluate(VIEWER)]
    for _ in ids[1:]:
        key(browser, "ArrowRight", 39)
        seen.append(browser.evaluate(VIEWER))
    key(browser, "ArrowRight", 39)  # at the end it stays
    seen.append(browser.evaluate(VIEWER))
    assert [s["hash"] for s in seen] == [*ids, ids[-1]]
    assert [s["count"] for s in seen] == [f"{n} / {len(ids)}" for n in range(1, len(ids) + 1)] + [
        f"{len(ids)} / {len(ids)}"
    ]
    assert all(s["open"] and s["width"] > 0 for s in seen), seen
    assert len({s["src"] for s in seen}) == len(ids)
    assert seen[0]["title"] == "Chelsea — Original"
    key(browser, "ArrowLeft", 37)
    assert browser.evaluate(VIEWER)["hash"] == ids[-2]
    key(browser, "Escape", 27)
    closed = browser.evaluate(VIEWER)
    assert not closed["open"] and closed["hash"] == ""
    assert browser.evaluate("document.activeElement.id") == ids[-2], "focus back on its tile"
    browser.evaluate(f"document.getElementById({ids[3]!r}).click()")
    assert browser.evaluate(VIEWER)["hash"] == ids[3]
    browser.evaluate("document.querySelector('.v-back').click()")
    assert not browser.evaluate(VIEWER)["open"], "the link back closes the viewer"
    assert problems(browser) == []


def test_a_link_to_an_image_opens_the_viewer(browser: DevTools, tmp_path: Path) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["deep"], tmp_path)
    page = root / "site" / "v1" / "100% #1 ?q" / INDEX
    browser.events.clear()
    browser.call("Page.navigate", url=page.as_uri() + "#deep-field--pencil-sketch")
    browser.wait_for("Page.loadEventFired")
    state = browser.evaluate(VIEWER)
    assert state["open"] and state["count"] == "3 / 3" and state["width"] > 0
    key(browser, "Escape", 27)
    assert not browser.evaluate(VIEWER)["open"]
    assert problems(browser) == []


@pytest.mark.parametrize("width", [390, 1280])
def test_screenshots_at_phone_and_desktop_widths(
    browser: DevTools, tmp_path: Path, width: int
) -> None:
    root = tmp_path / "site"
    make_gallery(root, LAYOUTS["default"], tmp_path)
    viewport(browser, width)
    try:
        for name, page in (
            ("index", root / INDEX),
            ("album", root / "Côte d'Azur & Paris" / INDEX),
        ):
            browser.events.clear()
            browser.call("Page.navigate", url=page.as_uri())
            browser.wait_for("Page.loadEventFired")
            images = browser.evaluate(LOAD_ALL_IMAGES)
            assert all(w > 0 for _, w in images), images
            browser.evaluate("window.scrollTo(0, 0)")
            assert browser.evaluate("document.documentElement.scrollWidth") <= width, (
                "nothing scrolls sideways"
            )
            smallest = browser.evaluate(
                "Math.min(...[...document.querySelectorAll('body *')]"
                ".filter(e => e.childNodes.length && [...e.childNodes].some("
                "n => n.nodeType === 3 && n.textContent.trim()))"
                ".map(e => parseFloat(getComputedStyle(e).fontSize)))"
            )
            assert smallest >= 12, "readable text"
            capture(browser, tmp_path / f"gallery-{name}-{width}.png", whole=True)
            assert problems(browser) == []
        browser.evaluate("document.querySelector('a[data-v]').click()")
        assert browser.evaluate(VIEWER)["width"] > 0
        if width == 390:
            swipe(browser, -150)
            assert browser.evaluate(VIEWER)["count"] == f"2 / {(len(STYLES) + 1) * 2}"
            swipe(browser, 150)
            assert browser.evaluate(VIEWER)["count"] == f"1 / {(len(STYLES) + 1) * 2}"
        key(browser, "ArrowRight", 39)
        state = browser.evaluate(VIEWER)
        box = browser.evaluate(
            "(() => { const r = document.querySelector('.v-stage img').getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight]; })()"
        )
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= box[4] and box[3] <= box[5], box
        assert state["width"] > 0
        capture(browser, tmp_path / f"gallery-viewer-{width}.png")
        assert problems(browser) == []
    finally:
        viewport(browser, 1280)


# ---------------------------------------------------------------------------------------------
# Thumbnails keep the whole image, and so the watermark caption

CAPTION = "i2i © 2024 Kennedy Space Center, Cape Canaveral, United States"
SHAPES = {"launch": (1200, 800), "tower": (600, 900), "shore": (1500, 500)}

# Per image on the page: the part of the whole image that shows, in fractions of its width
# and height (from its box, its object-fit and the box of the link that clips it).
VISIBLE = """[...document.querySelectorAll('.frame img, .cover img')].map(img => {
  const box = img.getBoundingClientRect();
  const clip = img.parentElement.getBoundingClientRect();
  const style = getComputedStyle(img);
  let w = box.width, h = box.height;
  if (style.objectFit === "contain" || style.objectFit === "cover") {
    const pick = style.objectFit === "contain" ? Math.min : Math.max;
    const scale = pick(box.width / img.naturalWidth, box.height / img.naturalHeight);
    w = img.naturalWidth * scale; h = img.naturalHeight * scale;
  }
  const x = box.left + (box.width - w) / 2, y = box.top + (box.height - h) / 2;
  const link = img.closest("a");
  return {full: "v" in link.dataset ? link.href : "", fit: style.objectFit,
          position: style.objectPosition, transform: style.transform,
          left: (Math.max(x, box.left, clip.left) - x) / w,
          top: (Math.max(y, box.top, clip.top) - y) / h,
          right: (Math.min(x + w, box.right, clip.right) - x) / w,
          bottom: (Math.min(y + h, box.bottom, clip.bottom) - y) / h};
})"""


def textured(size: tuple[int, int], shade: int) -> Image.Image:
    """Smooth gradients, so the watermark picks its colours as on a photo."""
    down = Image.linear_gradient("L").resize(size)
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    return Image.merge("RGB", (down, across, Image.new("L", size, 60 * shade)))


def make_watermarked_gallery(root: Path, tmp: Path) -> dict[str, tuple[float, ...]]:
    """A landscape, a portrait and a panorama, each style watermarked with :data:`CAPTION` as
    the watermark stage draws it; return each published key's caption box in fractions."""
    from i2i.stages.watermark import draw_watermark, plan_watermark

    target = {"target": f"file://{root}", "key_template": LAYOUTS["default"]}
    album = "Space Coast"
    photos, originals, captions = [], {}, {}
    for photo, size in SHAPES.items():
        styles = {}
        for shade, style in enumerate(STYLES):
            image = textured(size, shade + 1)
            box = plan_watermark(image, CAPTION, {}).box
            source = tmp / f"{photo}-{style}.webp"
            draw_watermark(image, CAPTION, {}).save(source, "WEBP", quality=90)
            styles[style] = publish(source, album, photo, style, target)
            width, height = size
            captions[styles[style]["key"]] = (
                box[0] / width,
                box[1] / height,
                box[2] / width,
                box[3] / height,
            )
        original = tmp / f"{photo}-original.webp"
        textured(size, 3).save(original, "WEBP")
        originals[album, photo] = original
        photos.append(
            {
                "album": album,
                "photo": photo,
                "styles": styles,
                "exif": {},
                "watermark_text": CAPTION,
            }
        )
    build_gallery({"photos": photos, "styles": STYLES}, root, originals, SETTINGS)
    return captions


def test_gallery_copies_are_whole_images(tmp_path: Path) -> None:
    """Every smaller copy and cover has the shape of the image it comes from: nothing cut."""
    root = tmp_path / "site"
    make_watermarked_gallery(root, tmp_path)
    shapes = {name: w / h for name, (w, h) in SHAPES.items()}
    copies = [p for p in root.rglob("*.webp") if DERIVED_DIR in p.parts]
    assert len(copies) > 3 * len(SHAPES)
    for copy in copies:
        with Image.open(copy) as image:
            width, height = image.size
        name = next(n for n in SHAPES if copy.name.startswith(n))
        assert abs(width / height - shapes[name]) < 2 / min(width, height), (copy, image.size)
        if ".cover-" in copy.name:
            assert (width, height) in {(w, round(w / shapes[name])) for w, _ in COVER_SIZES} | {
                (round(h * shapes[name]), h) for _, h in COVER_SIZES
            }, (copy, image.size)


@pytest.mark.parametrize("width", [390, 1280])
def test_every_thumbnail_shows_the_whole_caption(
    browser: DevTools, tmp_path: Path, width: int
) -> None:
    """The watermark caption (where the watermark stage draws it) is inside every image the
    album page and the index show, at phone and desktop widths: no tile or cover crops."""
    root = tmp_path / "site"
    captions = make_watermarked_gallery(root, tmp_path)
    viewport(browser, width)
    try:
        for name, page in (("album", root / "Space Coast" / INDEX), ("index", root / INDEX)):
            browser.events.clear()
            browser.call("Page.navigate", url=page.as_uri())
            browser.wait_for("Page.loadEventFired")
            assert all(w > 0 for _, w in browser.evaluate(LOAD_ALL_IMAGES))
            browser.evaluate("window.scrollTo(0, 0)")
            shown_parts = browser.evaluate(VISIBLE)
            assert len(shown_parts) == ((len(STYLES) + 1) * len(SHAPES) if name == "album" else 1)
            checked = 0
            for part in shown_parts:
                assert part["transform"] == "none" and part["position"] == "50% 50%", part
                key = urllib.parse.unquote(urllib.parse.urlsplit(part["full"]).path)
                key = (
                    Path(urllib.request.url2pathname(key)).relative_to(root).as_posix()
                    if key
                    else ""
                )
                left, top, right, bottom = captions.get(key, (0.0, 0.0, 1.0, 1.0))
                slack = 0.002
                assert part["left"] <= left + slack and part["top"] <= top + slack, (key, part)
                assert part["right"] >= right - slack and part["bottom"] >= bottom - slack, (
                    key,
                    part,
                )
                checked += key in captions
            if name == "album":
                assert checked == len(captions) == len(STYLES) * len(SHAPES)
            capture(browser, tmp_path / f"gallery-caption-{name}-{width}.png", whole=True)
            assert problems(browser) == []
    finally:
        viewport(browser, 1280)


ROWS = """[...document.querySelectorAll('.tiles')].map(list => {
  const box = list.getBoundingClientRect();
  const rows = new Map();
  for (const tile of list.querySelectorAll(':scope > li img')) {
    const r = tile.getBoundingClientRect();
    const key = Math.round(r.top);
    if (!rows.has(key)) rows.set(key, []);
    rows.get(key).push([r.left, r.right, r.height]);
  }
  return {left: box.left, right: box.right, gap: parseFloat(getComputedStyle(list).columnGap),
          rows: [...rows.values()]};
})"""


@pytest.mark.parametrize("width", [390, 1280])
def test_portrait_and_landscape_photos_tile_without_empty_blocks(
    browser: DevTools, tmp_path: Path, width: int
) -> None:
    """A landscape, a portrait and a panorama with their styles: every row of tiles spans the
    page's width and its images are equally tall, at phone and desktop widths (screenshots
    gallery-layout-390.png and gallery-layout-1280.png in tests/artefacts)."""
    root = tmp_path / "site"
    make_watermarked_gallery(root, tmp_path)
    viewport(browser, width)
    try:
        open_page(browser, (root / "Space Coast" / INDEX).as_uri(), tmp_path / "top.png")
        lists = browser.evaluate(ROWS)
        assert len(lists) == len(SHAPES)
        for found in lists:
            assert sum(len(row) for row in found["rows"]) == len(STYLES) + 1
            for row in found["rows"]:
                row.sort()
                assert (
                    abs(row[0][0] - found["left"]) < 1.5 and abs(row[-1][1] - found["right"]) < 1.5
                )
                for (_, right, _), (left, _, _) in itertools.pairwise(row):
                    assert abs(left - right - found["gap"]) < 1.5, row
                assert max(h for *_, h in row) - min(h for *_, h in row) < 2, row
        capture(browser, tmp_path / f"gallery-layout-{width}.png", whole=True)
        assert problems(browser) == []
    finally:
        viewport(browser, 1280)


def test_justified_rows_keep_heights_near_the_target() -> None:
    assert justified_rows([1.5, 1.5, 1.5], *DESKTOP) == [3]
    assert justified_rows([1.5, 1.5, 1.5], *PHONE) == [1, 2]
    assert justified_rows([3.0, 3.0, 3.0], *DESKTOP) == [1, 2]
    assert justified_rows([0.667, 1.5, 1.5], *DESKTOP) == [3]
    assert justified_rows([], *PHONE) == []


# ---------------------------------------------------------------------------------------------
# Hostile names (issue 26 item 4, the gallery's part)

XSS = '"><img src=x onerror=alert(1)>'
SCRIPT = "<script>alert(2)</script>"
RLO = "\u202e"
# Album and photo names are single safe path components (the inventory sets others aside);
# titles, places, keywords, captions and settings are any text.
HOSTILE_ALBUMS = {
    XSS: [f"<svg onload=alert(3)> it's {RLO}gnp.exe", "x..y"],
    f'Tom\'s "quoted" \u200f\u05e9\u05dc\u05d5\u05dd{RLO}evil <b>': ["<script>alert(4)"],
}
HOSTILE_TEXT = f"{SCRIPT} {XSS} ../../etc/passwd a/b\\c \x07bell\x1b[31m {RLO}txt.exe"
HOSTILE_SETTINGS = {
    "title": f"<title>{SCRIPT}",
    "brand": XSS,
    "covers": {},
    "credits": {"brand": XSS, "artist": HOSTILE_TEXT, "copyright": ""},
}
NO_DIALOGS = """for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = (...args) => { (window.__dialogs = window.__dialogs || []).push(name); };
}"""


def make_hostile_gallery(root: Path, tmp: Path, template: str, prefix: str = "") -> list[str]:
    target = {"target": f"file://{root}", "key_template": template}
    photos, originals = [], {}
    for number, (album, names) in enumerate(HOSTILE_ALBUMS.items()):
        for index, photo in enumerate(names):
            assert is_safe_name(album) and is_safe_name(photo)
            styles = {}
            for shade, style in enumerate(STYLES):
                source = tmp / f"h{number}-{index}-{style}.webp"
                Image.new("RGB", (96, 64), colour(number, shade + 1)).save(source, "WEBP")
                styles[style] = publish(source, album, photo, style, target)
            original = tmp / f"h{number}-{index}-original.webp"
            Image.new("RGB", (96, 64), colour(number, 3)).save(original, "WEBP")
            originals[album, photo] = original
            photos.append(
                {
                    "album": album,
                    "photo": photo,
                    "styles": styles,
                    "title": f"{HOSTILE_TEXT} {index}" if index else None,
                    "keywords": [SCRIPT, XSS, "../.."],
                    "titles": {"xmp": HOSTILE_TEXT},
                    "location_formatted": f"{XSS} / ../ {RLO}",
                    "watermark_text": HOSTILE_TEXT,
                    "caption_source": "llm",
                    "exif": {"date_taken": "2024-07-05T09:12:30", "make": SCRIPT, "model": XSS},
                }
            )
    catalog = {"photos": photos, "styles": STYLES}
    return build_gallery(catalog, root, originals, HOSTILE_SETTINGS, prefix)


def written_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("layout", ["default", "flat"])
def test_hostile_names_stay_text_and_inside_the_gallery(
    browser: DevTools, tmp_path: Path, layout: str
) -> None:
    """Album, photo, title, place, keyword, caption and credit strings with markup, quotes,
    ``..``, slashes, control characters and right-to-left marks: in Chromium no script runs (no
    dialog, no console error, no injected element), the text shows as written (control
    characters and bidi overrides dropped, right-to-left marks kept), every link resolves to a
    file inside the gallery's folder and its URL gives back its key."""
    root = tmp_path / "site"
    pages = make_hostile_gallery(root, tmp_path, LAYOUTS[layout])
    files = written_files(root)
    for key in files:
        assert (root / key).resolve().is_relative_to(root.resolve()), key
        assert "\x07" not in key and "\x1b" not in key
    for page in pages:
        text = page_text(root, page)
        assert "<script>alert" not in text and "<img src=x" not in text and "<svg" not in text
        assert "\x07" not in text and "\x1b" not in text
        parser = Links()
        parser.feed(text)
        for url in parser.urls:
            if url.startswith(("data:", "#")):
                continue
            resolved = posixpath.normpath(
                posixpath.join(posixpath.dirname(page), urllib.parse.unquote(url))
            )
            assert resolved in files, (page, url)
            assert relative_url(resolved, page) == url, "keys and URLs round-trip"
    script = browser.call("Page.addScriptToEvaluateOnNewDocument", source=NO_DIALOGS)
    try:
        for page in pages:
            for hash_ in ("#" + urllib.parse.quote(XSS), ""):  # a same-page hash loads nothing
                open_page(browser, (root / page).as_uri() + hash_, tmp_path / "hostile.png")
                state = browser.evaluate(
                    "({dialogs: window.__dialogs || [], scripts: document.scripts.length,"
                    ' injected: document.querySelectorAll(\'svg, img[src="x"], b, title ~ title,'
                    " body script:not(:last-of-type)').length,"
                    " text: document.body.innerText, title: document.title})"
                )
                assert state["dialogs"] == [] and state["injected"] == 0, (page, state)
                assert state["scripts"] == (0 if page.endswith(INDEX) and "/" not in page else 1)
                assert XSS in state["text"], "markup shows as text"
                assert RLO not in state["text"] + state["title"], "no bidi override"
                assert state["title"].endswith(f"<title>{SCRIPT}")
                if page != INDEX:
                    assert SCRIPT in state["text"] and "bell[31m" in state["text"]
                    assert "txt.exe" in state["text"], "an override dropped, the text in order"
                    browser.evaluate("document.querySelector('a[data-v]').click()")
                    assert XSS in browser.evaluate(VIEWER)["title"]
                assert not [e for e in browser.events if "Dialog" in e.get("method", "")]
                assert problems(browser) == []
        capture(browser, tmp_path / f"gallery-hostile-{layout}.png", whole=True)
    finally:
        browser.call("Page.removeScriptToEvaluateOnNewDocument", identifier=script["identifier"])


def test_hostile_keys_round_trip_through_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hostile gallery uploaded to an S3 prefix (moto): the bucket holds exactly the keys
    built, all under the prefix, each page's links name objects there, and each object's URL
    gives back its key."""
    moto_server = pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    import boto3

    from i2i.stages.gallery.upload import upload_site
    from i2i.targets import target_for
    from i2i.targets.s3 import clear_s3_clients

    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAI2ITEST",
        "AWS_SECRET_ACCESS_KEY": "i2i-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    clear_s3_clients()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
        s3.create_bucket(Bucket="gallery")
        root = tmp_path / "staging"
        make_hostile_gallery(root, tmp_path, "site/v1/{album}/{photo}_{style}.webp", "site/v1")
        files = written_files(root)
        publish_settings = {"target": "s3://gallery/site/v1", "endpoint_url": url}
        assert sorted(upload_site(root, files, publish_settings)) == files
        listed = s3.list_objects_v2(Bucket="gallery")
        keys = sorted(item["Key"] for item in listed["Contents"])
        assert keys == files and all(key.startswith("site/v1/") for key in keys)
        target = target_for(publish_settings["target"], publish_settings)
        for key in keys:
            link = urllib.parse.urlsplit(target.link(key))
            assert urllib.parse.unquote(link.path) == f"/gallery/{key}"
            if key.endswith(".html"):
                body = s3.get_object(Bucket="gallery", Key=key)["Body"].read().decode("utf-8")
                parser = Links()
                parser.feed(body)
                for url_ in parser.urls:
                    if not url_.startswith(("data:", "#")):
                        linked = posixpath.join(posixpath.dirname(key), urllib.parse.unquote(url_))
                        assert posixpath.normpath(linked) in keys, (key, url_)
    finally:
        clear_s3_clients()
        server.stop()


def test_shown_text_drops_controls_and_overrides_keeps_marks() -> None:
    assert shown_text("a\x07b\x1b[1m\x9bc\td\ne") == "ab[1mc d e"
    assert shown_text("\u202egnp.exe\u202c") == "gnp.exe"
    assert shown_text("\u200f\u05e9\u05dc\u05d5\u05dd \u2067x\u2069") == (
        "\u200f\u05e9\u05dc\u05d5\u05dd \u2067x\u2069"
    )


def test_a_catalog_cannot_make_the_gallery_write_outside(tmp_path: Path) -> None:
    """A catalog key that climbs (``..``), is absolute or leaves the target's prefix fails
    the build before anything is written; a photo name that is no safe name gets a digest."""
    root = tmp_path / "site"
    root.mkdir()
    image = tmp_path / "i.webp"
    Image.new("RGB", (8, 8)).save(image, "WEBP")
    for key, prefix in (
        ("a/../../outside.webp", ""),
        ("/etc/outside.webp", ""),
        ("a/\x00.webp", ""),
        ("other/a.webp", "site/v1"),
        ("site/v1/../a.webp", "site/v1"),
    ):
        entry = {"album": "A", "photo": "p", "styles": {"ink": {"key": key}}, "exif": {}}
        catalog = {"album": "A", "photos": [entry], "styles": ["ink"]}
        with pytest.raises(I2IError, match="would be outside"):
            build_album(catalog, root, {"p": image}, prefix=prefix)
    assert written_files(tmp_path) == ["i.webp"]
    assert original_key("A/p_ink.webp", "../../x").startswith("A/_gallery/photo-")
    assert original_key("A/p_ink.webp", "p q") == "A/_gallery/p q.original.webp"


# ---------------------------------------------------------------------------------------------
# The gallery rules in the workflow


@pytest.mark.workflow
def test_gallery_rules_rerun_for_their_settings_and_templates(tmp_path: Path) -> None:
    """Covers rerun one album's page, the title every page, a template edit the gallery
    alone; the pages link the original and the covers of every album."""
    workdir = copy_workflow(tmp_path / "workflow")
    styles = ("--config", "styles=[cartoon,oil_paint]")
    snakemake(workdir, *styles)
    site = workdir / "results" / "gallery"
    index = (site / INDEX).read_text(encoding="utf-8")
    for album in ("Space Coast", "Côte d'Azur & Paris"):
        page = (site / album / INDEX).read_text(encoding="utf-8")
        assert page.count('class="original"') == 3
        assert "_gallery/" in page
    covers = re.findall(r'<img src="([^"]+)"', index)
    assert len(covers) == 2
    assert all((site / urllib.parse.unquote(c)).is_file() for c in covers)

    changed = workdir / "covers.yaml"
    changed.write_text(
        yaml.safe_dump({"gallery": {"covers": {"Space Coast": "deep_field"}}}), encoding="utf-8"
    )
    assert planned(workdir, *styles, "--configfile", str(changed)) == {"gallery_album": 1}
    title = workdir / "title.yaml"
    title.write_text(yaml.safe_dump({"gallery": {"title": "Trips"}}), encoding="utf-8")
    assert planned(workdir, *styles, "--configfile", str(title)) == {
        "gallery_album": 2,
        "gallery": 1,
    }
    css = workdir / "i2i" / "templates" / "gallery.css"
    css.write_text(css.read_text(encoding="utf-8") + "\n.x { color: red; }\n", encoding="utf-8")
    assert planned(workdir, *styles) == {"gallery_album": 2, "gallery": 1}
