"""The package's layout is its architecture: stage code never imports run machinery, and the
shared core imports neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2i.run import provenance

PACKAGE = Path(provenance.PACKAGE_DIR)

# Each part of the package and the parts it must not import.
FORBIDDEN = {
    "i2i.core": ("i2i.stages", "i2i.run", "i2i.backends", "i2i.targets", "i2i.cli"),
    "i2i.stages": ("i2i.run", "i2i.cli"),
    "i2i.backends": ("i2i.stages", "i2i.run", "i2i.cli"),
    "i2i.targets": ("i2i.stages", "i2i.run", "i2i.backends", "i2i.cli"),
}


def modules_of(part: str) -> list[str]:
    folder = PACKAGE.joinpath(*part.split(".")[1:])
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imports_of(module: str) -> set[str]:
    provenance._parsed.cache_clear()
    return set(provenance._parsed(module)[1])


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_a_part_imports_only_what_it_may(part: str) -> None:
    modules = modules_of(part)
    assert modules, f"{part} has no modules"
    wrong = {
        module: sorted(
            name
            for name in imports_of(module)
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[part])
        )
        for module in modules
    }
    assert not {m: names for m, names in wrong.items() if names}


def test_the_package_top_holds_only_entry_points_and_config() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "cli.py", "config.py"]
    assert not (PACKAGE.parent / "scripts" / "i2i").exists(), "one way to import the package"
