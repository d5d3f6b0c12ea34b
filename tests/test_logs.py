"""Per-job logs of in-process jobs, the graceful-stop watcher and the collector settings."""

from __future__ import annotations

import errno
import gc
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError
from test_preprocess import BAD, GOOD

from i2i import I2IError
from i2i.core.images import NOT_AN_IMAGE
from i2i.run import dag_gc, runcontrol
from i2i.run.logs import JobFailed, job_log
from i2i.run.runcontrol import STOP_FILE, request_stop, watch_stop_file
from i2i.stages.metadata.read import read_metadata
from i2i.stages.preprocess import preprocess

from conftest import REPO

log = logging.getLogger("i2i.test")


def test_each_thread_logs_to_its_own_file(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)

    def job(name: str) -> None:
        with job_log(str(tmp_path / f"{name}.log"), name):
            barrier.wait()
            log.info("working on %s", name)
            barrier.wait()

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = ((tmp_path / f"{n}.log").read_text() for n in ("a", "b"))
    assert "working on a" in a and "working on b" not in a
    assert "working on b" in b and "working on a" not in b
    assert a.rstrip().splitlines()[-1].split(": ", 1)[1].startswith("job finished in ")


def test_expected_errors_become_one_line_job_failures(tmp_path: Path) -> None:
    with (
        pytest.raises(JobFailed, match=r"^photo\.jpg: not an image$"),
        job_log(str(tmp_path / "x.log"), "photo.jpg"),
    ):
        raise I2IError("not an image")
    text = (tmp_path / "x.log").read_text()
    assert "ERROR i2i: photo.jpg: not an image" in text and "finished" not in text


PHOTO = "Space Coast/x.jpg"
FAILURES = {
    "truncated": (EOFError(), "truncated image file"),
    "bomb": (
        Image.DecompressionBombError(
            "Image size (200000000 pixels) exceeds limit of 178956970 pixels, "
            "could be decompression bomb DOS attack."
        ),
        "too many pixels: 200,000,000 (limit 178,956,970), possibly a decompression bomb",
    ),
    "not an image": (
        UnidentifiedImageError(f"cannot identify image file '/albums/{PHOTO}'"),
        NOT_AN_IMAGE,
    ),
    "disk full": (
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "results/.x.abc.tmp.webp"),
        "disk full (no space left on device)",
    ),
    "decoder": (OSError("image file is truncated (3 bytes not processed)"), "truncated image file"),
    "named by the stage": (I2IError(f"{PHOTO}: empty file (0 bytes), not an image"), None),
}


def one_error_line(log_file: Path, photo: str) -> str:
    """The log's only line, an ERROR naming ``photo`` once, without a traceback."""
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1, lines
    assert " ERROR i2i: " in lines[0] and lines[0].count(photo) == 1, lines[0]
    return lines[0].split(" ERROR i2i: ", 1)[1]


@pytest.mark.parametrize("name", list(FAILURES))
def test_bad_input_and_full_disk_are_one_line_naming_the_file_once(
    name: str, tmp_path: Path
) -> None:
    exc, reason = FAILURES[name]
    expected = f"{PHOTO}: {reason}" if reason else str(exc)
    with pytest.raises(JobFailed) as failed, job_log(str(tmp_path / "x.log"), PHOTO):
        raise exc
    assert str(failed.value) == expected
    assert one_error_line(tmp_path / "x.log", "x.jpg") == expected


def test_a_real_full_disk_is_one_line(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(JobFailed) as failed, job_log(str(tmp_path / "x.log"), PHOTO):
        Path("/dev/full").write_bytes(b"metadata record")
    assert str(failed.value) == f"{PHOTO}: disk full (no space left on device)"
    assert one_error_line(tmp_path / "x.log", "x.jpg") == str(failed.value)


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("stage", ["metadata", "preprocess"])
def test_bad_photos_fail_stages_with_one_line(stage: str, name: str, tmp_path: Path) -> None:
    make, reason = BAD[name]
    album = tmp_path / "Space Coast"
    album.mkdir()
    photo = make(album / name)
    log_file = tmp_path / "job.log"
    try:
        with job_log(str(log_file), str(photo)):
            if stage == "metadata":
                read_metadata(photo)
            else:
                preprocess(photo, tmp_path / "out.webp", 512, 90)
    except JobFailed as failed:
        assert re.fullmatch(rf"{re.escape(str(photo))}: {reason}", str(failed))
        assert one_error_line(log_file, name) == str(failed)
    else:
        assert stage == "metadata" and name in {"cut.jpg", "dot.png", "sliver.jpg"}, (
            "the metadata stage records what it can of a damaged or tiny photo"
        )


def test_full_disk_while_preprocessing_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = GOOD["good.png"](tmp_path / "good.png")

    def full(image: Image.Image, target: object, *args: object, **kwargs: object) -> None:
        Path(str(target)).write_bytes(b"RIFF")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(JobFailed) as failed, job_log(str(tmp_path / "x.log"), str(photo)):
        preprocess(photo, tmp_path / "out" / "good.webp", 512, 90)
    assert str(failed.value) == f"{photo}: disk full (no space left on device)"
    assert one_error_line(tmp_path / "x.log", "good.png") == str(failed.value)
    assert list((tmp_path / "out").iterdir()) == [], "no partial output left"


def test_unexpected_failures_keep_their_traceback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a bug"), job_log(str(tmp_path / "x.log"), PHOTO):
        raise ValueError("a bug")
    text = (tmp_path / "x.log").read_text()
    assert f"ERROR i2i: {PHOTO}: unexpected failure" in text and "Traceback" in text


def test_script_jobs_give_the_same_one_line(tmp_path: Path) -> None:
    code = (
        "from i2i.run.logs import job\n"
        f"with job([{str(tmp_path / 'x.log')!r}], {PHOTO!r}):\n"
        "    raise EOFError\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert one_error_line(tmp_path / "x.log", "x.jpg") == f"{PHOTO}: truncated image file"


def test_stop_file_asks_for_a_graceful_stop_once(tmp_path: Path) -> None:
    stops = []
    (tmp_path / STOP_FILE).parent.mkdir(parents=True)
    (tmp_path / STOP_FILE).write_text("stale\n")
    ended = watch_stop_file(lambda: stops.append(time.monotonic()), tmp_path, poll=0.05)
    assert not (tmp_path / STOP_FILE).exists(), "a stale stop file is cleared at start"
    time.sleep(0.2)
    assert stops == []
    request_stop(tmp_path)
    deadline = time.monotonic() + 60
    while not stops and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert len(stops) == 1 and not (tmp_path / STOP_FILE).exists()
    ended.set()


def test_sigterm_stops_from_another_thread_while_a_lock_is_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = threading.Lock()
    stopped = threading.Event()

    def exit_gracefully() -> None:
        with lock:
            stopped.set()

    for name in ("_requested", "_interrupted", "_signalled"):
        monkeypatch.setattr(runcontrol, name, threading.Event())
    monkeypatch.setattr(runcontrol, "_on_signal_stop", [exit_gracefully])
    previous = signal.signal(signal.SIGTERM, runcontrol.on_stop_signal)
    try:
        with lock:
            signal.raise_signal(signal.SIGTERM)
            assert not stopped.is_set()
        assert stopped.wait(5), "the stop ran once the main thread released the lock"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_collector_defers_while_the_dag_is_built_and_resumes_frozen() -> None:
    before = gc.get_threshold()
    try:
        dag_gc.defer_while_building_dag()
        assert gc.get_threshold() == dag_gc.DAG_THRESHOLDS
        dag = [{"job": n} for n in range(1000)]
        frozen_before = gc.get_freeze_count()
        dag_gc.resume_after_dag()
        assert gc.get_threshold() == dag_gc.DEFAULT_THRESHOLDS
        assert gc.get_freeze_count() >= frozen_before + len(dag)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("defer", [True, False])
def test_exit_skips_the_final_collection_once_deferred(tmp_path: Path, defer: bool) -> None:
    marker = tmp_path / "collected"
    code = (
        "import sys\nfrom pathlib import Path\nfrom i2i.run import dag_gc\n"
        "class Node:\n    def __del__(self):\n        Path(sys.argv[1]).write_text('yes')\n"
        f"if {defer}:\n    dag_gc.defer_while_building_dag()\n"
        "node = Node()\nnode.cycle = node\ndel node\n"
    )
    subprocess.run([sys.executable, "-c", code, str(marker)], cwd=REPO, check=True)
    assert marker.exists() is not defer, "the exit-time collection walks the heap unless frozen"
