"""The resident worker processes of the per-image rules."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from i2i import I2IError
from i2i.run import workers
from i2i.run.logs import JobFailed


def write_pid(target: str) -> None:
    Path(target).write_text(str(os.getpid()), encoding="utf-8")


def crash(target: str) -> None:
    os._exit(3)


def refuse(target: str) -> None:
    raise I2IError(f"{target}: not a photo")


@pytest.fixture(autouse=True)
def fresh_pool():
    workers.stop()
    yield
    workers.stop()


def test_work_runs_in_resident_workers_and_logs_per_job(tmp_path: Path) -> None:
    def one(number: int) -> int:
        target = tmp_path / f"{number}.txt"
        log = tmp_path / "logs" / f"{number}.log"
        workers.run(write_pid, str(log), f"job {number}", str(target), workers=2)
        assert "job finished in" in log.read_text(encoding="utf-8")
        return int(target.read_text(encoding="utf-8"))

    with ThreadPoolExecutor(4) as pool:
        pids = set(pool.map(one, range(12)))
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2, "two resident workers did all twelve jobs"


def test_a_crashed_worker_fails_only_its_job_and_is_replaced(tmp_path: Path) -> None:
    log = tmp_path / "crash.log"
    with ThreadPoolExecutor(3) as pool:
        crashed = pool.submit(workers.run, crash, str(log), "photo.jpg", "x", workers=2)
        others = [
            pool.submit(
                workers.run, write_pid, str(tmp_path / f"{n}.log"), "ok", str(tmp_path / f"{n}")
            )
            for n in range(6)
        ]
        with pytest.raises(JobFailed, match=r"^photo.jpg: the worker process died"):
            crashed.result()
        for future in others:
            assert future.result() is None
    assert "the worker process died" in log.read_text(encoding="utf-8")
    workers.run(write_pid, str(tmp_path / "after.log"), "after", str(tmp_path / "after"), workers=2)
    assert (tmp_path / "after").is_file()


def test_an_expected_failure_is_one_line_from_the_worker(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    with pytest.raises(JobFailed, match=r"^x.jpg: not a photo$"):
        workers.run(refuse, str(log), "x.jpg", "x.jpg", workers=2)
    assert "ERROR" in log.read_text(encoding="utf-8")


def test_inline_runs_in_this_process(tmp_path: Path) -> None:
    target = tmp_path / "inline.txt"
    workers.run(write_pid, str(tmp_path / "i.log"), "i", str(target), workers=4, inline=True)
    assert int(target.read_text(encoding="utf-8")) == os.getpid()


def warn_truncated(target: str) -> None:
    warnings.warn("Truncated File Read", UserWarning, stacklevel=1)


def test_a_workers_warnings_name_the_jobs_photo(tmp_path: Path) -> None:
    """What a worker runs: each job's warnings start with its photo, every time."""
    with warnings.catch_warnings(record=True) as caught:
        for photo in ("Trip/a.jpg", "Trip/b.jpg"):
            workers._in_worker(warn_truncated, str(tmp_path / "w.log"), photo, (photo,))
    assert [str(w.message) for w in caught] == [
        "Trip/a.jpg: Truncated File Read",
        "Trip/b.jpg: Truncated File Read",
    ]
