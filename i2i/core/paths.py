"""Every file the workflow writes under ``results/``, as the pattern the rules declare.

The rules, ``i2i progress``, the publish audit and the scripts all take their paths from here,
so a layout change is one edit. Patterns use Snakemake's wildcards ``{album}``, ``{photo}``
and ``{style}``; :func:`path` fills them in.
"""

from __future__ import annotations

INVENTORY = "results/inventory.json"

METADATA = "results/metadata/{album}/{photo}.json"
PLACES = "results/places/{album}/{photo}.json"
CAPTIONS = "results/captions/{album}/{photo}.json"
PREPROCESSED = "results/preprocessed/{album}/{photo}.webp"
STYLED = "results/styled/{album}/{style}/{photo}.webp"
FINAL = "results/final/{album}/{style}/{photo}.webp"
PUBLISHED = "results/published/{album}/{style}/{photo}.json"

STYLE_CATALOG = "results/catalog/styles/{style}.json"
ALBUM_CATALOG = "results/catalog/albums/{album}.json"
MASTER_CATALOG = "results/catalog/master.json"
CONTACT_SHEET = "results/report/contact_sheets/{album}.jpg"
PROGRESS_REPORT = "results/report/progress.html"
GALLERY_ALBUM = "results/published/gallery/{album}.json"
GALLERY = "results/published/gallery.json"
PRUNED = "results/published/prune.json"
# Where the gallery pages are built before their upload when the target is not a folder.
GALLERY_STAGING = "results/gallery-site"

# Per-photo and per-image outputs in DAG order: what `i2i progress` counts, by stage.
PHOTO_STAGES = {
    "metadata": METADATA,
    "places": PLACES,
    "captions": CAPTIONS,
    "preprocess": PREPROCESSED,
}
STYLE_STAGES = {"stylize": STYLED, "watermark": FINAL, "publish": PUBLISHED}


def path(pattern: str, album: str, photo: str = "", style: str = "") -> str:
    """``pattern`` with its wildcards filled in."""
    return pattern.format(album=album, photo=photo, style=style)
