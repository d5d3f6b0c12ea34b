"""The light side of a resident backend's worker: find or start it, ask it to render an image.

Jobs of a resident backend's rule (``stylize_flux``) import only this module and the backend's
declaration, never torch: the model lives in one worker process per backend and run folder
(:mod:`i2i.run.resident`), loaded once and kept while jobs keep coming. The protocol is one JSON
request and one JSON reply per connection, each a single line, over a Unix socket in the
backend's worker folder (``.i2i/worker/<backend>/`` by default).

Starting is race-free: a job that finds no worker takes ``start.lock`` (flock), checks again, and
only then spawns one, detached, and waits until it answers. A worker holds ``alive.lock`` for its
whole life, so a stale socket of a crashed worker is told apart from a live one.

A hung worker (a stuck GPU kernel, a stopped process) is told apart from a busy one: a live worker
answers ``status`` within seconds even while it renders, so one that accepts a connection and does
not answer is killed and replaced; a render that takes longer than the section's
``request_timeout`` (``flux.request_timeout``) fails its job with one line and the worker is
killed, so the next job starts a fresh one.

A worker leaves SIGINT and SIGTERM to the run that started it (it starts with both blocked,
:mod:`i2i.run.signals`), even when Slurm or systemd signal every process of the job. When
that run stops on a signal it does not wait minutes for a render: :func:`abandon` kills the
worker, and the job in flight fails with :class:`Abandoned` (its output was never written: the
backend writes through a temp file, removed here) and is redone by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from i2i import I2IError, backends
from i2i.backends import StyleBackend
from i2i.run import signals
from i2i.run.logs import ABANDONED, Abandoned
from i2i.run.runcontrol import is_temp_name

log = logging.getLogger("i2i.resident")

RUN_DIR = ".i2i/worker"
COMPILE_CACHE = "compile-cache"
STARTUP_TIMEOUT = 120.0
STATUS_TIMEOUT = 10.0
REQUEST_TIMEOUT = 1800.0
READY_POLL = 5.0
KILL_WAIT = 10.0
MAX_SOCKET_PATH = 100
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

_abandoning = threading.Event()
_abandoned: set[str] = set()
_rendering = 0
_counts_lock = threading.Lock()


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

    Raises OSError when no worker listens, TimeoutError (an OSError) when one accepts the
    connection and sends nothing for ``timeout`` seconds.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path(run_dir)))
        send(sock, message)
        return receive(sock)


def status(
    run_dir: str | os.PathLike[str], timeout: float = STATUS_TIMEOUT
) -> dict[str, Any] | None:
    """The worker's status, or None when no worker answers."""
    try:
        return request(run_dir, {"op": "status"}, timeout)
    except (OSError, ValueError):
        return None


def _probe(run_dir: Path, timeout: float, kill_hung: bool = True) -> dict[str, Any] | None:
    """The worker's status; None when none listens. A worker that accepts the connection and
    does not answer within ``timeout`` is hung (a live one answers status while it renders):
    with ``kill_hung`` it is killed; None either way."""
    try:
        return request(run_dir, {"op": "status"}, timeout)
    except TimeoutError:
        if not kill_hung:
            return None
        pid = _recorded_pid(run_dir)
        log.warning(
            "%s %s does not answer within %g s: killing it", _worker_name(run_dir), pid, timeout
        )
        if pid is not None:
            kill(run_dir, pid)
        return None
    except (OSError, ValueError):
        return None


def _recorded_pid(run_dir: Path) -> int | None:
    """The pid in ``worker.pid``, if a worker holds the run folder and it is that process."""
    try:
        pid = int((run_dir / "worker.pid").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not worker_alive(run_dir):
        return None
    if Path("/proc/self/cmdline").exists():  # Linux: make sure the pid is still the worker
        try:
            if b"i2i.run.resident" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
        except OSError:
            return None
    return pid


def kill(run_dir: str | os.PathLike[str], pid: int) -> None:
    """Kill a hung worker (and what it started: it leads its own session) and wait until its
    ``alive.lock`` is free, so that the next request starts a fresh worker."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + KILL_WAIT
    while worker_alive(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)


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


def _worker_name(run_dir: str | os.PathLike[str]) -> str:
    """How messages name the worker of ``run_dir`` (its backend: the folder's name)."""
    return f"the {Path(run_dir).name} worker"


def spawn(
    run_dir: Path,
    backend: StyleBackend,
    settings: Mapping[str, Any],
    idle_timeout: float,
    cache_dir: Path | None = None,
) -> subprocess.Popen:
    """Start a detached worker process; its output goes to ``worker.log`` in the run folder.

    torch.compile's caches (Inductor, Triton) go to ``cache_dir`` (default: ``compile-cache`` in
    the run folder) unless TORCHINDUCTOR_CACHE_DIR / TRITON_CACHE_DIR are set: a restarted worker
    compiles from the cache in a fraction of the time.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    cache = Path(cache_dir or run_dir / COMPILE_CACHE).resolve()
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache))
    env.setdefault("TRITON_CACHE_DIR", str(Path(env["TORCHINDUCTOR_CACHE_DIR"]) / "triton"))
    command = [
        sys.executable,
        "-m",
        "i2i.run.resident",
        "serve",
        "--backend",
        backend.name,
        "--loader",
        backend.worker,
        "--run-dir",
        str(run_dir),
        "--settings",
        json.dumps(dict(settings)),
        "--idle-timeout",
        str(idle_timeout),
    ]
    with (run_dir / "worker.log").open("ab") as output, signals.blocked():
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    log.info(
        "started the %s worker, pid %d (log: %s)", backend.name, process.pid, run_dir / "worker.log"
    )
    return process


def _log_tail(run_dir: Path, lines: int = 15) -> str:
    path = run_dir / "worker.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _wait_for(
    run_dir: Path, process: subprocess.Popen | None, timeout: float, probe: float = STATUS_TIMEOUT
) -> dict[str, Any] | None:
    """Wait until a worker answers; fail when ours exits first or time runs out. Without a
    process of ours (another job's worker, starting): None when it goes away. A worker of ours
    that is slow to answer while it starts (a loaded machine) is not taken for a hung one: the
    start-up timeout bounds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = _probe(run_dir, probe, kill_hung=process is None)
        if answer is not None:
            return answer
        if process is not None and process.poll() is not None:
            raise I2IError(
                f"{_worker_name(run_dir)} exited with status {process.returncode} while "
                "starting:\n" + _log_tail(run_dir)
            )
        if process is None and not worker_alive(run_dir):
            return None
        time.sleep(0.05)
    raise I2IError(
        f"{_worker_name(run_dir)} did not answer within {timeout:.0f} s:\n" + _log_tail(run_dir)
    )


def ensure_worker(
    run_dir: str | os.PathLike[str],
    backend: StyleBackend,
    settings: Mapping[str, Any],
    idle_timeout: float,
    startup_timeout: float = STARTUP_TIMEOUT,
    probe: float = STATUS_TIMEOUT,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """The status of a worker with ``settings``: the running one, or one started now. A worker
    that does not answer ``status`` within ``probe`` seconds twice is hung: killed and replaced."""
    folder = Path(run_dir)
    settings = dict(settings)
    answer = _probe(folder, probe, kill_hung=False)
    if answer is not None and answer.get("settings") == settings:
        return answer
    with locked(folder / "start.lock", startup_timeout):
        answer = _probe(folder, probe)
        if answer is None and worker_alive(folder):
            answer = _wait_for(folder, None, startup_timeout, probe)
        if answer is not None:
            if answer.get("settings") == settings:
                return answer
            log.info("the running worker has other settings %s: stopping it", answer["settings"])
            stop(folder)
        process = spawn(folder, backend, settings, idle_timeout, cache_dir)
        answer = _wait_for(folder, process, startup_timeout, probe)
        assert answer is not None  # _wait_for raises when our own process fails
        return answer


def _load_failure(run_dir: Path, pid: int) -> str | None:
    """The model-load error worker ``pid`` recorded before it stopped, if that is why."""
    try:
        record = read_stats(run_dir)
    except (OSError, ValueError):
        return None
    if record.get("pid") == pid and record.get("state") == "failed":
        return record.get("error")
    return None


def read_stats(run_dir: Path) -> dict[str, Any]:
    """The last ``stats.json`` a worker of ``run_dir`` wrote."""
    return json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))


def wait_ready(run_dir: Path, answer: dict[str, Any], probe: float) -> dict[str, Any] | None:
    """Wait while the worker loads the model (the first download can take long: not bounded,
    but the worker must keep answering); its status once loaded, None if it went away.
    A failed load raises its one-line error."""
    pid = answer.get("pid")
    while answer.get("state") == "loading":
        try:
            reply = request(run_dir, {"op": "ready", "wait": READY_POLL}, READY_POLL + probe)
        except TimeoutError:
            kill(run_dir, pid)
            raise I2IError(
                f"{_worker_name(run_dir)} (pid {pid}) stopped answering while it loaded the "
                "model: it was killed, the next job starts a new one"
            ) from None
        except (OSError, ValueError):
            reply = None
        if reply is None:
            error = _load_failure(run_dir, pid)
            if error:
                raise I2IError(error)
            return None
        answer = reply
    if answer.get("state") == "failed":
        raise I2IError(answer.get("error") or f"{_worker_name(run_dir)} failed to load the model")
    return answer


def host_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The worker folder for this host: per Slurm job on a cluster, where the shared working
    directory is seen by many nodes but a worker's socket and GPU belong to one."""
    job = os.environ.get("SLURM_JOB_ID")
    return Path(run_dir) / f"slurm-{job}" if job else Path(run_dir)


def worker_dir(run_dir: str | os.PathLike[str], backend: str) -> Path:
    """The folder of ``backend``'s worker on this host under the run folder ``run_dir``."""
    return host_run_dir(run_dir) / backend


def render(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    style_name: str,
    style: Mapping[str, Any],
    section: Mapping[str, Any],
    run_dir: str | os.PathLike[str] = RUN_DIR,
) -> dict[str, Any]:
    """Render one image through the worker of the style's resident backend (started if
    needed); return the worker's reply. ``section`` is the backend's config section.

    ``target`` ends in ``.webp`` (the workflow's styled images) or ``.png`` (lossless, for
    ``i2i stylize``). A worker that vanishes without replying (crash, or idle stop in the same
    instant) is restarted once; an image the worker reports as failed raises I2IError; a render
    that takes more than the section's ``request_timeout`` seconds raises I2IError and kills
    the worker.
    """
    backend = backends.backend(style["backend"])
    settings = backend.worker_settings(section)
    cache_dir = Path(run_dir) / COMPILE_CACHE
    folder = worker_dir(run_dir, backend.name)
    name = _worker_name(folder)
    timeout = float(section.get("request_timeout", REQUEST_TIMEOUT))
    probe = min(STATUS_TIMEOUT, timeout)
    message = {
        "op": "render",
        "source": str(Path(source).resolve()),
        "target": str(Path(target).resolve()),
        "style_name": style_name,
        "style": dict(style),
    }
    idle_timeout = float(section.get("idle_timeout", 600))
    global _rendering
    with _counts_lock:
        _rendering += 1
    try:
        for attempt in (1, 2):
            _check_abandoning(name)
            worker = ensure_worker(
                folder, backend, settings, idle_timeout, probe=probe, cache_dir=cache_dir
            )
            pid = worker.get("pid")
            ready = wait_ready(folder, worker, probe)
            reply = None
            started = time.perf_counter()
            if ready is not None:
                try:
                    reply = request(folder, message, timeout)
                except TimeoutError:
                    kill(folder, pid)
                    option = f"{backend.section}.request_timeout" if backend.section else "timeout"
                    raise I2IError(
                        f"{name} (pid {pid}) did not finish {Path(source).name} in {style_name} "
                        f"within {timeout:g} s ({option}): it was killed, the next job starts a "
                        "new one"
                    ) from None
                except OSError as exc:
                    _check_abandoning(name)
                    log.warning("%s %s: %s", name, pid, exc)
            if reply is not None:
                break
            _check_abandoning(name)
            log.warning("%s %s stopped without a reply (attempt %d)", name, pid, attempt)
        else:
            raise I2IError(f"{name} stopped twice while rendering {source}:\n" + _log_tail(folder))
    except I2IError:
        if _abandoning.is_set():
            raise _abandoned_render(target, name) from None
        raise
    finally:
        with _counts_lock:
            _rendering -= 1
    if not reply.get("ok"):
        raise I2IError(reply.get("error", f"{name} failed without a message"))
    if reply.get("warning"):
        log.warning("%s", reply["warning"])
    log.info(
        "%s in %s: %.2f s in the worker (pid %s), %.2f s round trip",
        Path(target).name,
        style_name,
        reply["seconds"],
        reply["pid"],
        time.perf_counter() - started,
    )
    return reply


def abandon(run_dir: str | os.PathLike[str]) -> bool:
    """From a run stopping on a signal: end the renders in flight now. When jobs of this
    process are rendering, the worker of ``run_dir`` is killed and they fail with
    :class:`Abandoned` (no job starts a new one); True if it was killed."""
    _abandoning.set()
    pid = _recorded_pid(Path(run_dir))
    if pid is None or _rendering == 0:
        return False
    kill(run_dir, pid)
    return True


def abandoned_renders() -> frozenset[str]:
    """The targets of the jobs of this process that failed with :class:`Abandoned`."""
    with _counts_lock:
        return frozenset(_abandoned)


def _check_abandoning(name: str) -> None:
    if _abandoning.is_set():
        raise Abandoned(f"{ABANDONED}: {name} was stopped")


def _abandoned_render(target: str | os.PathLike[str], name: str) -> Abandoned:
    """Record an abandoned render and remove the temp files the killed worker left beside
    ``target`` (:func:`i2i.core.files.atomic_path` names them ``.<stem>.<random>.tmp<suffix>``)."""
    with _counts_lock:
        _abandoned.add(str(target))
    target = Path(target)
    prefix = f".{target.stem[:40]}."
    for path in target.parent.glob(f"{glob.escape(prefix)}*"):
        if is_temp_name(path.name):
            path.unlink(missing_ok=True)
    return Abandoned(f"{ABANDONED} ({name} was stopped); the next run renders {target}")


def render_once(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    style_name: str,
    style: Mapping[str, Any],
    section: Mapping[str, Any],
    run_dir: str | os.PathLike[str] = RUN_DIR,
) -> dict[str, Any]:
    """:func:`render` for a one-off command (``i2i stylize``): a worker it starts is stopped at
    the end; one that was already running with the same settings (a workflow's) is used and
    left running."""
    folder = worker_dir(run_dir, style["backend"])
    before = status(folder)
    try:
        return render(source, target, style_name, style, section, run_dir)
    finally:
        now = status(folder)
        if now is not None and (before is None or now.get("pid") != before.get("pid")):
            stop(folder)
