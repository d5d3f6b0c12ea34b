"""The light side of the FLUX worker: find or start the worker and ask it to render one image.

Jobs of rule ``stylize_flux`` import only this module (standard library), never torch: the model
lives in one worker process per run folder (:mod:`i2i.flux_worker`), loaded once and kept while
jobs keep coming. The protocol is one JSON request and one JSON reply per connection, each a
single line, over a Unix socket in the run folder (``.i2i/worker/`` by default).

Starting is race-free: a job that finds no worker takes ``start.lock`` (flock), checks again, and
only then spawns one, detached, and waits until it answers. A worker holds ``alive.lock`` for its
whole life, so a stale socket of a crashed worker is told apart from a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from i2i import I2IError

log = logging.getLogger("i2i.flux")

RUN_DIR = ".i2i/worker"
STARTUP_TIMEOUT = 120.0
STATUS_TIMEOUT = 10.0
MAX_SOCKET_PATH = 100
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """What identifies a loaded model: the ``flux`` config keys other than ``idle_timeout``."""

    model: str = "black-forest-labs/FLUX.1-Kontext-dev"
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "none"
    quantize: str = "none"

    @classmethod
    def from_config(cls, flux: Mapping[str, Any]) -> Settings:
        """Settings from the config's ``flux`` mapping; other keys are ignored."""
        return cls(**{k: str(flux[k]) for k in cls.__dataclass_fields__ if k in flux})

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def socket_path(run_dir: str | os.PathLike[str]) -> Path:
    """The worker's socket: in the run folder, or in the temp dir when that path is too long."""
    folder = Path(run_dir).resolve()
    path = folder / "worker.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"i2i-{digest}.sock"


def send(sock: socket.socket, message: Mapping[str, Any]) -> None:
    """Write one JSON message as one line."""
    sock.sendall(json.dumps(message).encode("utf-8") + b"\n")


def receive(sock: socket.socket) -> dict[str, Any] | None:
    """Read one JSON line; None when the peer closed the connection first."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return json.loads(b"".join(chunks))


def request(
    run_dir: str | os.PathLike[str], message: Mapping[str, Any], timeout: float | None
) -> dict[str, Any] | None:
    """Send ``message`` to the worker and return its reply (None if it hung up without one).

    Raises OSError when no worker listens.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path(run_dir)))
        send(sock, message)
        return receive(sock)


def status(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The worker's status, or None when no worker answers."""
    try:
        return request(run_dir, {"op": "status"}, STATUS_TIMEOUT)
    except (OSError, ValueError):
        return None


def stop(run_dir: str | os.PathLike[str], wait: float = 30.0) -> bool:
    """Ask the worker to stop after the work in flight; True if one was running."""
    try:
        request(run_dir, {"op": "stop"}, STATUS_TIMEOUT)
    except (OSError, ValueError):
        return False
    deadline = time.monotonic() + wait
    while worker_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def worker_alive(run_dir: str | os.PathLike[str]) -> bool:
    """True while some worker process holds the run folder's ``alive.lock``."""
    lock = Path(run_dir) / "alive.lock"
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if needed), waiting at most ``timeout``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise I2IError(
                        f"timed out waiting for {path} (another job starting the worker)"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spawn(run_dir: Path, settings: Settings, idle_timeout: float) -> subprocess.Popen:
    """Start a detached worker process; its output goes to ``worker.log`` in the run folder."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "i2i.flux_worker",
        "serve",
        "--run-dir",
        str(run_dir),
        "--settings",
        json.dumps(settings.as_dict()),
        "--idle-timeout",
        str(idle_timeout),
    ]
    with (run_dir / "worker.log").open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    log.info("started FLUX worker, pid %d (log: %s)", process.pid, run_dir / "worker.log")
    return process


def _log_tail(run_dir: Path, lines: int = 15) -> str:
    path = run_dir / "worker.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _wait_for(run_dir: Path, process: subprocess.Popen | None, timeout: float) -> dict[str, Any]:
    """Wait until a worker answers; fail when ours exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = status(run_dir)
        if answer is not None:
            return answer
        if process is not None and process.poll() is not None:
            raise I2IError(
                f"the FLUX worker exited with status {process.returncode} while starting:\n"
                + _log_tail(run_dir)
            )
        if process is None and not worker_alive(run_dir):
            raise I2IError("the FLUX worker exited while starting:\n" + _log_tail(run_dir))
        time.sleep(0.05)
    raise I2IError(f"the FLUX worker did not answer within {timeout:.0f} s:\n" + _log_tail(run_dir))


def ensure_worker(
    run_dir: str | os.PathLike[str],
    settings: Settings,
    idle_timeout: float,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> dict[str, Any]:
    """The status of a worker with ``settings``: the running one, or one started now."""
    folder = Path(run_dir)
    answer = status(folder)
    if answer is not None and answer.get("settings") == settings.as_dict():
        return answer
    with locked(folder / "start.lock", startup_timeout):
        answer = status(folder)
        if answer is None and worker_alive(folder):
            answer = _wait_for(folder, None, startup_timeout)
        if answer is not None:
            if answer.get("settings") == settings.as_dict():
                return answer
            log.info("the running worker has other settings %s: stopping it", answer["settings"])
            stop(folder)
        return _wait_for(folder, spawn(folder, settings, idle_timeout), startup_timeout)


def host_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The worker folder for this host: per Slurm job on a cluster, where the shared working
    directory is seen by many nodes but a worker's socket and GPU belong to one."""
    job = os.environ.get("SLURM_JOB_ID")
    return Path(run_dir) / f"slurm-{job}" if job else Path(run_dir)


def render(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    style_name: str,
    style: Mapping[str, Any],
    flux: Mapping[str, Any],
    run_dir: str | os.PathLike[str] = RUN_DIR,
) -> dict[str, Any]:
    """Render one image through the worker (started if needed); return the worker's reply.

    A worker that vanishes without replying (crash, or idle stop in the same instant) is
    restarted once; an image the worker reports as failed raises I2IError.
    """
    settings = Settings.from_config(flux)
    run_dir = host_run_dir(run_dir)
    message = {
        "op": "render",
        "source": str(Path(source).resolve()),
        "target": str(Path(target).resolve()),
        "style_name": style_name,
        "style": dict(style),
    }
    for attempt in (1, 2):
        worker = ensure_worker(run_dir, settings, float(flux.get("idle_timeout", 600)))
        started = time.perf_counter()
        try:
            reply = request(run_dir, message, None)
        except OSError as exc:
            reply = None
            log.warning("FLUX worker %s: %s", worker.get("pid"), exc)
        if reply is not None:
            break
        log.warning("FLUX worker %s stopped without a reply (attempt %d)", worker["pid"], attempt)
    else:
        raise I2IError(
            f"the FLUX worker stopped twice while rendering {source}:\n" + _log_tail(Path(run_dir))
        )
    if not reply.get("ok"):
        raise I2IError(reply.get("error", "the FLUX worker failed without a message"))
    log.info(
        "%s in %s: %.2f s in the worker (pid %s), %.2f s round trip",
        Path(target).name,
        style_name,
        reply["seconds"],
        reply["pid"],
        time.perf_counter() - started,
    )
    return reply
