"""The flux-kontext backend on a tiny random FLUX-Kontext pipeline: the worker protocol, the
dtype the model loads in, request timeouts and hung workers, torch.compile with hot-swapped LoRAs,
``i2i stylize`` with a FLUX style, and the stylize_flux rule through Snakemake (model loaded once
per run, deterministic, one LoRA per style).

Needs the ``flux`` extra (torch, diffusers, transformers, peft); skipped without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

for _module in ("torch", "diffusers", "transformers", "peft"):
    pytest.importorskip(
        _module, reason=f"flux tests need {_module}: pip install 'i2i-workflow[flux]'"
    )

from i2i import I2IError, backends  # noqa: E402
from i2i.backends.flux_settings import Settings  # noqa: E402
from i2i.core.files import read_json  # noqa: E402
from i2i.run import resident_client as flux_client  # noqa: E402
from i2i.run.resident_client import (  # noqa: E402
    ensure_worker,
    read_stats,
    render,
    status,
    stop,
    worker_alive,
)
from tests.conftest import REPO, SAMPLE, copy_workflow, snakemake  # noqa: E402

ALBUM = "Côte d'Azur & Paris"
STYLES = ("tiny-a", "tiny-b")
# The FLUX backend's worker folder under a run folder (.i2i/worker/flux-kontext).
WORKER = "flux-kontext"
FLUX = backends.backend(WORKER)


def build_assets(folder: Path) -> dict[str, Path]:
    """A tiny random FLUX-Kontext model folder, LoRAs that change its output (a, b: rank 4;
    c: rank 8; d: rank 16), one bad LoRA."""
    import torch
    from flux_models import build_pipeline, save_random_lora
    from safetensors.torch import save_file

    build_pipeline("tiny").save_pretrained(folder / "model")
    paths = {"model": folder / "model"}
    for index, (name, rank) in enumerate((("a", 4), ("b", 4), ("c", 8), ("d", 16))):
        paths[name] = save_random_lora(folder / f"lora_{name}", name, seed=100 + index, rank=rank)
    paths["bad"] = folder / "bad.safetensors"
    save_file({"unet.nothing.lora_A.weight": torch.zeros(2, 2)}, str(paths["bad"]))
    return paths


def style(lora: Path, seed: int = 7, scale: float = 1.0) -> dict:
    return {
        "backend": "flux-kontext",
        "description": "tiny test style",
        "lora": {"path": str(lora)},
        "prompt": "Turn this image into the Test style.",
        "lora_scale": scale,
        "steps": 2,
        "guidance": 2.5,
        "seed": seed,
        "size": 64,
        "resize_input": False,
    }


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_assets(tmp_path_factory.mktemp("flux_assets"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / ".i2i" / "worker"
    yield folder
    stop(folder / WORKER)


@pytest.fixture
def inductor_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A compile cache of the test's own (torch sets these variables once it has compiled)."""
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    return tmp_path / "inductor"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    target = tmp_path / "photo.jpg"
    shutil.copy(SAMPLE / ALBUM / "cafe_creme.jpg", target)
    return target


def flux_config(assets: dict[str, Path], idle_timeout: float = 60) -> dict:
    return {"model": str(assets["model"]), "dtype": "float32", "idle_timeout": idle_timeout}


def test_snakemake_process_does_not_import_torch() -> None:
    code = (
        "import sys, i2i.run.jobs, i2i.run.resident_client, i2i.run.logs; "
        "assert not {'torch', 'diffusers'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_two_jobs_racing_start_one_worker(assets: dict[str, Path], run_dir: Path) -> None:
    code = (
        "import json, sys; from i2i import backends; "
        "from i2i.run.resident_client import ensure_worker; "
        "b = backends.backend('flux-kontext'); s = b.worker_settings(json.loads(sys.argv[2])); "
        "print(ensure_worker(sys.argv[1], b, s, 60)['pid'])"
    )
    config = json.dumps(flux_config(assets))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(run_dir / WORKER), config],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    pids = {racer.communicate(timeout=120)[0].strip() for racer in racers}
    assert len(pids) == 1 and all(racer.returncode == 0 for racer in racers)
    totals = read_json(run_dir / WORKER / "stats.json")["totals"]
    assert totals["workers_started"] == 1


def test_crashed_worker_is_restarted(
    assets: dict[str, Path], run_dir: Path, photo: Path, tmp_path: Path
) -> None:
    flux = flux_config(assets)
    first = render(photo, tmp_path / "1.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    os.kill(first["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while worker_alive(run_dir / WORKER) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = render(photo, tmp_path / "2.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    assert second["pid"] != first["pid"]
    assert sha(tmp_path / "1.webp") == sha(tmp_path / "2.webp")
    totals = status(run_dir / WORKER)["totals"]
    assert totals["workers_started"] == 2 and totals["base_model_loads"] == 2


def test_failed_image_fails_only_its_request(
    assets: dict[str, Path], run_dir: Path, photo: Path, tmp_path: Path
) -> None:
    flux = flux_config(assets)
    broken = tmp_path / "broken.webp"
    broken.write_bytes(b"not an image")
    with pytest.raises(I2IError, match="cannot read image"):
        render(broken, tmp_path / "x.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    with pytest.raises(I2IError, match="no weights that match"):
        render(photo, tmp_path / "y.webp", "tiny-bad", style(assets["bad"]), flux, run_dir)
    with pytest.raises(I2IError, match="not found"):
        render(photo, tmp_path / "z.webp", "tiny-gone", style(tmp_path / "gone.st"), flux, run_dir)
    good = render(photo, tmp_path / "ok.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    answer = status(run_dir / WORKER)
    assert answer["pid"] == good["pid"]
    assert (answer["images"], answer["failures"], answer["base_model_loads"]) == (1, 3, 1)
    assert not (tmp_path / "x.webp").exists() and not (tmp_path / "y.webp").exists()


def test_missing_model_is_a_clear_error(tmp_path: Path, run_dir: Path, photo: Path) -> None:
    flux = {"model": str(tmp_path / "no-such-model"), "idle_timeout": 60}
    with pytest.raises(I2IError, match="not a diffusers model folder"):
        render(photo, tmp_path / "x.webp", "tiny-a", style(tmp_path / "a.st"), flux, run_dir)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("GatedRepoError", "accept the licence on the model page.*`hf auth login`.*HF_TOKEN"),
        ("RepositoryNotFoundError", "no such repository"),
        ("LocalEntryNotFoundError", "not in the local Hugging Face cache"),
    ],
)
def test_hub_errors_become_clear_messages(error: str, message: str) -> None:
    from huggingface_hub import errors

    httpx2 = pytest.importorskip("httpx2", reason="needs huggingface_hub 2 (httpx2 responses)")

    from i2i.backends.flux import _hub_error

    response = httpx2.Response(401, request=httpx2.Request("GET", "https://huggingface.co/x"))
    cls = getattr(errors, error)
    cause = cls("hub says no") if error.startswith("Local") else cls("401", response=response)
    try:
        try:
            raise cause
        except Exception as inner:
            raise OSError("Cannot load model x") from inner
    except OSError as exc:
        assert re.search(message, str(_hub_error(exc, "flux.model", "org/model")))


def test_out_of_memory_is_a_clear_error() -> None:
    import torch
    from PIL import Image

    from i2i.backends.flux import Backend

    def pipe(**_: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    backend = Backend(pipe, "cpu")
    with pytest.raises(I2IError, match=r"out of GPU memory at 64×64: set `flux.offload: model`"):
        backend.generate(Image.new("RGB", (64, 64)), style(Path("unused")))


def test_idle_worker_stops_and_stop_request(assets: dict[str, Path], run_dir: Path) -> None:
    settings = FLUX.worker_settings(flux_config(assets))
    ensure_worker(run_dir / WORKER, FLUX, settings, idle_timeout=1)
    assert worker_alive(run_dir / WORKER)
    deadline = time.monotonic() + 20
    while worker_alive(run_dir / WORKER) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not worker_alive(run_dir / WORKER) and status(run_dir / WORKER) is None
    ensure_worker(run_dir / WORKER, FLUX, settings, idle_timeout=60)
    assert stop(run_dir / WORKER) and not worker_alive(run_dir / WORKER)


def pixels(path: Path) -> object:
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_auto_dtype_is_bfloat16_or_float32_and_float16_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from i2i.backends.flux import select_dtype

    assert select_dtype("auto", "cpu") == torch.float32
    assert select_dtype("bfloat16", "cpu") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: True)
    assert select_dtype("auto", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: False)
    assert select_dtype("auto", "cuda") == torch.float32, "never float16 by itself"
    for device in ("cpu", "cuda"):
        with pytest.raises(I2IError, match="float16 is refused: FLUX overflows"):
            select_dtype("float16", device)


@pytest.mark.parametrize(("requested", "expected"), [("bfloat16", "bfloat16"), ("auto", "float32")])
def test_the_model_loads_in_the_configured_dtype(
    assets: dict[str, Path], photo: Path, tmp_path: Path, requested: str, expected: str
) -> None:
    import torch

    from i2i.backends.flux import Backend, loaded_dtypes

    settings = Settings(model=str(assets["model"]), device="cpu", dtype=requested)
    backend = Backend.load(settings)
    dtype = getattr(torch, expected)
    models = ("transformer", "text_encoder", "text_encoder_2", "vae")
    assert set(loaded_dtypes(backend.pipe)) == set(models)
    for name in models:
        parameters = list(getattr(backend.pipe, name).parameters())
        assert parameters and {p.dtype for p in parameters} == {dtype}, name
    reply = backend.render(str(photo), str(tmp_path / "out.webp"), "tiny-a", style(assets["a"]))
    assert reply["dtype"] == expected and backend.info()["dtype"] == expected
    assert pixels(tmp_path / "out.webp").shape == (32, 64, 3)


def test_a_diffusers_that_ignores_dtype_is_refused(
    assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import FluxKontextPipeline

    from i2i.backends import flux

    with pytest.raises(I2IError, match=r"diffusers 0\.39\.1 ignores flux\.dtype.*>=0\.40"):
        flux.check_diffusers("0.39.1")
    flux.check_diffusers("0.40.0")
    flux.check_diffusers("1.0.0.dev0")

    original = FluxKontextPipeline.from_pretrained.__func__

    def like_diffusers_039(cls: type, model: str, **kwargs: object) -> FluxKontextPipeline:
        kwargs.pop("dtype")  # 0.35-0.39 do not know `dtype=`: the model stays in float32
        return original(cls, model, **kwargs)

    monkeypatch.setattr(FluxKontextPipeline, "from_pretrained", classmethod(like_diffusers_039))
    settings = Settings(model=str(assets["model"]), device="cpu", dtype="bfloat16")
    with pytest.raises(I2IError, match=r"asked for torch\.bfloat16.*transformer as torch\.float32"):
        flux.load_pipeline(settings)


# A stand-in worker that answers status like a loaded one and never answers a render.
HUNG_WORKER = r"""
import fcntl, json, os, socket, sys
from pathlib import Path
from i2i.run.resident_client import receive, send, socket_path
run_dir, settings = Path(sys.argv[1]), json.loads(sys.argv[2])
run_dir.mkdir(parents=True, exist_ok=True)
alive = (run_dir / "alive.lock").open("a")
fcntl.flock(alive, fcntl.LOCK_EX)
(run_dir / "worker.pid").write_text(f"{os.getpid()}\n")
path = socket_path(run_dir)
path.unlink(missing_ok=True)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(str(path))
server.listen(8)
print("listening", flush=True)
held = []
while True:
    connection, _ = server.accept()
    message = receive(connection)
    if message and message.get("op") == "status":
        send(connection, {"ok": True, "pid": os.getpid(), "state": "ready", "settings": settings})
        connection.close()
    else:
        held.append(connection)
"""


def test_a_hung_render_fails_its_job_and_the_worker_is_replaced(
    assets: dict[str, Path], run_dir: Path, photo: Path, tmp_path: Path
) -> None:
    # The fake worker never answers a render: any timeout fails it. 5 s leaves the fake, a
    # plain Python loop, time to answer the status probe on a loaded machine.
    flux = {**flux_config(assets), "request_timeout": 5}
    settings = json.dumps(FLUX.worker_settings(flux))
    hung = subprocess.Popen(
        [sys.executable, "-c", HUNG_WORKER, str(run_dir / WORKER), settings],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert hung.stdout.readline().strip() == "listening"
        started = time.monotonic()
        with pytest.raises(I2IError) as failure:
            render(photo, tmp_path / "x.webp", "tiny-a", style(assets["a"]), flux, run_dir)
        assert time.monotonic() - started < 60, "failed by the request timeout, not later"
        assert hung.wait(timeout=30) == -signal.SIGKILL
    finally:
        if hung.poll() is None:
            hung.kill()
    message = str(failure.value)
    assert "\n" not in message
    assert f"pid {hung.pid}" in message and "within 5 s (flux.request_timeout)" in message
    assert not (tmp_path / "x.webp").exists()
    # The replacement starts and renders on a loaded machine: no tight timeout there.
    patient = {**flux, "request_timeout": 600}
    reply = render(photo, tmp_path / "y.webp", "tiny-a", style(assets["a"]), patient, run_dir)
    assert reply["pid"] != hung.pid and (tmp_path / "y.webp").stat().st_size > 0


def test_a_stopped_worker_is_killed_and_replaced(
    assets: dict[str, Path],
    run_dir: Path,
    photo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stopped worker is found by its status probe going unanswered; the renders themselves
    # (a fresh worker's first image takes seconds on a loaded machine) get no tight timeout.
    monkeypatch.setattr(flux_client, "STATUS_TIMEOUT", 5.0)
    flux = {**flux_config(assets), "request_timeout": 600}
    first = render(photo, tmp_path / "1.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    os.kill(first["pid"], signal.SIGSTOP)
    try:
        second = render(photo, tmp_path / "2.webp", "tiny-a", style(assets["a"]), flux, run_dir)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(first["pid"], signal.SIGCONT)
    assert second["pid"] != first["pid"]
    assert sha(tmp_path / "1.webp") == sha(tmp_path / "2.webp")
    proc = Path(f"/proc/{first['pid']}/status")
    assert not proc.exists() or "\nState:\tZ" in proc.read_text(), "the hung worker was killed"


def test_compiled_model_swaps_loras_of_other_ranks_without_recompiling(
    assets: dict[str, Path],
    run_dir: Path,
    photo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from i2i.backends.flux import Backend

    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # torch sets it once used
        monkeypatch.delenv(name, raising=False)
    flux = {**flux_config(assets), "compile": True, "lora_rank": 8, "request_timeout": 300}
    styles = {"tiny-a": style(assets["a"]), "tiny-c": style(assets["c"], scale=0.5)}
    graphs = []
    for index, name in enumerate(["tiny-a", "tiny-c", "tiny-a", "tiny-c"]):
        render(photo, tmp_path / f"{index}.png", name, styles[name], flux, run_dir)
        graphs.append(status(run_dir / WORKER)["compiled_graphs"])
    assert graphs[0] > 0 and len(set(graphs)) == 1, f"recompiled on a LoRA swap: {graphs}"
    assert sha(tmp_path / "0.png") == sha(tmp_path / "2.png")
    assert sha(tmp_path / "1.png") == sha(tmp_path / "3.png")
    assert sha(tmp_path / "0.png") != sha(tmp_path / "1.png")

    with pytest.raises(I2IError, match=r"rank 16, more than flux\.lora_rank 8.*lora_rank: 16"):
        render(photo, tmp_path / "x.png", "tiny-d", style(assets["d"]), flux, run_dir)
    render(photo, tmp_path / "4.png", "tiny-c", styles["tiny-c"], flux, run_dir)
    answer = status(run_dir / WORKER)
    assert answer["compiled_graphs"] == graphs[0] and answer["base_model_loads"] == 1
    assert sha(tmp_path / "4.png") == sha(tmp_path / "1.png")
    assert any((run_dir / "compile-cache").iterdir()), "compile cache in the workflow folder"

    # The compiled, hot-swapped LoRAs (scale included) render what the plain model does,
    # up to compiled numerics.
    eager = Backend.load(Settings(model=str(assets["model"]), dtype="float32"))
    for index, name in enumerate(["tiny-a", "tiny-c"]):
        eager.render(str(photo), str(tmp_path / f"eager{index}.png"), name, styles[name])
        difference = abs(pixels(tmp_path / f"eager{index}.png") - pixels(tmp_path / f"{index}.png"))
        assert difference.max() <= 2, name


def test_i2i_stylize_renders_a_flux_style_in_the_format_of_its_extension(
    assets: dict[str, Path], photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from i2i.cli import main

    workdir = tmp_path / "workflow"
    (workdir / "loras").mkdir(parents=True)
    shutil.copy(assets["a"], workdir / "loras" / "a.safetensors")
    entry = {**style(Path("loras/a.safetensors")), "size": 64}  # relative to the workflow
    registry = {"styles": {"tiny-a": entry}}
    (workdir / "styles.yaml").write_text(yaml.safe_dump(registry), encoding="utf-8")
    config = {"flux": {"model": str(assets["model"]), "dtype": "bfloat16", "idle_timeout": 60}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    args = ["-d", str(workdir), "stylize", str(photo), "tiny-a", "out.png", "--long-side", "96"]
    assert main(args) == 0
    with Image.open(elsewhere / "out.png") as image:
        assert image.format == "PNG" and image.size == (64, 32)
    assert not worker_alive(workdir / ".i2i" / "worker" / WORKER), "a worker it started is stopped"
    assert read_stats(workdir / ".i2i" / "worker" / WORKER)["dtype"] == "bfloat16"

    assert main([*args[:4], "tiny-a", "out.gif"]) == 1
    assert not (elsewhere / "out.gif").exists()
    assert read_stats(workdir / ".i2i" / "worker" / WORKER)["totals"]["workers_started"] == 1


@pytest.fixture(scope="module")
def flux_workflow(
    tmp_path_factory: pytest.TempPathFactory, assets: dict[str, Path]
) -> tuple[Path, list[str]]:
    """A workflow copy set up for two tiny LoRA styles over an album of 3 photos."""
    workdir = copy_workflow(tmp_path_factory.mktemp("flux_workflow"))
    albums = workdir / "albums"
    shutil.copytree(SAMPLE / ALBUM, albums / ALBUM)
    styles = {"styles": {name: style(assets[name[-1]]) for name in STYLES}}
    (workdir / "flux_styles.yaml").write_text(yaml.safe_dump(styles), encoding="utf-8")
    config = {
        "albums_dir": str(albums),
        "styles_file": str(workdir / "flux_styles.yaml"),
        "styles": list(STYLES),
        "preprocess": {"long_side": 64},
        "flux": flux_config(assets, idle_timeout=120),
    }
    (workdir / "flux_config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    photos = sorted(p.stem for p in (albums / ALBUM).iterdir())
    targets = [f"results/styled/{ALBUM}/{s}/{p}.webp" for s in STYLES for p in photos]
    yield workdir, targets
    stop(workdir / ".i2i" / "worker" / WORKER)


def test_snakemake_run_loads_the_model_once(flux_workflow: tuple[Path, list[str]]) -> None:
    workdir, targets = flux_workflow
    run_dir = workdir / ".i2i" / "worker"
    snakemake(workdir, *targets, "--configfile", "flux_config.yaml")
    outputs = [workdir / t for t in targets]
    assert len(outputs) == 6 and all(p.stat().st_size > 0 for p in outputs)
    stats = read_json(run_dir / WORKER / "stats.json")
    assert stats["totals"]["base_model_loads"] == 1 and stats["totals"]["workers_started"] == 1
    assert stats["images"] == 6 and stats["failures"] == 0
    assert len(stats["adapters"]) == 2
    first = {t: sha(workdir / t) for t in targets}
    for target in targets[:3]:
        assert first[target] != first[target.replace("tiny-a", "tiny-b")]
    log = (workdir / "logs" / "stylize" / ALBUM / "tiny-a" / "cafe_creme.log").read_text("utf-8")
    assert "in the worker" in log
    assert not worker_alive(run_dir / WORKER), "the run stops its worker when it ends"

    for target in targets:
        (workdir / target).unlink()
    snakemake(workdir, *targets, "--configfile", "flux_config.yaml")
    assert {t: sha(workdir / t) for t in targets} == first
    totals = read_json(run_dir / WORKER / "stats.json")["totals"]
    assert totals["base_model_loads"] == 2 and totals["workers_started"] == 2


def test_the_step_cache_skips_steps_only_above_its_threshold(
    assets: dict[str, Path], photo: Path, tmp_path: Path
) -> None:
    """flux.cache: first_block. A threshold of 0 never reuses a step (the same pixels as no
    cache); a huge one reuses every step after the first (other pixels)."""
    from i2i.backends.flux import Backend

    rendered = {}
    for name, cache, threshold in (
        ("plain", "none", 0.0),
        ("zero", "first_block", 0.0),
        ("all", "first_block", 1e9),
    ):
        settings = Settings(
            model=str(assets["model"]),
            device="cpu",
            dtype="float32",
            cache=cache,
            cache_threshold=threshold,
        )
        backend = Backend.load(settings)
        assert backend.pipe.transformer.is_cache_enabled is (cache != "none")
        out = tmp_path / f"{name}.webp"
        backend.render(str(photo), str(out), "tiny-a", {**style(assets["a"]), "steps": 4})
        rendered[name] = pixels(out)
    assert (rendered["zero"] == rendered["plain"]).all()
    assert not (rendered["all"] == rendered["plain"]).all()
    both = Settings(model=str(assets["model"]), device="cpu", compile=True, cache="first_block")
    with pytest.raises(I2IError, match=r"flux\.compile with flux\.cache is not supported"):
        Backend.load(both)


def test_int8_weights_render_with_a_lora_and_float8_needs_a_recent_gpu(
    assets: dict[str, Path], photo: Path, tmp_path: Path
) -> None:
    """flux.quantize: int8 quantises the transformer's weights with torchao (any device); the
    style's LoRA still applies. float8 is refused where there is no GPU with float8 units."""
    pytest.importorskip("torchao", reason="pip install 'i2i-workflow[quantize]'")
    import numpy as np

    from i2i.backends.flux import Backend

    rendered = {}
    for quantize in ("none", "int8"):
        settings = Settings(model=str(assets["model"]), device="cpu", quantize=quantize)
        backend = Backend.load(settings)
        weight = backend.pipe.transformer.transformer_blocks[0].attn.to_q.weight
        assert ("Int8" in type(weight).__name__) is (quantize == "int8")
        for lora in ("a", "b"):
            out = tmp_path / f"{quantize}-{lora}.webp"
            backend.render(str(photo), str(out), f"tiny-{lora}", style(assets[lora]))
            rendered[quantize, lora] = pixels(out)
    assert not (rendered["int8", "a"] == rendered["int8", "b"]).all(), "the LoRA applies"
    difference = np.abs(rendered["int8", "a"] - rendered["none", "a"])
    assert difference.mean() < 8, "int8 weights change pixels only slightly"
    with pytest.raises(I2IError, match="float8 needs a CUDA GPU"):
        Backend.load(Settings(model=str(assets["model"]), device="cpu", quantize="float8"))


@pytest.fixture(scope="module")
def odd_loras(assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """LoRAs as real trainers and tools leave them: one that stores its config with dropout
    0.5 and alpha 4 at rank 8 (scale 0.5), one with infinite weights, one in BFL's layout, one
    over more layers than the others (with its config) and one over fewer."""
    import torch
    from flux_models import save_random_lora
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("odd_loras")
    paths = {
        "dropout": save_random_lora(
            folder / "dropout", "dropout", seed=300, rank=8, alpha=4, dropout=0.5, store_config=True
        ),
        "wide": save_random_lora(
            folder / "wide",
            "wide",
            seed=301,
            target_modules=("to_q", "proj_mlp", "ff.net.2"),
            store_config=True,
        ),
        "narrow": save_random_lora(folder / "narrow", "narrow", seed=302, target_modules=("to_k",)),
    }
    # Strong enough that its scale shows clearly on the tiny model (alpha-blind: < 40 dB).
    with safe_open(str(paths["dropout"]), "pt") as opened:
        stored = opened.metadata()
    strong = {
        k: v * 8 if ".lora_B." in k else v for k, v in load_file(str(paths["dropout"])).items()
    }
    save_file(strong, str(paths["dropout"]), metadata=stored)
    weights = load_file(str(assets["a"]))
    paths["inf"] = folder / "inf.safetensors"
    save_file({k: torch.full_like(v, math.inf) for k, v in weights.items()}, str(paths["inf"]))
    paths["bfl"] = folder / "bfl.safetensors"
    save_file(
        {
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": torch.ones(4, 8),
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": torch.ones(24, 4),
        },
        str(paths["bfl"]),
    )
    return paths


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def test_a_lora_with_dropout_renders_the_same_bytes_every_time(
    assets: dict[str, Path], odd_loras: dict[str, Path], photo: Path, tmp_path: Path
) -> None:
    """A LoRA file whose stored config has dropout: every module in eval mode after the load,
    so the same seed gives the same bytes, also after a switch to another style and back."""
    from i2i.backends.flux import Backend, training_modules

    backend = Backend.load(Settings(model=str(assets["model"]), device="cpu"))
    dropout, other = style(odd_loras["dropout"]), style(assets["a"])
    outputs = []
    sequence = [("tiny-dropout", dropout)] * 2 + [("tiny-a", other), ("tiny-dropout", dropout)]
    for index, (name, chosen) in enumerate(sequence):
        target = tmp_path / f"{index}.webp"
        backend.render(str(photo), str(target), name, chosen)
        assert training_modules(backend.pipe) == [], "a module in training mode"
        outputs.append(sha(target))
    assert outputs[0] == outputs[1] == outputs[3] != outputs[2]


def test_compiled_and_eager_renders_of_an_alpha_lora_agree(
    assets: dict[str, Path],
    odd_loras: dict[str, Path],
    photo: Path,
    tmp_path: Path,
    inductor_cache: Path,
) -> None:
    """alpha 4 at rank 8 scales the LoRA by 0.5 in both modes: the compiled slot takes the
    file's alphas and stored config; the hot-swapped render repeats to the byte."""
    from i2i.backends.flux import Backend, training_modules

    model = str(assets["model"])
    eager = Backend.load(Settings(model=model, device="cpu"))
    chosen = style(odd_loras["dropout"])
    eager.render(str(photo), str(tmp_path / "eager.png"), "tiny-dropout", chosen)
    doubled = {**chosen, "lora_scale": 2.0}  # what an alpha-blind load gives: scale 1.0
    eager.render(str(photo), str(tmp_path / "alpha-blind.png"), "tiny-dropout", doubled)

    compiled = Backend.load(Settings(model=model, device="cpu", compile=True, lora_rank=16))
    for index, (name, lora) in enumerate(
        [("tiny-dropout", chosen), ("tiny-a", style(assets["a"])), ("tiny-dropout", chosen)]
    ):
        compiled.render(str(photo), str(tmp_path / f"compiled-{index}.png"), name, lora)
        assert training_modules(compiled.pipe) == []
    assert sha(tmp_path / "compiled-0.png") == sha(tmp_path / "compiled-2.png")
    assert compiled.info()["lora_reads"] == 2, "each LoRA read once"
    same = psnr(pixels(tmp_path / "compiled-0.png"), pixels(tmp_path / "eager.png"))
    blind = psnr(pixels(tmp_path / "alpha-blind.png"), pixels(tmp_path / "eager.png"))
    assert same >= 40, f"compiled vs eager: {same:.1f} dB (alpha-blind: {blind:.1f} dB)"
    assert blind < 40, f"an alpha-blind load would fail this test ({blind:.1f} dB)"


def test_loras_over_different_layers_share_the_compiled_slot(
    assets: dict[str, Path],
    odd_loras: dict[str, Path],
    photo: Path,
    tmp_path: Path,
    inductor_cache: Path,
) -> None:
    """Attention-only, wider (MLP layers too) and narrower LoRAs in one compiled run: the
    slot grows once to cover the wider one (one recompile), a narrower one fits as it is, and
    every render matches the eager one; a style repeats to the byte after the growth."""
    from i2i.backends.flux import Backend

    model = str(assets["model"])
    eager = Backend.load(Settings(model=model, device="cpu"))
    compiled = Backend.load(Settings(model=model, device="cpu", compile=True, lora_rank=8))
    sequence = [("tiny-a", assets["a"]), ("tiny-wide", odd_loras["wide"])]
    sequence += [("tiny-narrow", odd_loras["narrow"]), ("tiny-a", assets["a"])]
    graphs = []
    for index, (name, lora) in enumerate(sequence):
        eager.render(str(photo), str(tmp_path / f"eager-{index}.png"), name, style(lora))
        compiled.render(str(photo), str(tmp_path / f"compiled-{index}.png"), name, style(lora))
        graphs.append(compiled.info()["compiled_graphs"])
        same = psnr(
            pixels(tmp_path / f"compiled-{index}.png"), pixels(tmp_path / f"eager-{index}.png")
        )
        assert same >= 40, f"{name}: compiled vs eager {same:.1f} dB"
    assert len({sha(tmp_path / f"eager-{index}.png") for index in range(3)}) == 3
    assert sha(tmp_path / "compiled-0.png") == sha(tmp_path / "compiled-3.png")
    assert graphs[1] <= 2 * graphs[0] and graphs[1] == graphs[2] == graphs[3], graphs
    assert compiled.info()["lora_reads"] == 3, "each LoRA read once"


def test_a_nan_render_fails_its_job_and_writes_nothing(
    assets: dict[str, Path], odd_loras: dict[str, Path], photo: Path, tmp_path: Path
) -> None:
    from i2i.backends.flux import Backend
    from i2i.core.quality import BrokenRender

    backend = Backend.load(Settings(model=str(assets["model"]), device="cpu"))
    target = tmp_path / "broken.webp"
    with pytest.raises(BrokenRender) as failure:
        backend.render(str(photo), str(target), "tiny-inf", style(odd_loras["inf"]))
    message = str(failure.value)
    assert "\n" not in message and message.startswith("photo.jpg in tiny-inf: broken render")
    assert "NaN or infinite" in message and not target.exists()
    assert not list(tmp_path.glob(".*")), "no temp file left"


def test_a_lora_in_the_bfl_layout_is_refused_naming_it(
    assets: dict[str, Path], odd_loras: dict[str, Path], photo: Path, tmp_path: Path
) -> None:
    from i2i.backends.flux import Backend

    backend = Backend.load(Settings(model=str(assets["model"]), device="cpu"))
    with pytest.raises(I2IError, match=r"tiny-bfl: .* BFL/ComfyUI layout \(double_blocks"):
        backend.render(str(photo), str(tmp_path / "x.webp"), "tiny-bfl", style(odd_loras["bfl"]))


def test_out_of_memory_names_the_next_step() -> None:
    from i2i.backends.flux import memory_hint

    steps = [
        memory_hint(Settings(offload=offload, quantize=quantize))
        for offload, quantize in (("none", "none"), ("model", "none"), ("sequential", "none"))
    ]
    assert "`flux.offload: model`" in steps[0]
    assert "`flux.offload: sequential`" in steps[1] and "offload: model" not in steps[1]
    assert "`flux.quantize: int8`" in steps[2]
    assert "smallest" in memory_hint(Settings(offload="sequential", quantize="int8"))


def test_the_gpu_check_runs_on_the_tiny_model() -> None:
    """bench/gpu-check.sh --tiny: the GPU check's own code on this CPU (its time is logged,
    not asserted): every stage has a row, hot-swaps do not recompile."""
    stages = ("plain", "compile", "compile+float8", "compile+channels-last", "compile+cudnn")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu-check.sh"), "--tiny", "--stages", ",".join(stages)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = {line.split(" | ")[0]: line.split(" | ") for line in result.stdout.splitlines()}
    assert rows["plain"][-1] == "inf" and len(rows["plain"]) == 8
    graphs, recompiles = (int(n) for n in rows["compile"][6].split(" / "))
    assert graphs > 0 and recompiles == 0, rows["compile"]
    assert rows["compile+float8"][1].startswith("skipped: float8 needs CUDA")
    assert float(rows["compile+channels-last"][-1]) >= 40, "channels-last renders the same"
    assert rows["compile+cudnn"][1] == "skipped: cudnn attention needs CUDA"
    logging.getLogger("i2i.tests.flux").info(
        "bench/gpu-check.sh --tiny: %.1f s\n%s", time.monotonic() - started, result.stdout
    )


def fake_hub_cache(root: Path, repo: str, files: dict[str, Path]) -> Path:
    """A Hugging Face hub cache holding ``files`` of ``repo``'s main revision."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd", encoding="utf-8")
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        shutil.copy(source, snapshot / name)
    return root


@pytest.fixture
def counting_hub() -> Iterator[list[str]]:
    """An HTTP server standing in for the hub: it records every request and answers 503."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_error(503)

        do_HEAD = do_GET

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen.append(f"http://127.0.0.1:{server.server_address[1]}")
    yield seen
    server.shutdown()
    server.server_close()


def test_a_cached_hub_lora_is_pinned_and_makes_no_hub_call(
    assets: dict[str, Path],
    run_dir: Path,
    photo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counting_hub: list[str],
) -> None:
    """A registry entry with repo and no weight_name: the one cached file is found, pinned in
    cache/lora_weight_names.json and loaded from the cache by path; the hub sees no request."""
    from i2i.backends import lora_files

    cache = fake_hub_cache(tmp_path / "hub", "org/style-lora", {"style.safetensors": assets["a"]})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", counting_hub[0])
    monkeypatch.chdir(tmp_path)
    by_repo = {**style(assets["a"]), "lora": {"repo": "org/style-lora"}}
    by_path = style(assets["a"])
    flux = flux_config(assets)
    render(photo, tmp_path / "hub.webp", "tiny-hub", by_repo, flux, run_dir)
    render(photo, tmp_path / "path.webp", "tiny-path", by_path, flux, run_dir)
    assert counting_hub[1:] == [], "no request reached the hub"
    assert lora_files.read_pins() == {"org/style-lora": "style.safetensors"}
    assert pixels(tmp_path / "hub.webp").tolist() == pixels(tmp_path / "path.webp").tolist()


def test_weight_names_need_one_file_or_a_registry_name(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from i2i.backends import lora_files

    two = {"a.safetensors": assets["a"], "b.safetensors": assets["b"]}
    monkeypatch.setattr(lora_files, "hub_cache", lambda: tmp_path / "hub")
    fake_hub_cache(tmp_path / "hub", "org/two", two)
    pins = tmp_path / "pins.json"
    with pytest.raises(I2IError, match=r"several weight files in the cache \(a.safetensors, b"):
        lora_files.weight_name("org/two", {}, "s", pins)
    assert lora_files.weight_name("org/two", {"weight_name": "b.safetensors"}, "s", pins) == (
        "b.safetensors",
        "registry",
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(I2IError, match=r"not in the local Hugging Face cache.*`hf download org/x`"):
        lora_files.weight_name("org/x", {}, "s", pins)
    assert not pins.exists(), "nothing pinned on a failure"


def test_resident_adapters_are_bounded_least_recently_used_first(
    assets: dict[str, Path], photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from i2i.backends import flux as flux_backend

    backend = flux_backend.Backend.load(Settings(model=str(assets["model"]), device="cpu"))
    names = ("a", "b", "c")
    first = {}
    for name in names:
        target = tmp_path / f"{name}.webp"
        backend.render(str(photo), str(target), f"tiny-{name}", style(assets[name]))
        first[name] = sha(target)
    assert len(backend.adapters) == 3
    one_lora = max(backend.resident.values())
    monkeypatch.setattr(flux_backend, "RESIDENT_ADAPTER_BYTES", int(one_lora * 2.5))
    target = tmp_path / "again.webp"
    backend.render(str(photo), str(target), "tiny-d", style(assets["d"]))
    assert sum(backend.resident.values()) <= flux_backend.RESIDENT_ADAPTER_BYTES
    assert "tiny-a" not in " ".join(backend.adapters), "the least recently used went first"
    adapters = {n for names in backend.pipe.get_list_adapters().values() for n in names}
    assert adapters == set(backend.adapters)
    backend.render(str(photo), str(target), "tiny-a", style(assets["a"]))
    assert sha(target) == first["a"], "an unloaded style renders the same once loaded again"


def test_compiled_blocks_recompile_once_over_three_aspect_ratios(
    assets: dict[str, Path], tmp_path: Path, inductor_cache: Path
) -> None:
    from PIL import Image

    from i2i.backends.flux import Backend

    backend = Backend.load(
        Settings(model=str(assets["model"]), device="cpu", compile=True, lora_rank=8)
    )
    counts = []
    for width, height in ((64, 64), (96, 48), (48, 80)):
        source = tmp_path / f"{width}x{height}.png"
        Image.new("RGB", (width, height), (120, 60, 30)).save(source)
        reply = backend.render(str(source), str(tmp_path / "out.png"), "tiny-a", style(assets["a"]))
        assert (reply["width"], reply["height"]) != (0, 0)
        counts.append(backend.info()["compiled_graphs"])
    # One recompile per block type at most (the second ratio makes the shapes dynamic; after
    # another compiled test in this process they may be dynamic already), none after that.
    assert counts[0] > 0 and counts[1] <= 2 * counts[0], f"recompiled more than once: {counts}"
    assert counts[2] == counts[1], f"the third aspect ratio recompiled: {counts}"


def test_the_slot_rank_is_read_from_the_styles_files(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lora_rank: auto takes the largest rank of the run's LoRA files (their headers, and a
    cached hub file found without a hub call); without any, the first LoRA's rank."""
    from i2i.backends import lora_files
    from i2i.backends.flux import Backend

    assert [lora_files.rank_of(assets[n]) for n in "acd"] == [4, 8, 16]
    assert lora_files.rank_of(tmp_path / "missing.safetensors") is None
    monkeypatch.setattr(lora_files, "hub_cache", lambda: tmp_path / "hub")
    fake_hub_cache(tmp_path / "hub", "org/big", {"big.safetensors": assets["d"]})
    loras = [{"path": str(assets["a"])}, {"repo": "org/big"}, {"repo": "org/not-here"}]
    rank = lora_files.slot_rank(loras, tmp_path / "pins.json")
    assert rank == 16 and not (tmp_path / "pins.json").exists()
    auto = {"model": str(assets["model"]), "compile": True, "lora_rank": "auto"}
    assert Settings.from_config({**auto, "slot_rank": rank}).lora_rank == 16
    assert Settings.from_config(auto).lora_rank == 0
    backend = Backend.load(Settings.from_config({**auto, "device": "cpu"}))
    backend.select("tiny-a", style(assets["a"]))
    assert backend.slot_rank == 4, "no rank known: the first LoRA's"
    with pytest.raises(I2IError, match=r"rank 8, more than flux\.lora_rank 4"):
        backend.select("tiny-c", style(assets["c"]))
