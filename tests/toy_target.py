"""A toy publish target added from the test folder alone: ``toy://shelf/prefix``.

It keeps each object under ``$I2I_TOY_ROOT/shelf`` as its bytes (``data/<key>``) and a JSON
record (``meta/<key>.json``: size, sha256, headers, time), so every process of a Snakemake run
sees the same objects. It is not a local folder of the keys, so the gallery is uploaded to it
as to a bucket. :func:`install` makes it an ``i2i.targets`` entry point for the processes a
Snakemake run starts; ``register("toy", ToyTarget)`` does it in this process.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from i2i.core.files import read_json, write_bytes, write_json
from i2i.targets import Head, Headers, Spec, Target

ROOT_ENV = "I2I_TOY_ROOT"
SCHEME = "toy"


class ToyTarget(Target):
    """Objects as files plus a record each, under one shelf folder."""

    usage = "toy://shelf/prefix"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        shelf, _, prefix = spec.location.partition("/")
        self.shelf = shelf
        self.prefix = prefix.strip("/")
        self.root = Path(os.environ[ROOT_ENV], shelf)

    def data(self, key: str) -> Path:
        return self.root / "data" / key

    def meta(self, key: str) -> Path:
        return self.root / "meta" / f"{key}.json"

    def head(self, key: str) -> Head | None:
        try:
            record = read_json(self.meta(key))
        except FileNotFoundError:
            return None
        moment = dt.datetime.fromisoformat(record["time"])
        return Head(record["size"], record["sha256"], record["headers"], modified=moment)

    def put(self, source: Path, key: str, headers: Headers, digest: str) -> None:
        data = source.read_bytes()
        write_bytes(self.data(key), data)
        moment = dt.datetime.now(dt.UTC).isoformat()
        record = {"size": len(data), "sha256": digest, "headers": dict(headers), "time": moment}
        write_json(self.meta(key), record)

    def objects(self, start: str) -> Iterator[tuple[str, int]]:
        top = self.root / "data"
        for path in sorted(top.rglob("*")) if top.is_dir() else []:
            key = path.relative_to(top).as_posix()
            if path.is_file() and key.startswith(start):
                yield key, path.stat().st_size

    def read(self, key: str, limit: int) -> bytes | None:
        try:
            with self.data(key).open("rb") as handle:
                return handle.read(limit)
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.data(key).unlink(missing_ok=True)
        self.meta(key).unlink(missing_ok=True)

    def link(self, key: str) -> str:
        return f"{SCHEME}://{self.shelf}/{urllib.parse.quote(key)}"

    def where(self, key: str) -> str:
        return f"{SCHEME}://{self.shelf}/{key}"


def install(site: Path) -> Path:
    """An installed-distribution record under ``site`` whose ``i2i.targets`` entry point is
    this target; put ``site`` and this folder on ``PYTHONPATH``. Returns ``site``."""
    info = site / "toy_target-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-target\nVersion: 0\n")
    points = f"[i2i.targets]\n{SCHEME} = toy_target:ToyTarget\n"
    (info / "entry_points.txt").write_text(points)
    return site
