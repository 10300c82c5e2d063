"""The package's layers: every import goes down, never up or sideways (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vireid_zoo"
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("evaluation",),
    ("data",),
    ("blocks", "losses"),
    ("models",),
    ("hub",),
    ("deploy",),
    ("cli",),
)
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}
METHODS = sorted(p.name for p in (PACKAGE / "models").iterdir() if (p / "model.py").is_file())


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``vireid_zoo`` import in a file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: use absolute imports")
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] == "vireid_zoo"]
    return found


def sub_package(module: str) -> str | None:
    """``vireid_zoo.data.sysu_mm01`` -> ``data``; the package face -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def test_every_sub_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYER_OF)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_to_lower_layers(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0]
    for line, module in imported_modules(path):
        target = sub_package(module)
        where = f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        assert target is not None, f"{where}: import from the sub-package, not the face"
        if target == own:
            continue
        assert target in LAYER_OF, f"{where}: unknown sub-package"
        assert LAYER_OF[target] < LAYER_OF[own], (
            f"{where}: {own!r} (layer {LAYER_OF[own]}) may only import lower layers, "
            f"{target!r} is layer {LAYER_OF[target]}"
        )


@pytest.mark.parametrize("method", METHODS)
def test_methods_do_not_import_each_other(method: str) -> None:
    others = {f"vireid_zoo.models.{m}" for m in METHODS if m != method}
    for path in sorted((PACKAGE / "models" / method).rglob("*.py")):
        for line, module in imported_modules(path):
            prefix = ".".join(module.split(".")[:3])
            assert prefix not in others, f"{path.relative_to(PACKAGE)}:{line} imports {module}"
