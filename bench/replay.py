"""Many cores on few: each image job's work replayed as a wait as long as that work took.

``bench/manycore.py`` emulates a run on many cores on a machine with few. Each per-image job
(metadata, places, caption, preprocess, stylize, watermark) waits as long as its stage took on
average in one plain process, then copies the file that stage made in a reference run of the
same library. The waits take no CPU, so the real cores go to what does: the Snakemake
process's scheduling and dispatch, the aggregating jobs, the pool's own dispatch. Publishing
is done for real (each side publishes to its own folder; a few milliseconds a job).

The workflow side installs it with :func:`install_from_environment` from a ``sitecustomize``
(every process of the run: Snakemake's and its workers); the pool side passes a
:class:`Replay` as the ``step`` of ``overhead.photo_chain``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ENVIRONMENT = "I2I_BENCH_REPLAY"

# The job functions of i2i.run.jobs that are replayed, and the stage each one does.
JOB_STAGES = {
    "metadata": "metadata",
    "places": "places",
    "captions": "captions",
    "preprocess": "preprocess",
    "stylize_pool": "stylize",
    "watermark": "watermark",
}


@dataclass(frozen=True)
class Replay:
    """Replays stages from ``reference`` (a folder laid out as the workflow's, as ``root``
    is; outputs are given under ``root``, or relative to it when it is the working folder),
    each waiting ``seconds[stage]``; ``publish`` is done for real."""

    reference: Path
    seconds: dict[str, float]
    root: Path = Path()

    def __call__(self, stage: str, output: Path, make: Callable[[], object]) -> None:
        if stage == "publish":
            make()
            return
        time.sleep(self.seconds[stage])
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(output.name + ".replay")
        shutil.copyfile(self.reference / output.relative_to(self.root), partial)
        partial.replace(output)


def write_settings(path: Path, reference: Path, seconds: dict[str, float]) -> None:
    """The file that :func:`install_from_environment` reads."""
    path.write_text(json.dumps({"reference": str(reference), "seconds": seconds}))


def replace_jobs(module: ModuleType, replay: Replay) -> None:
    """Swap the replayed job functions of ``i2i.run.jobs`` for replays, under the same names
    (the Snakemake process hands them to its workers by name)."""
    for name, stage in JOB_STAGES.items():

        def job(
            inputs: Any, output: str, params: Any, wildcards: Any, config: Any, stage: str = stage
        ) -> None:
            replay(stage, Path(output), lambda: None)

        job.__name__ = job.__qualname__ = name
        job.__module__ = module.__name__
        setattr(module, name, job)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` each time the module ``name`` is imported (executed)."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name, self.then = name, then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self.then(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_from_environment() -> None:
    """In each process of a replayed run (``$I2I_BENCH_REPLAY`` names the settings): the
    image jobs of ``i2i.run.jobs`` become replays once that module is imported."""
    settings = os.environ.get(ENVIRONMENT)
    if not settings:
        return
    values = json.loads(Path(settings).read_text())
    replay = Replay(Path(values["reference"]), values["seconds"])
    sys.meta_path.insert(0, _AfterImport("i2i.run.jobs", lambda m: replace_jobs(m, replay)))


SITECUSTOMIZE = """
import importlib.util
import sys
_spec = importlib.util.spec_from_file_location("i2i_bench_replay", {path!r})
_module = sys.modules["i2i_bench_replay"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
_module.install_from_environment()
"""


def sitecustomize_source() -> str:
    """A ``sitecustomize.py`` that loads this file (under its own name: the bench folder
    stays off the run's import path) and installs the replay."""
    return SITECUSTOMIZE.format(path=str(Path(__file__).resolve()))
