"""The file:// gallery: links right for any key depth, no external assets, and every image
decodes in a real headless Chromium (DevTools protocol over a websocket)."""

from __future__ import annotations

import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from i2i.gallery import ALBUM_DIR, INDEX, build_gallery, relative_href
from i2i.publish import publish

from chromium import DevTools, open_page, problems

STYLES = ["oil_paint", "pencil_sketch"]
ALBUMS = {"Côte d'Azur & Paris": ["café crème", "chelsea"], "100% #1 ?q": ["deep_field"]}
LAYOUTS = {
    "default": "{prefix}/{album}/{photo}_{style}.webp",
    "deep": "site/v1/{album}/{style}/{photo}.webp",
    "flat": "{photo}_{style}.webp",
}


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in {"href", "src"} and v is not None]


def make_gallery(root: Path, template: str, tmp: Path) -> list[str]:
    """Publish synthetic images with ``template`` into ``root`` and build the gallery."""
    settings = {"target": f"file://{root}", "key_template": template}
    photos = []
    for number, (album, names) in enumerate(ALBUMS.items()):
        for photo in names:
            styles = {}
            for shade, style in enumerate(STYLES):
                source = tmp / f"{number}-{photo}-{style}.webp"
                colour = (40 * shade + 60, 90, 200 - 30 * number)
                Image.new("RGB", (480, 320), colour).save(source, "WEBP")
                styles[style] = publish(source, album, photo, style, settings)
            photos.append(
                {
                    "album": album,
                    "photo": photo,
                    "styles": styles,
                    "watermark_text": f"i2i © 2024 {photo}",
                    "location_formatted": "Paris, France",
                    "exif": {"date_taken": "2024-07-05T09:12:30+02:00"},
                }
            )
    return build_gallery({"photos": photos, "styles": STYLES}, root)


@pytest.fixture(params=sorted(LAYOUTS))
def gallery(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "site with space"
    return root, make_gallery(root, LAYOUTS[request.param], tmp_path)


def test_every_link_resolves_locally(gallery: tuple[Path, list[str]]) -> None:
    root, pages = gallery
    assert INDEX in pages
    assert len(pages) == len(ALBUMS) + 1
    for page in pages:
        parser = Links()
        parser.feed((root / page).read_text(encoding="utf-8"))
        assert parser.urls
        for url in parser.urls:
            if url.startswith("data:"):
                continue
            parts = urllib.parse.urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page}: external URL {url}"
            target = (root / page).parent / urllib.parse.unquote(parts.path)
            assert target.is_file(), f"{page}: {url} does not resolve"
        if page != INDEX:
            assert f'href="{relative_href(INDEX, page)}"' in (root / page).read_text()


def test_albums_sharing_a_folder_get_their_own_pages(tmp_path: Path) -> None:
    pages = make_gallery(tmp_path / "site", LAYOUTS["flat"], tmp_path)
    assert sorted(pages) == sorted([INDEX, *(f"{ALBUM_DIR}/{a}.html" for a in ALBUMS)])


def test_relative_href_quotes_and_climbs() -> None:
    assert relative_href("index.html", "a/b/c/index.html") == "../../../index.html"
    assert relative_href("a/x #1.webp", "a/index.html") == "x%20%231.webp"
    assert relative_href("b/y.webp", "a/index.html") == "../b/y.webp"


@pytest.mark.parametrize("layout", ["default", "deep", "flat"])
def test_gallery_renders_in_chromium(browser: DevTools, tmp_path: Path, layout: str) -> None:
    root = tmp_path / "site with space"
    make_gallery(root, LAYOUTS[layout], tmp_path)
    index_url = (root / INDEX).as_uri()
    images = open_page(browser, index_url, tmp_path / "index.png")
    assert len(images) == len(ALBUMS)
    assert all(width > 0 for _, width in images), images
    assert problems(browser) == []
    albums = browser.evaluate("[...document.querySelectorAll('.card a')].map(a => a.href)")
    assert len(albums) == len(ALBUMS)
    for number, album_url in enumerate(albums):
        images = open_page(browser, album_url, tmp_path / f"album-{number}.png")
        assert len(images) == len(STYLES) * len(ALBUMS[browser.evaluate("document.title")])
        assert all(width > 0 for _, width in images), images
        assert problems(browser) == []
        assert browser.evaluate("document.querySelector('p a').href") == index_url
        full = browser.evaluate("[...document.querySelectorAll('figure a')].map(a => a.href)")
        for url in full:
            assert Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).is_file()
    assert (tmp_path / "index.png").stat().st_size > 1000
