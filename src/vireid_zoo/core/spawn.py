"""Failing fast when a script without a main guard starts 'spawn' processes (``ddp_spawn``).

A process started with the 'spawn' method re-runs the parent's ``__main__`` script before
it runs its task. Without an ``if __name__ == "__main__":`` guard, every process repeats
the whole script (synthesising or caching data, building models) before Lightning's own
check stops it, which can take minutes. The zoo's modules and datamodules are pickled to
reach those processes; [`refuse_unguarded_spawn`][], called while they are pickled,
stops the parent at once, before any process starts.
"""

from __future__ import annotations

import ast
import sys
from multiprocessing.context import get_spawning_popen
from pathlib import Path


def refuse_unguarded_spawn(what: str) -> None:
    """Raise if ``what`` is being sent to a 'spawn' process from an unguarded script.

    Args:
        what: The object being pickled, for the message (e.g. ``"AGWModule"``).

    Raises:
        RuntimeError: the parent's ``__main__`` is a Python file without a
            ``__name__ == "__main__"`` guard and a 'spawn' process is being started.
    """
    popen = get_spawning_popen()
    if popen is None or getattr(popen, "method", None) != "spawn":
        return
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if not script or not script.endswith(".py") or has_main_guard(Path(script)):
        return
    raise RuntimeError(
        f"{script} starts processes with the 'spawn' method (e.g. strategy='ddp_spawn'), "
        f"which re-run the script in every process before they receive the {what}, but it has "
        'no `if __name__ == "__main__":` guard: every process would repeat the whole script '
        "(data, models, training). Move the script's work into a function called under "
        '`if __name__ == "__main__":`, or use strategy="ddp" (see the multi-GPU section of '
        "docs/training.md)."
    )


def has_main_guard(script: Path) -> bool:
    """Whether a script has a top-level ``if __name__ == "__main__":`` block."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return True  # cannot tell: leave the decision to Lightning's own check
    return any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1
