"""Cleanup: zip old results into ``archive/i2i_YYYYmmdd_HHMMSS.zip``, verify, then remove them.

Nothing is removed unless the archive passes ``ZipFile.testzip`` and every member's size and
CRC-32 match the file still on disk. Only the files that were archived are removed (a file
that appears meanwhile stays), then the folders left empty. Symbolic links and other
non-regular files are neither archived nor removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zipfile
import zlib
from pathlib import Path

from i2i import I2IError
from i2i.core.files import CHUNK, atomic_path

log = logging.getLogger(__name__)

NAME_FORMAT = "i2i_%Y%m%d_%H%M%S.zip"


def crc32_file(path: Path) -> int:
    """The CRC-32 of a file, as stored in a zip archive."""
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def files_to_archive(results_dir: Path, archive_dir: Path) -> list[Path]:
    """Regular files under ``results_dir`` (sorted), leaving out ``archive_dir`` if inside it."""
    skip = archive_dir.resolve()
    found = []
    for folder, dirs, names in os.walk(results_dir):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() != skip)
        for name in sorted(names):
            path = here / name
            if path.is_symlink() or not path.is_file():
                log.warning("not archived (not a regular file): %s", path)
                continue
            found.append(path)
    return found


def member_name(path: Path, results_dir: Path) -> str:
    """The name inside the zip: the results folder's name, then the path below it."""
    return (Path(results_dir.resolve().name) / path.relative_to(results_dir)).as_posix()


def write_archive(zip_path: Path, files: list[Path], results_dir: Path) -> None:
    """Write ``files`` into ``zip_path`` (atomically: a reader never sees a partial zip)."""
    with (
        atomic_path(zip_path) as tmp,
        zipfile.ZipFile(
            tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6, strict_timestamps=False
        ) as archive,
    ):
        for path in files:
            archive.write(path, member_name(path, results_dir))


def verify_archive(zip_path: Path, files: list[Path], results_dir: Path) -> None:
    """Raise unless the zip reads back intact and matches every file on disk (size and CRC)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            bad = archive.testzip()
            members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise I2IError(f"{zip_path}: unreadable archive ({exc}); nothing removed") from exc
    if bad is not None:
        raise I2IError(f"{zip_path}: member {bad} is corrupt; nothing removed")
    expected = {member_name(path, results_dir): path for path in files}
    if set(members) != set(expected):
        raise I2IError(f"{zip_path}: members differ from the files on disk; nothing removed")
    for name, path in expected.items():
        info = members[name]
        if info.file_size != path.stat().st_size or crc32_file(path) != info.CRC:
            raise I2IError(f"{zip_path}: {name} differs from {path} (changed?); nothing removed")


def remove_archived(files: list[Path], results_dir: Path) -> None:
    """Remove the archived files, then every folder under ``results_dir`` left empty."""
    for path in files:
        path.unlink()
    for folder, _, _ in sorted(os.walk(results_dir), key=lambda item: -len(item[0])):
        try:
            Path(folder).rmdir()
        except OSError:
            continue


def archive_results(
    results_dir: str | os.PathLike[str],
    archive_dir: str | os.PathLike[str],
    now: dt.datetime | None = None,
) -> Path:
    """Zip ``results_dir`` to ``archive_dir/i2i_YYYYmmdd_HHMMSS.zip``, verify it, remove the files.

    ``now`` (local time by default) names the archive. Returns the archive's path. Raises
    :class:`~i2i.I2IError` when there is nothing to archive, the archive already exists, or
    the verification fails (then nothing is removed).
    """
    results, archives = Path(results_dir), Path(archive_dir)
    if not results.is_dir():
        raise I2IError(f"{results}: no results folder to archive")
    files = files_to_archive(results, archives)
    if not files:
        raise I2IError(f"{results}: no files to archive")
    zip_path = archives / (now or dt.datetime.now()).strftime(NAME_FORMAT)
    if zip_path.exists():
        raise I2IError(f"{zip_path} already exists; nothing archived")
    write_archive(zip_path, files, results)
    verify_archive(zip_path, files, results)
    remove_archived(files, results)
    log.info("archived %d files from %s to %s", len(files), results, zip_path)
    return zip_path
