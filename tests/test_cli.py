"""The i2i command: check, styles, progress, stop, stylize."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PIL import Image

from i2i.cli import main, merge
from i2i.export import discover
from i2i.progress import Row, eta_seconds, format_duration, summarise


def test_merge_is_recursive_and_does_not_mutate() -> None:
    base = {"watermark": {"brand": "a", "opacity": 0.5}, "styles": ["x"]}
    merged = merge(base, {"watermark": {"brand": "b"}, "styles": ["y"]})
    assert merged == {"watermark": {"brand": "b", "opacity": 0.5}, "styles": ["y"]}
    assert base["watermark"]["brand"] == "a"


def test_styles_table(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-d", str(repo), "styles"]) == 0
    text = capsys.readouterr().out
    assert "* oil_paint" in text and "classic" in text


def test_check_passes_on_the_default(repo: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "albums_dir": str(repo / "sample" / "albums"),
                "styles_file": str(repo / "styles.yaml"),
                "places": {"cache": str(tmp_path / "cache" / "g.sqlite")},
                "publish": {"target": f"file://{tmp_path / 'site'}"},
            }
        )
    )
    assert main(["-d", str(tmp_path), "--configfile", str(config), "check"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("OK   config: valid")
    assert any(line.startswith("OK   library: 6 photos in 2 albums") for line in lines)
    assert not any(line.startswith("FAIL") for line in lines)


def test_check_fails_on_bad_config_and_unreachable_ollama(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("watermark: {opacity: 3}\n")
    assert main(["-d", str(tmp_path), "--configfile", str(bad), "check"]) == 1
    assert "FAIL config" in capsys.readouterr().out
    ollama = tmp_path / "ollama.yaml"
    ollama.write_text(
        yaml.safe_dump(
            {
                "albums_dir": str(tmp_path),
                "ollama": {"enabled": True, "endpoint": "http://127.0.0.1:9"},
            }
        )
    )
    (tmp_path / "styles.yaml").write_text(
        yaml.safe_dump(
            {"styles": {"s": {"backend": "classic", "description": "d", "filter": "cartoon"}}}
        )
    )
    assert main(["-d", str(tmp_path), "--configfile", str(ollama), "check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL ollama: http://127.0.0.1:9 not reachable" in out
    assert "WARN library: 0 photos" in out


def test_stop_creates_the_stop_file(tmp_path: Path) -> None:
    assert main(["-d", str(tmp_path), "stop"]) == 0
    assert (tmp_path / ".i2i" / "stop").exists()


def test_stylize_one_photo_without_the_workflow(repo: Path, tmp_path: Path) -> None:
    photo = repo / "sample" / "albums" / "Space Coast" / "eileen_collins.jpg"
    output = tmp_path / "out.webp"
    args = ["-d", str(repo), "stylize", str(photo), "oil_paint", str(output), "--long-side", "128"]
    assert main(args) == 0
    with Image.open(output) as image:
        assert image.height == 128 and image.width < 128
    assert main(["-d", str(repo), "stylize", str(photo), "nope", str(output)]) == 1


def test_progress_counts_targets_and_benchmarks(repo: Path, tmp_path: Path) -> None:
    photos = discover(repo / "sample" / "albums", ["jpg", "heic", "png"]).photos
    first = photos[0]
    done = tmp_path / "results" / "metadata" / first.album / f"{first.photo}.json"
    done.parent.mkdir(parents=True)
    done.write_text("{}")
    bench = tmp_path / "benchmarks" / "stylize" / first.album / "ink" / f"{first.photo}.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\n2.50\t0:00:02\t100\n")
    log = tmp_path / "logs" / "metadata" / first.album / f"{first.photo}.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 INFO i2i: reading\n2026-01-01 INFO i2i: job finished in 0.250 s\n")
    rows = {(r.stage, r.style): r for r in summarise(tmp_path, photos, {"ink": {"backend": "x"}})}
    assert rows[("metadata", "")].done == 1 and rows[("metadata", "")].pending == 5
    assert rows[("metadata", "")].mean_seconds == 0.25
    assert rows[("stylize", "ink")].mean_seconds == 2.5
    assert rows[("stylize", "ink")].eta_seconds == 15.0
    assert rows[("watermark", "ink")].mean_seconds is None


def test_eta_spreads_cpu_work_but_not_gpu_work() -> None:
    rows = [Row("stylize", "ink", 0, 10, 1.0), Row("stylize", "ghibli", 0, 10, 30.0, serial=True)]
    assert eta_seconds(rows[:1], 2) == 5.0
    assert eta_seconds(rows, 2) == 300.0
    assert format_duration(3723) == "1h 02m 03s" and format_duration(65) == "1m 05s"
