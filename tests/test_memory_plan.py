"""The FLUX memory plan: chosen from the device's memory, refused where nothing fits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from i2i import I2IError
from i2i.backends.memory_plan import Device, plan_for, resolve

from conftest import copy_workflow

FLUX = {"memory": "auto", "device": "auto", "offload": "none", "quantize": "none"}


@pytest.mark.parametrize(
    ("gib", "offload", "quantize"),
    [
        (11.6, "group", "int8"),  # 12 GB cards
        (15.6, "group", "int8"),  # 16 GB
        (23.5, "model", "int8"),  # 24 GB (RTX 4090, 3090)
        (47.5, "none", "none"),  # 48 GB (RTX 6000)
        (79.2, "none", "none"),  # 80 GB (A100, H100)
        (139.8, "none", "none"),  # 141 GB (H200)
    ],
)
def test_cuda_plans_by_memory(gib: float, offload: str, quantize: str) -> None:
    flux, line = resolve(FLUX, Device("cuda", gib, True, "Test GPU"))
    assert (flux["offload"], flux["quantize"]) == (offload, quantize)
    assert line.startswith(f"memory plan for Test GPU ({gib:.0f} GiB): ")


def test_an_8_gb_card_is_refused_in_one_line() -> None:
    with pytest.raises(I2IError, match=r"has 8 GiB, FLUX.1-Kontext needs at least 11 GiB"):
        plan_for(Device("cuda", 7.8, True, "the 8 GB GPU"))


def test_a_gpu_without_bfloat16_gets_float32_plans() -> None:
    assert plan_for(Device("cuda", 31.7, False)).label == "int8 weights, model offload, float32"
    assert plan_for(Device("cuda", 79.2, False)).label == "all resident, float32"


@pytest.mark.parametrize(
    ("gib", "expected"),
    [(16, None), (36, "int8 weights"), (48, "int8 weights"), (128, "all resident")],
)
def test_apple_silicon_plans_by_unified_memory(gib: int, expected: str | None) -> None:
    device = Device("mps", gib, True, "Apple Silicon")
    if expected is None:
        with pytest.raises(I2IError, match="16 GiB of unified memory is too little"):
            plan_for(device)
    else:
        plan = plan_for(device)
        assert plan.label == expected and plan.offload == "none", "offload frees nothing there"


def test_explicit_keeps_the_keys_and_float8_with_offload_is_refused() -> None:
    explicit = {**FLUX, "memory": "explicit", "offload": "model", "quantize": "int8"}
    flux, line = resolve(explicit, Device("cuda", 139.8, True))
    assert (flux["offload"], flux["quantize"]) == ("model", "int8") and "explicit" in line
    with pytest.raises(I2IError, match=r"float8 with flux\.offload is not supported"):
        resolve({**explicit, "quantize": "float8"})


def test_compile_with_a_plan_that_offloads_is_refused_at_the_start() -> None:
    with pytest.raises(I2IError, match=r"flux\.compile needs the model resident.*int8 weights"):
        resolve({**FLUX, "compile": True}, Device("cuda", 23.5, True, "RTX 4090"))
    flux, _ = resolve({**FLUX, "compile": True}, Device("cuda", 79.2, True))
    assert flux["offload"] == "none"


def test_the_cpu_plan_changes_nothing() -> None:
    flux, _ = resolve(FLUX, Device("cpu", 0.0, False, "CPU"))
    assert (flux["offload"], flux["quantize"]) == ("none", "none")


def test_a_flux_run_without_the_flux_software_stops_at_the_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from i2i.backends import flux_run

    real = flux_run.importlib.util.find_spec

    def find_spec(name: str, *args: object):
        return None if name in {"diffusers", "peft"} else real(name, *args)

    monkeypatch.setattr(flux_run.importlib.util, "find_spec", find_spec)
    config = {"flux": {"memory": "auto", "device": "cpu", "compile": False}}
    with pytest.raises(I2IError) as failure:
        flux_run.prepare_run(config, {"kontext-a": {}, "kontext-b": {}})
    message = str(failure.value)
    assert "\n" not in message and "need diffusers, peft" in message
    assert "(kontext-a, kontext-b)" in message and "pip install 'i2i-workflow[flux]'" in message


@pytest.mark.workflow
def test_snakemake_without_diffusers_says_so_once_and_runs_no_job(tmp_path: Path) -> None:
    """A FLUX style where diffusers cannot be imported: one line naming what to install, at
    the start, before any job (no worker started, no per-image failure)."""
    workdir = copy_workflow(tmp_path / "wf")
    hidden = (
        "import sys; sys.modules['diffusers'] = None; sys.argv[0] = 'snakemake'; "
        "from snakemake.cli import main; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", hidden, "--cores", "2", "--config", "styles=[kontext-3d-chibi]"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert output.count("pip install 'i2i-workflow[flux]'") == 1, output
    assert "need diffusers" in output and "Traceback" not in output
    assert not (workdir / "results").exists() and not (workdir / ".i2i" / "worker").exists()
