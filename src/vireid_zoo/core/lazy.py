"""Lazy package faces (PEP 562): a name is imported when it is first used.

A package face lists its public names once, as ordinary imports inside an
``if TYPE_CHECKING:`` block, which type checkers and editors read as usual; at run time
[`attach`][] reads that block from the face's source and serves each name on first
access. ``import vireid_zoo`` therefore costs almost nothing, and
``import vireid_zoo.evaluation.functional`` imports torch and numpy but not Lightning,
timm, matplotlib or the Hub client:

```python
from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.evaluation.functional import evaluate

__getattr__, __dir__, __all__ = attach(__name__, __file__)
```
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def exported_names(face_file: str | Path, package: str) -> dict[str, tuple[str, str]]:
    """``{public name: (module, attribute)}`` from the ``if TYPE_CHECKING:`` imports of a face.

    Args:
        face_file: The package's ``__init__.py``.
        package: The package's dotted name (resolves relative imports).
    """
    tree = ast.parse(Path(face_file).read_text(encoding="utf-8"))
    names: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom):
                raise TypeError(f"{face_file}: only 'from X import Y' belongs in the lazy block")
            module = statement.module or ""
            if statement.level:
                base = package.rsplit(".", statement.level - 1)[0]
                module = f"{base}.{module}" if module else base
            for alias in statement.names:
                names[alias.asname or alias.name] = (module, alias.name)
    return names


def attach(
    package: str, face_file: str, eager: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Module ``__getattr__``, ``__dir__`` and ``__all__`` for a lazy package face.

    Names of the ``if TYPE_CHECKING:`` block are imported from their module on first
    access; any other name that is a sub-module of the package is imported as such.

    Args:
        package: ``__name__`` of the face.
        face_file: ``__file__`` of the face.
        eager: Public names the face imports itself (listed in ``__all__`` too).
    """
    names = exported_names(face_file, package)
    public = sorted({*names, *eager})

    def __getattr__(name: str) -> Any:
        if name in names:
            module, attribute = names[name]
            value = getattr(importlib.import_module(module), attribute)
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        setattr(sys.modules[package], name, value)  # later accesses skip __getattr__
        return value

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, public


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )
