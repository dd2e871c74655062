"""The rooms of the package and what each may import (docs/ARCHITECTURE.md).

Read from the source with `ast`, imports inside functions included: the product never imports
the simulator, the simulator never imports the product, and no room imports one above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Lowest first; a room may import rooms of its own layer and of any lower layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("yilian.settings", "yilian.airflow_env"),
    ("yilian.sources",),
    ("yilian.privacy", "yilian.landing"),
    ("yilian.warehouse",),
    ("yilian.quality",),
    ("yilian.steps", "yilian.contracts"),
    ("yilian.dags",),
    ("yilian.cli", "yilian.installation", "yilian.dev", "yilian.operator_ui"),
)
LAYER = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules(package_dir: Path, package: str) -> dict[str, Path]:
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        name = ".".join((package, *parts)).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _room(module: str) -> str | None:
    matches = [room for room in LAYER if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


PRODUCT = _modules(ROOT / "yilian", "yilian")
SIMULATOR = _modules(ROOT / "simulator" / "yilian_sim", "yilian_sim")


def test_every_product_module_is_in_a_room() -> None:
    assert [m for m in PRODUCT if m != "yilian" and _room(m) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in PRODUCT if not m.startswith("yilian.dev")))
def test_the_product_never_imports_the_simulator(module: str) -> None:
    assert {i for i in _imports(PRODUCT[module]) if i.split(".")[0] == "yilian_sim"} == set()


@pytest.mark.parametrize("module", sorted(SIMULATOR))
def test_the_simulator_never_imports_the_product(module: str) -> None:
    assert {i for i in _imports(SIMULATOR[module]) if i.split(".")[0] == "yilian"} == set()


@pytest.mark.parametrize("module", sorted(m for m in PRODUCT if m != "yilian"))
def test_no_room_imports_a_higher_one(module: str) -> None:
    room = _room(module)
    assert room is not None
    upward = {
        i
        for i in _imports(PRODUCT[module])
        if (target := _room(i)) is not None and LAYER[target] > LAYER[room]
    }
    assert upward == set()


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from yilian.steps import ingest\n    import yilian_sim.run\n")
    assert {"yilian.steps", "yilian.steps.ingest", "yilian_sim.run"} <= _imports(module)
    assert LAYER[_room("yilian.steps.ingest")] > LAYER[_room("yilian.sources.hospital")]
