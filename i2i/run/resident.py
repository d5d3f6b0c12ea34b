"""The resident worker: one process per backend and run folder that holds a loaded model and
renders images.

``python -m i2i.run.resident serve --backend NAME --loader module:function`` is started by the
first job of a resident backend's rule (:func:`i2i.run.resident_client.ensure_worker`). It
answers on the socket at once and loads the model in the background (the backend's loader, with
the settings it was started with); renders wait for the load and run one at a time. It stops
after ``idle_timeout`` seconds without requests (0: never), on a ``stop`` request, or after a
failed model load (so the next job retries). A failed image is reported to its job only; the
worker keeps serving. Nothing here knows a backend: FLUX is one loader among any. Started by a
job, it leaves SIGINT and SIGTERM to the run (it starts with both blocked,
:mod:`i2i.run.signals`), even when Slurm or systemd signal every process of the job: the run
stops it (``stop``), or kills it to abandon a render when the run stops on a signal.

Counters (model loads, images, failures) are kept per process and summed over every worker of
the folder in ``stats.json``.

Requests: ``{"op": "status"}``, ``{"op": "ready", "wait": seconds}`` (the status once the model
is loaded, or after ``wait`` seconds), ``{"op": "stop"}``, ``{"op": "render", "source", "target",
"style_name", "style"}``. Also usable by hand:
``python -m i2i.run.resident status|stop --run-dir .i2i/worker/flux-kontext``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from i2i import I2IError
from i2i.backends import function_named
from i2i.core.files import read_json, write_json
from i2i.run.resident_client import (
    RUN_DIR,
    STATUS_TIMEOUT,
    receive,
    send,
    socket_path,
    status,
    stop,
)

log = logging.getLogger("i2i.resident")

TOTALS = ("base_model_loads", "workers_started", "images", "failures")
MAX_READY_WAIT = 60.0


class Worker:
    """The loaded model, its counters and the idle clock, shared by the request threads."""

    def __init__(
        self,
        run_dir: Path,
        name: str,
        loader: str,
        settings: dict[str, Any],
        idle_timeout: float,
    ) -> None:
        self.run_dir = run_dir
        self.name = name
        self.loader = loader
        self.settings = settings
        self.idle_timeout = idle_timeout
        self.backend: Any = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.render_lock = threading.Lock()
        self.state_lock = threading.Lock()
        self.active = 0
        self.last_request = time.monotonic()
        self.started_at = time.time()
        self.counters = {"base_model_loads": 0, "images": 0, "failures": 0}
        self.load_seconds: float | None = None
        self.device: str | None = None
        try:
            previous = read_json(self.run_dir / "stats.json").get("totals", {})
        except (OSError, ValueError):
            previous = {}
        self.previous = {k: int(previous.get(k, 0)) for k in TOTALS}
        self.previous["workers_started"] += 1
        self.server: socketserver.BaseServer | None = None

    def load(self) -> None:
        """Load the model with the backend's loader (run in a background thread)."""
        started = time.perf_counter()
        try:
            try:
                load_model = function_named(self.loader)
            except (ImportError, AttributeError) as exc:
                raise I2IError(
                    f"the {self.name} backend's model loader {self.loader} cannot be imported "
                    f"where Snakemake runs: {exc}"
                ) from exc
            self.backend = load_model(self.settings)
            self.device = getattr(self.backend, "device", None)
            with self.state_lock:
                self.counters["base_model_loads"] += 1
                self.load_seconds = round(time.perf_counter() - started, 3)
            log.info("model loaded in %.2f s on %s", self.load_seconds, self.device)
        except I2IError as exc:
            self.load_error = str(exc)
        except Exception as exc:
            log.exception("model load failed")
            self.load_error = f"{self.name} model load failed: {type(exc).__name__}: {exc}"
        finally:
            self.write_stats()
            self.loaded.set()
        if self.load_error:
            log.error("%s", self.load_error)
            self.shutdown()

    def status(self) -> dict[str, Any]:
        with self.state_lock:
            state = "failed" if self.load_error else ("ready" if self.backend else "loading")
            return {
                "ok": True,
                "pid": os.getpid(),
                "state": state,
                "backend": self.name,
                "settings": self.settings,
                "device": self.device,
                "idle_timeout": self.idle_timeout,
                "started_at": self.started_at,
                "load_seconds": self.load_seconds,
                "error": self.load_error,
                "adapters": dict(getattr(self.backend, "adapters", {})),
                **(self.backend.info() if hasattr(self.backend, "info") else {}),
                **self.counters,
                "totals": self.totals(),
            }

    def totals(self) -> dict[str, int]:
        return {k: self.previous[k] + self.counters.get(k, 0) for k in TOTALS}

    def write_stats(self) -> None:
        write_json(self.run_dir / "stats.json", self.status())

    def render(self, message: dict[str, Any]) -> dict[str, Any]:
        """Render one image; any failure becomes an error reply for this request only."""
        self.loaded.wait()
        if self.load_error:
            return {"ok": False, "error": self.load_error, "pid": os.getpid()}
        name = message.get("style_name", "?")
        try:
            with self.render_lock:
                result = self.backend.render(
                    message["source"], message["target"], name, message["style"]
                )
        except I2IError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("render of %s in %s failed", message.get("source"), name)
            reply = {
                "ok": False,
                "error": f"{self.name} render failed: {type(exc).__name__}: {exc}",
            }
        else:
            reply = {"ok": True, **result}
        with self.state_lock:
            self.counters["images" if reply["ok"] else "failures"] += 1
        log.info(
            "%s %s in %s: %s",
            "rendered" if reply["ok"] else "failed",
            message.get("source"),
            name,
            reply.get("seconds", reply.get("error")),
        )
        self.write_stats()
        return {**reply, "pid": os.getpid()}

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """Dispatch one request."""
        op = message.get("op")
        if op == "status":
            return self.status()
        if op == "ready":
            self.loaded.wait(min(float(message.get("wait", 5)), MAX_READY_WAIT))
            return self.status()
        if op == "stop":
            log.info("stop requested")
            self.shutdown()
            return {"ok": True, "pid": os.getpid()}
        if op == "render":
            return self.render(message)
        return {"ok": False, "error": f"unknown request {op!r}", "pid": os.getpid()}

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Count a request in flight; the idle clock restarts when it ends."""
        with self.state_lock:
            self.active += 1
        try:
            yield
        finally:
            with self.state_lock:
                self.active -= 1
                self.last_request = time.monotonic()

    def shutdown(self) -> None:
        """Stop accepting requests; requests in flight finish (called from any thread)."""
        if self.server is not None:
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def watch_idle(self) -> None:
        """Stop the server once no request has come for ``idle_timeout`` seconds."""
        while True:
            time.sleep(min(1.0, max(0.05, self.idle_timeout / 4)))
            with self.state_lock:
                idle = self.active == 0 and (
                    time.monotonic() - self.last_request > self.idle_timeout
                )
            if idle:
                log.info("idle for %.0f s: stopping", self.idle_timeout)
                self.shutdown()
                return


def make_server(worker: Worker, path: Path) -> socketserver.ThreadingUnixStreamServer:
    """A threaded Unix-socket server that hands each request to ``worker``."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with worker.busy():
                try:
                    self.request.settimeout(STATUS_TIMEOUT)
                    message = receive(self.request)
                except (OSError, ValueError):
                    return
                if message is None:
                    return
                with contextlib.suppress(OSError):
                    send(self.request, worker.handle(message))

    path.unlink(missing_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    server.daemon_threads = False
    return server


def serve(
    run_dir: Path, name: str, loader: str, settings: dict[str, Any], idle_timeout: float
) -> int:
    """Run a worker until it is idle, stopped, or its model fails to load; 3 if one runs already."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "alive.lock").open("a") as alive:
        try:
            fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.error("another worker is running in %s", run_dir)
            return 3
        worker = Worker(run_dir, name, loader, settings, idle_timeout)
        path = socket_path(run_dir)
        # Before the socket exists: a client that finds this worker hung kills this pid.
        (run_dir / "worker.pid").write_text(f"{os.getpid()}\n", encoding="utf-8")
        server = make_server(worker, path)
        worker.server = server
        log.info("%s worker %d serving on %s with %s", name, os.getpid(), path, settings)
        worker.write_stats()
        threading.Thread(target=worker.load, daemon=True).start()
        if idle_timeout > 0:
            threading.Thread(target=worker.watch_idle, daemon=True).start()
        try:
            server.serve_forever(poll_interval=0.1)
        finally:
            server.server_close()
            path.unlink(missing_ok=True)
            worker.write_stats()
            log.info("worker %d stopped: %s", os.getpid(), worker.totals())
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve`` (started by jobs), ``status`` and ``stop`` (by hand)."""
    parser = argparse.ArgumentParser(prog="python -m i2i.run.resident", description=__doc__)
    parser.add_argument("command", choices=["serve", "status", "stop"])
    parser.add_argument("--run-dir", default=RUN_DIR, type=Path)
    parser.add_argument("--backend", default="", help="the style backend's name")
    parser.add_argument("--loader", default="", help="its model loader, module:function")
    parser.add_argument("--settings", default="{}", help="the loader's settings as JSON")
    parser.add_argument("--idle-timeout", default=600.0, type=float)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    )
    if args.command == "serve":
        if not args.backend or not args.loader:
            parser.error("serve needs --backend and --loader")
        settings = json.loads(args.settings)
        return serve(args.run_dir, args.backend, args.loader, settings, args.idle_timeout)
    if args.command == "stop":
        return 0 if stop(args.run_dir) else 1
    answer = status(args.run_dir)
    sys.stdout.write(json.dumps(answer, indent=2) + "\n" if answer else "no worker running\n")
    return 0 if answer else 1


if __name__ == "__main__":
    sys.exit(main())
