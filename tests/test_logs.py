"""Per-job logs of in-process jobs, the graceful-stop watcher and the collector settings."""

from __future__ import annotations

import gc
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from i2i import I2IError, dag_gc
from i2i.logs import JobFailed, job_log
from i2i.runcontrol import STOP_FILE, request_stop, sigterm_in_thread, watch_stop_file

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


def test_stop_file_asks_for_a_graceful_stop_once(tmp_path: Path) -> None:
    stops = []
    (tmp_path / STOP_FILE).parent.mkdir(parents=True)
    (tmp_path / STOP_FILE).write_text("stale\n")
    ended = watch_stop_file(lambda: stops.append(time.monotonic()), tmp_path, poll=0.05)
    assert not (tmp_path / STOP_FILE).exists(), "a stale stop file is cleared at start"
    time.sleep(0.2)
    assert stops == []
    request_stop(tmp_path)
    deadline = time.monotonic() + 5
    while not stops and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert len(stops) == 1 and not (tmp_path / STOP_FILE).exists()
    ended.set()


def test_sigterm_stops_from_another_thread_while_a_lock_is_held() -> None:
    lock = threading.Lock()
    stopped = threading.Event()

    def exit_gracefully() -> None:
        with lock:
            stopped.set()

    previous = signal.signal(signal.SIGTERM, sigterm_in_thread(exit_gracefully))
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
        "import sys\nfrom pathlib import Path\nfrom i2i import dag_gc\n"
        "class Node:\n    def __del__(self):\n        Path(sys.argv[1]).write_text('yes')\n"
        f"if {defer}:\n    dag_gc.defer_while_building_dag()\n"
        "node = Node()\nnode.cycle = node\ndel node\n"
    )
    subprocess.run([sys.executable, "-c", code, str(marker)], cwd=REPO, check=True)
    assert marker.exists() is not defer, "the exit-time collection walks the heap unless frozen"
