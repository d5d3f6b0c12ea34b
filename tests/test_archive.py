"""Archiving results: a verified zip first, removal only after."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path

import pytest

from i2i import I2IError
from i2i.stages import archive as archive_module
from i2i.stages.archive import archive_results

NOW = dt.datetime(2024, 7, 5, 9, 12, 30)
FILES = {
    "final/Côte d'Azur & Paris/oil_paint/café crème.webp": os.urandom(70_000),
    "catalog/master.json": b'{"photos": []}\n',
    "published/empty.json": b"",
    "metadata/a/b/c/deep.json": b"{}" * 5000,
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_archive_then_remove(results: Path, tmp_path: Path) -> None:
    zip_path = archive_results(results, tmp_path / "archive", now=NOW)
    assert zip_path == tmp_path / "archive" / "i2i_20240705_091230.zip"
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        assert {n: archive.read(n) for n in archive.namelist()} == {
            f"results/{n}": d for n, d in FILES.items()
        }
    assert not results.exists()
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [zip_path.name]


def test_archive_name_is_never_reused(results: Path, tmp_path: Path) -> None:
    archive_results(results, tmp_path / "archive", now=NOW)
    (results / "x.json").parent.mkdir()
    (results / "x.json").write_text("{}")
    with pytest.raises(I2IError, match="already exists"):
        archive_results(results, tmp_path / "archive", now=NOW)
    assert (results / "x.json").is_file()


def test_nothing_to_archive(tmp_path: Path) -> None:
    with pytest.raises(I2IError, match="no results folder"):
        archive_results(tmp_path / "missing", tmp_path / "archive", now=NOW)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(I2IError, match="no files"):
        archive_results(tmp_path / "empty", tmp_path / "archive", now=NOW)


def test_file_changed_after_zipping_keeps_everything(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = archive_module.write_archive

    def write_then_change(zip_path: Path, files: list[Path], root: Path) -> None:
        write(zip_path, files, root)
        (root / "catalog/master.json").write_bytes(b'{"photos": [1]}\n')

    monkeypatch.setattr(archive_module, "write_archive", write_then_change)
    before = {**snapshot(results), "catalog/master.json": b'{"photos": [1]}\n'}
    with pytest.raises(I2IError, match="differs"):
        archive_results(results, tmp_path / "archive", now=NOW)
    assert snapshot(results) == before


def test_corrupt_archive_keeps_everything(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = archive_module.write_archive

    def write_then_corrupt(zip_path: Path, files: list[Path], root: Path) -> None:
        write(zip_path, files, root)
        with zipfile.ZipFile(zip_path) as archive:
            info = max(archive.infolist(), key=lambda i: i.compress_size)
        data = bytearray(zip_path.read_bytes())
        middle = info.header_offset + 30 + len(info.orig_filename.encode()) + 100
        data[middle : middle + 64] = bytes(64)
        zip_path.write_bytes(bytes(data))

    monkeypatch.setattr(archive_module, "write_archive", write_then_corrupt)
    before = snapshot(results)
    with pytest.raises(I2IError, match="nothing removed"):
        archive_results(results, tmp_path / "archive", now=NOW)
    assert snapshot(results) == before


def test_archive_folder_inside_results_and_symlinks_are_left(results: Path) -> None:
    (results / "link.webp").symlink_to(results / "catalog/master.json")
    zip_path = archive_results(results, results / "archive", now=NOW)
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(f"results/{n}" for n in FILES)
    assert sorted(p.name for p in results.iterdir()) == ["archive", "link.webp"]
