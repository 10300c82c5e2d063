"""Import time of the package faces, as a ratio to ``import torch`` measured in the same run.

Each import runs in a fresh interpreter (``python -X importtime`` is not used: it adds its
own overhead); the runs of the different statements are interleaved so that the machine's
load affects them alike, and the median of ``--repeats`` runs is reported. The target is a
ratio of at most 1.3 for ``import vireid_zoo`` and ``import vireid_zoo.evaluation.functional``
(the package faces are lazy: Lightning, timm, matplotlib and the Hub client are imported
only when a name that needs them is used).

Usage: ``python benchmarks/import_cost.py [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = (
    "import torch",
    "import vireid_zoo",
    "import vireid_zoo.evaluation.functional",
    "import vireid_zoo.data",
    "from vireid_zoo.evaluation import evaluate",
    "import vireid_zoo as vz; vz.list_models()",
)
TIMER = (
    "import time; start = time.perf_counter(); exec({statement!r}); "
    "print(time.perf_counter() - start)"
)


def time_import(statement: str) -> float:
    """Seconds one fresh interpreter takes to run ``statement``."""
    output = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {statement: [] for statement in STATEMENTS}
    for _ in range(args.repeats):
        for statement in STATEMENTS:
            times[statement].append(time_import(statement))
    baseline = statistics.median(times["import torch"])
    print(f"median of {args.repeats} fresh interpreters, interleaved")
    print(f"{'statement':<45} {'seconds':>8} {'x torch':>8}")
    for statement, values in times.items():
        median = statistics.median(values)
        print(f"{statement:<45} {median:8.3f} {median / baseline:8.2f}")


if __name__ == "__main__":
    main()
