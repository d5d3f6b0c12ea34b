"""The i2i command: check, styles, progress, stop, stylize."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from i2i import cli
from i2i.cli import main, merge
from i2i.stages.library.albums import discover
from i2i.stages.report import Row, eta_seconds, format_duration, summarise


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


def odd_album(root: Path, repo: Path) -> Path:
    """An album of one good photo, one empty file and one text file named .jpg."""
    album = root / "albums" / "Mixed"
    album.mkdir(parents=True)
    source = repo / "sample" / "albums" / "Space Coast" / "falcon9_launch.jpg"
    (album / "good.jpg").write_bytes(source.read_bytes())
    (album / "empty.jpg").touch()
    (album / "notes.jpg").write_text("not a photo\n", encoding="utf-8")
    return root / "albums"


def test_check_lists_the_photos_the_inventory_sets_aside(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    albums = odd_album(tmp_path, repo)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"albums_dir": str(albums), "styles_file": str(repo / "styles.yaml")})
    )
    main(["-d", str(tmp_path), "--configfile", str(config), "check"])
    lines = capsys.readouterr().out.splitlines()
    assert "WARN inventory: 1 photo(s) taken, 2 set aside (see results/inventory.json)" in lines
    assert "WARN set aside: Mixed/empty.jpg: empty file (0 bytes), not an image" in lines
    assert any(line.startswith("WARN set aside: Mixed/notes.jpg: not an image") for line in lines)
    assert (tmp_path / "cache" / "inventory.json").is_file()


def test_progress_shows_set_aside_photos_and_fallbacks(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    albums = odd_album(tmp_path, repo)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"albums_dir": str(albums), "styles_file": str(repo / "styles.yaml"), "styles": []}
        )
    )
    results = tmp_path / "results"
    (results / "captions" / "Mixed").mkdir(parents=True)
    (results / "inventory.json").write_text(
        json.dumps(
            {
                "photos": [{"album": "Mixed", "photo": "good", "file": "Mixed/good.jpg"}],
                "rejected": [
                    {"album": "Mixed", "photo": "empty", "file": "Mixed/empty.jpg", "reason": "x"}
                ],
            }
        )
    )
    caption = results / "captions" / "Mixed" / "good.json"
    caption.write_text(json.dumps({"fallback": True, "watermark_text": "t"}))
    args = ["-d", str(tmp_path), "--configfile", str(config)]
    assert main([*args, "progress"]) == 0
    text = capsys.readouterr().out
    assert "set aside by the inventory: 1 photo(s)\n  Mixed/empty.jpg: x" in text
    assert "made by a network fallback: 1 file(s)" in text
    assert main([*args, "redo", "--fallbacks", "--dry-run"]) == 0
    assert "would redo results/captions/Mixed/good.json" in capsys.readouterr().out
    assert caption.exists()
    assert main([*args, "redo", "--fallbacks"]) == 0
    assert "1 file(s) made by a network fallback removed" in capsys.readouterr().out
    assert not caption.exists()


COMMAND_NAMES = ("check", "styles", "progress", "redo", "stop", "publish", "stylize")


@pytest.mark.parametrize(
    ("argv", "directory", "configfiles"),
    [
        (["check"], ".", []),
        (["-d", "w", "--configfile", "a.yaml", "check"], "w", ["a.yaml"]),
        (["check", "-d", "w", "--configfile", "a.yaml"], "w", ["a.yaml"]),
        (["--directory", "w", "styles", "--configfile", "a.yaml"], "w", ["a.yaml"]),
        (
            ["--configfile", "a.yaml", "progress", "--configfile", "b.yaml"],
            ".",
            ["a.yaml", "b.yaml"],
        ),
        (["-d", "v", "redo", "--fallbacks", "-d", "w"], "w", []),
        (
            ["stylize", "p.jpg", "oil_paint", "o.webp", "--directory", "w", "--configfile", "a"],
            "w",
            ["a"],
        ),
    ],
)
def test_shared_options_go_before_or_after_the_subcommand(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], directory: str, configfiles: list[str]
) -> None:
    seen: list[argparse.Namespace] = []
    name = next(arg for arg in argv if arg in COMMAND_NAMES)
    monkeypatch.setitem(cli.COMMANDS, name, lambda args: seen.append(args) or 0)
    assert main(argv) == 0
    [args] = seen
    assert args.command == name and args.directory == directory
    assert args.configfile == configfiles and not hasattr(args, "configfile_after")


def test_check_takes_the_configfile_after_the_subcommand(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``i2i check --configfile my.yaml``, as the README writes it."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"albums_dir": str(repo / "sample" / "albums"), "styles": []}))
    styles = tmp_path / "s.yaml"
    styles.write_text(yaml.safe_dump({"styles_file": str(repo / "styles.yaml")}))
    args = ["check", "--configfile", str(config), "-d", str(tmp_path), "--configfile", str(styles)]
    main(args)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("OK   config: valid")
    assert any(line.startswith("OK   library: 6 photos in 2 albums") for line in lines)
