"""Lightning DDP on CPU (gloo): the paired sampler survives and evaluation is rank-invariant.

Lightning's ``ddp`` launcher re-runs the command line for every rank, so the scenario
runs as a script in a subprocess, never inside the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vireid_zoo.data.synthetic import make_sysu_mm01

SCRIPT = Path(__file__).parents[1] / "helpers" / "distributed" / "lightning_ddp.py"
P, K = 3, 2


def run(*args: object) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(SCRIPT.parent), os.environ.get("PYTHONPATH")])
        ),
        "PYTHONWARNINGS": "ignore",
    }
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


@pytest.mark.distributed
def test_ddp_fit_keeps_pk_structure_and_test_matches_one_process(tmp_path: Path) -> None:
    root = make_sysu_mm01(
        tmp_path / "SYSU-MM01",
        num_train_ids=10,
        num_val_ids=2,
        num_test_ids=5,
        images_per_camera=2,
        image_size=(32, 16),
        seed=3,
    )
    run(root, tmp_path / "ddp", 2)
    steps = json.loads((tmp_path / "ddp" / "steps.json").read_text())
    assert {s["epoch"] for s in steps} == {0, 1}
    per_epoch = [[s for s in steps if s["epoch"] == e] for e in (0, 1)]
    assert len(per_epoch[0]) == len(per_epoch[1]) == 36 // (P * K * 2)
    for step in steps:
        ranks = step["labels"]
        assert len(ranks) == 2, "both ranks must report a batch"
        identities = []
        for visible, infrared in ranks:
            assert visible == infrared, "positions must pair a visible and an infrared image"
            blocks = [visible[j : j + K] for j in range(0, P * K, K)]
            assert all(len(set(block)) == 1 for block in blocks), "K images per identity"
            identities.append({block[0] for block in blocks})
        assert all(len(ids) == P for ids in identities)
        assert not identities[0] & identities[1], "ranks must not share identities in a step"
    assert [s["labels"] for s in per_epoch[0]] != [s["labels"] for s in per_epoch[1]]

    run(root, tmp_path / "single", 1, tmp_path / "ddp" / "weights.pt")
    ddp_results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    single_results = json.loads((tmp_path / "single" / "results.json").read_text())
    assert set(ddp_results) == {"sysu_mm01/all", "sysu_mm01/indoor"}
    assert ddp_results == single_results


@pytest.mark.distributed
def test_ddp_with_the_image_cache_builds_each_split_once_and_trains_alike(
    tmp_path: Path,
) -> None:
    # At 32x16 files and a 32x16 input the cache holds the decoded pixels unchanged; the
    # resize itself is compared with decoding in test_cache.py.
    root = make_sysu_mm01(
        tmp_path / "SYSU-MM01",
        num_train_ids=10,
        num_val_ids=2,
        num_test_ids=5,
        images_per_camera=2,
        image_size=(32, 16),
        seed=3,
    )
    run(root, tmp_path / "decoded", 2)
    cache = tmp_path / "cache"
    completed = run(root, tmp_path / "cached", 2, "--image-cache", cache)
    builds = [line for line in completed.stderr.splitlines() if "building image cache" in line]
    assert len(builds) == 2, "rank 0 builds the train and the test cache; rank 1 reads them"
    assert sum("sysu_mm01-train-" in line for line in builds) == 1
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(name.endswith(".npy") for name in files), files
    for name in ("steps.json", "results.json"):
        decoded = json.loads((tmp_path / "decoded" / name).read_text())
        assert json.loads((tmp_path / "cached" / name).read_text()) == decoded
