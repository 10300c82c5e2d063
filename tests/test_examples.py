"""Every script in ``examples/`` runs to completion in its smoke mode.

The scripts are discovered by glob, so a new example is covered without touching this
file; each must accept ``--smoke`` (tiny sizes, seconds on a CPU, no download) and have a
module docstring. Each runs in its own process, in a scratch working directory (so what it
writes stays there), offline.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
TIMEOUT_S = 300


def test_examples_are_found() -> None:
    assert EXAMPLES, f"no examples found in {EXAMPLES_DIR}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_usage_docstring_and_smoke_flag(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and f"examples/{script.name}" in docstring, (
        f"{script.name}: the module docstring should explain how to run it "
        f"(e.g. 'python examples/{script.name} ...')"
    )
    assert '"--smoke"' in source, f"{script.name} needs a --smoke flag (tiny, seconds)"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_smoke_mode(script: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "VIREID_ZOO_CACHE": str(tmp_path / "cache"),
    }
    completed = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 0, (
        f"{script.name} --smoke exited with {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout[-3000:]}\n--- stderr ---\n{completed.stderr[-5000:]}"
    )
