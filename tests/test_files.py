"""Atomic writes and safe names."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2i.core.files import atomic_path, is_safe_name, read_json, sha256_file, write_json


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out" / "image.webp"
    target.parent.mkdir()
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["image.webp"]
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".webp" and tmp.parent == target.parent
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["image.webp"]


def test_json_round_trip_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.json"
    write_json(path, {"b": 1, "a": "Côte ♋"})
    first = path.read_bytes()
    write_json(path, {"a": "Côte ♋", "b": 1})
    assert path.read_bytes() == first
    assert read_json(path) == {"a": "Côte ♋", "b": 1}
    assert "Côte ♋" in first.decode("utf-8")


def test_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Côte d'Azur & Paris", True),
        ("IMG_1.HEIC", True),
        ("..", False),
        ("a/b", False),
        (".hidden", False),
        ("", False),
        (" x", False),
        ("a\\b", False),
        ("{x}", False),
    ],
)
def test_is_safe_name(name: str, safe: bool) -> None:
    assert is_safe_name(name) is safe
