"""Where a FLUX style's LoRA file is: its weight file name, pinned once, and the cached copy.

A registry entry on the hub names ``repo`` and, ideally, ``weight_name``. Without one, the name
is found once (the one ``.safetensors`` of the repo in the local Hugging Face cache, else in the
repo's file list on the hub) and pinned in ``cache/lora_weight_names.json`` of the workflow
folder; from then on the pin is used. A file in the local cache is loaded from there by path,
so a cached style makes no hub call at all (the hub may be unreachable). Light: no torch.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.core.files import read_json, write_json

PINS = Path("cache") / "lora_weight_names.json"
WEIGHT_SUFFIX = ".safetensors"


def hub_cache() -> Path:
    """The Hugging Face hub cache folder (HF_HUB_CACHE / HF_HOME as huggingface_hub reads)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def read_pins(pins: Path = PINS) -> dict[str, str]:
    try:
        value = read_json(pins)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def cached_weight_files(repo: str) -> list[str]:
    """The ``.safetensors`` files of ``repo``'s main revision in the local cache."""
    folder = hub_cache() / f"models--{repo.replace('/', '--')}"
    try:
        revision = (folder / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return []
    snapshot = folder / "snapshots" / revision
    return sorted(
        str(p.relative_to(snapshot)) for p in snapshot.rglob(f"*{WEIGHT_SUFFIX}") if p.is_file()
    )


def cached_file(repo: str, weight_name: str) -> str | None:
    """The local path of ``repo``'s ``weight_name`` when it is in the cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, weight_name, cache_dir=hub_cache())
    return found if isinstance(found, str) else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _only_one(files: list[str], repo: str, style_name: str, where: str) -> str | None:
    weights = [f for f in files if f.endswith(WEIGHT_SUFFIX)]
    if len(weights) > 1:
        raise I2IError(
            f"style {style_name}: LoRA repo {repo} has several weight files {where} "
            f"({', '.join(weights)}): name one as lora.weight_name in the style"
        )
    return weights[0] if weights else None


def weight_name(
    repo: str, lora: dict[str, Any], style_name: str, pins: Path = PINS
) -> tuple[str, str]:
    """The weight file of a hub LoRA and where its name came from (``registry``, ``pinned``,
    ``cache`` or ``hub``); a name found now is pinned."""
    if lora.get("weight_name"):
        return str(lora["weight_name"]), "registry"
    known = read_pins(pins)
    if repo in known:
        return known[repo], "pinned"
    found, origin = _only_one(cached_weight_files(repo), repo, style_name, "in the cache"), "cache"
    if found is None:
        if _offline():
            raise I2IError(
                f"style {style_name}: LoRA repo {repo} names no weight_name and is not in the "
                f"local Hugging Face cache (HF_HUB_OFFLINE is set): `hf download {repo}` first"
            )
        from huggingface_hub import HfApi

        files = HfApi().list_repo_files(repo)
        found, origin = _only_one(files, repo, style_name, "on the hub"), "hub"
        if found is None:
            raise I2IError(f"style {style_name}: LoRA repo {repo} has no .safetensors file")
    write_json(pins, {**read_pins(pins), repo: found})
    return found, origin


def rank_of(path: str | os.PathLike[str]) -> int | None:
    """The largest LoRA rank in a ``.safetensors`` file, read from its header alone (the first
    dimension of its ``lora_A`` / ``lora_down`` weights); None when it has none or is unreadable."""
    try:
        with Path(path).open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error):
        return None
    ranks = [
        int(entry["shape"][0])
        for key, entry in header.items()
        if isinstance(entry, dict) and ("lora_A" in key or "lora_down" in key) and entry["shape"]
    ]
    return max(ranks, default=None)


def local_lora_file(lora: Mapping[str, Any], pins: Path = PINS) -> Path | None:
    """A style's LoRA file on this machine, found without any hub call, or None."""
    if "path" in lora:
        return Path(str(lora["path"])).expanduser()
    repo = str(lora.get("repo", ""))
    name = lora.get("weight_name") or read_pins(pins).get(repo)
    if not name:
        files = cached_weight_files(repo)
        name = files[0] if len(files) == 1 else None
    found = cached_file(repo, str(name)) if name else None
    return Path(found) if found else None


def slot_rank(loras: Iterable[Mapping[str, Any]], pins: Path = PINS) -> int:
    """The largest rank among the LoRAs whose files are on this machine (0: none known; the
    compiled slot then takes the first LoRA's rank)."""
    ranks = []
    for lora in loras:
        path = local_lora_file(lora, pins)
        rank = rank_of(path) if path is not None else None
        if rank:
            ranks.append(rank)
    return max(ranks, default=0)
