"""osxphotos template function: the album folders i2i planned for a photo.

osxphotos loads this file by its path (``--directory "{function:<this file>::album_folders}"``)
inside its own process; the plan (photo uuid → folders) is the JSON file named by the
``I2I_EXPORT_FOLDERS`` environment variable, written by
:func:`i2i.stages.library.apple_photos.export_library`.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

PLAN_VARIABLE = "I2I_EXPORT_FOLDERS"


@cache
def _plan() -> dict[str, list[str]]:
    return json.loads(Path(os.environ[PLAN_VARIABLE]).read_text(encoding="utf-8"))


def album_folders(photo: Any, options: Any = None, args: str | None = None, **kwargs: Any) -> list:
    """The folders (relative to the export folder) that ``photo`` is exported into."""
    return list(_plan().get(photo.uuid, []))
