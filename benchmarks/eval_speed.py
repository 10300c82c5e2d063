"""Wall time and peak memory of the retrieval evaluation at real dataset sizes.

Cases (synthetic labels laid out like the real test sets; features are random N(0, 1)
2048-d float32 vectors from a seeded generator, so the scores themselves mean nothing):

* ``sysu``: SYSU-MM01 all-search single-shot: 3,803 queries (96 ids, cameras 3 and 6)
  against 301 gallery images (one per existing (id, camera) of cameras 1, 2, 4, 5),
  10 trials with 10 different random galleries, protocol ``sysu_mm01``;
* ``llcm``: LLCM IR-to-VIS: 8,680 near-infrared queries (351 ids, cameras 1, 2, 4-9)
  against 3,100 visible gallery images (one per existing (id, camera), cameras 1-9),
  10 trials, protocol ``llcm``;
* ``20k``: 20,000 queries against 20,000 gallery images (2,000 ids, cameras 1-9), one
  trial, protocol ``llcm``, through ``evaluate_features`` only, so the 20,000 x 20,000
  distance matrix is never built.

Methods: ``features`` times ``evaluate_features`` (distance and scoring); ``distmat``
times ``evaluate`` on a precomputed float64 ``-(q @ g.T)`` of L2-normalised features;
``reference`` times the per-query loop of ``tests/reference_eval.py`` on the same matrix;
``rerank`` times ``k_reciprocal_rerank`` plus ``evaluate`` on the first trial only.
Generating the features and the precomputed matrix is not timed.

Each (case, method) runs in a fresh subprocess, which reports its peak RSS
(``ru_maxrss``), its RSS once the inputs are allocated, and the difference. The RSS
includes about 0.7 GB for the torch libraries themselves.

Usage: ``python benchmarks/eval_speed.py --cases sysu,llcm,20k --repeats 3 [--threads 1]``.
On 2 cores, ``sysu`` and ``llcm`` take about 7 minutes at 3 repeats and ``20k`` about 2-4
minutes per repeat. Timings on a shared machine vary with its load, which is printed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from measure import peak_memory_mb, run_isolated  # noqa: E402
from vireid_zoo.evaluation.functional import evaluate, evaluate_features  # noqa: E402
from vireid_zoo.evaluation.rerank import RerankConfig, k_reciprocal_rerank  # noqa: E402

FEATURE_DIM = 2048
TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"


@dataclass(frozen=True)
class Case:
    """One problem size: synthetic labels, protocol, trials and the methods to time."""

    name: str
    description: str
    num_query: int
    num_gallery: int
    num_ids: int
    query_cams: tuple[int, ...]
    gallery_cams: tuple[int, ...]
    protocol: str
    trials: int
    methods: tuple[str, ...]


CASES = {
    "sysu": Case(
        "sysu",
        "SYSU-MM01 all-search, 3,803 q x 301 g, 96 ids",
        3803,
        301,
        96,
        (3, 6),
        (1, 2, 4, 5),
        "sysu_mm01",
        10,
        ("features", "distmat", "reference", "rerank"),
    ),
    "llcm": Case(
        "llcm",
        "LLCM IR-to-VIS, 8,680 q x 3,100 g, 351 ids",
        8680,
        3100,
        351,
        (1, 2, 4, 5, 6, 7, 8, 9),
        tuple(range(1, 10)),
        "llcm",
        10,
        ("features", "distmat"),
    ),
    "20k": Case(
        "20k",
        "20,000 q x 20,000 g, 2,000 ids",
        20000,
        20000,
        2000,
        tuple(range(1, 10)),
        tuple(range(1, 10)),
        "llcm",
        1,
        ("features",),
    ),
}


@dataclass
class Labels:
    """Identities and cameras of the queries and of every trial's gallery."""

    query_pids: np.ndarray
    query_cams: np.ndarray
    gallery_pids: np.ndarray
    gallery_cams: np.ndarray


def make_labels(case: Case) -> Labels:
    """Queries spread evenly over the ids; one gallery image per sampled (id, camera)."""
    rng = np.random.default_rng(0)
    query_pids = np.sort(np.arange(case.num_query) % case.num_ids)
    query_cams = rng.choice(case.query_cams, size=case.num_query)
    pairs = [(pid, cam) for pid in range(case.num_ids) for cam in case.gallery_cams]
    chosen = np.sort(
        rng.choice(len(pairs), size=case.num_gallery, replace=case.num_gallery > len(pairs))
    )
    gallery = np.array([pairs[i] for i in chosen])
    return Labels(query_pids, query_cams, gallery[:, 0], gallery[:, 1])


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def l2_normalise_(features: torch.Tensor) -> torch.Tensor:
    """Normalise rows in place (no temporary copy that would inflate the peak RSS)."""
    return features.div_(features.norm(dim=1, keepdim=True))


def load_reference() -> Callable[..., object]:
    """Import the per-query reference loop that the tests use."""
    sys.path.insert(0, str(TESTS_DIR))
    return importlib.import_module("reference_eval").reference_evaluate


def run_worker(case: Case, method: str, repeats: int) -> dict[str, object]:
    """Time one method on one case in this process; return times, memory and scores."""
    labels = make_labels(case)
    generator = torch.Generator().manual_seed(1234)
    query = torch.randn(case.num_query, FEATURE_DIM, generator=generator)
    gallery = torch.empty(case.num_gallery, FEATURE_DIM)
    needs_matrix = method in ("distmat", "reference")
    if needs_matrix:
        query64 = l2_normalise_(query.double())
        gallery64 = torch.empty(case.num_gallery, FEATURE_DIM, dtype=torch.float64)
        distances = torch.empty(case.num_query, case.num_gallery, dtype=torch.float64)
    reference = load_reference() if method == "reference" else None
    trials = 1 if method == "rerank" else case.trials
    label_args = (labels.query_pids, labels.gallery_pids, labels.query_cams, labels.gallery_cams)
    rss_inputs = current_rss_mb()

    times, maps, rank1s = [], [], []
    for _ in range(repeats):
        elapsed = 0.0
        maps.clear()
        rank1s.clear()
        for trial in range(trials):
            torch.randn(gallery.shape, generator=generator.manual_seed(trial), out=gallery)
            if needs_matrix:
                l2_normalise_(gallery64.copy_(gallery))
                torch.matmul(query64, gallery64.T, out=distances).neg_()
            start = time.perf_counter()
            if method == "features":
                result = evaluate_features(query, gallery, *label_args, protocol=case.protocol)
            elif method == "distmat":
                result = evaluate(distances, *label_args, protocol=case.protocol)
            elif method == "reference":
                result = reference(distances.numpy(), *label_args, protocol=case.protocol)
            else:
                reranked = k_reciprocal_rerank(query, gallery, RerankConfig())
                result = evaluate(reranked, *label_args, protocol=case.protocol)
            elapsed += time.perf_counter() - start
            maps.append(result.mAP)
            rank1s.append(float(result.cmc[0]))
        times.append(elapsed)
    return {
        "times": times,
        "trials": trials,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": peak_memory_mb(torch.device("cpu")),
        "mAP": float(np.mean(maps)),
        "rank1": float(np.mean(rank1s)),
    }


def format_row(case: Case, method: str, report: dict[str, object]) -> str:
    times = report["times"]
    trials = report["trials"]
    best, mean = min(times), sum(times) / len(times)
    peak, inputs = report["peak_rss_mb"], report["rss_inputs_mb"]
    return (
        f"{case.name:<5} {method:<10} {trials:>6} {best:>9.2f} {mean:>9.2f} "
        f"{1000 * best / trials:>10.1f} {peak:>9.0f} {inputs:>9.0f} {peak - inputs:>9.0f} "
        f"{100 * report['mAP']:>7.3f} {100 * report['rank1']:>7.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="sysu,llcm,20k", help="comma-separated: sysu,llcm,20k")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker:
        case_name, method = args.worker.split(":")
        print(json.dumps(run_worker(CASES[case_name], method, args.repeats)))
        return
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)}")

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; features: random "
        f"N(0, 1) {FEATURE_DIM}-d float32, seeded; best and mean of {args.repeats} repeats; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    for name in names:
        print(f"  {name}: {CASES[name].description}, protocol {CASES[name].protocol}")
    print(
        f"{'case':<5} {'method':<10} {'trials':>6} {'best s':>9} {'mean s':>9} "
        f"{'ms/trial':>10} {'peak MB':>9} {'input MB':>9} {'+eval MB':>9} {'mAP %':>7} "
        f"{'R1 %':>7}"
    )
    for name in names:
        case = CASES[name]
        best_per_trial = {}
        for method in case.methods:
            threads = ["--threads", str(args.threads)] if args.threads is not None else []
            # A fresh interpreter per run, so that its peak RSS is its own.
            report = run_isolated(
                __file__, f"{case.name}:{method}", "--repeats", str(args.repeats), *threads
            )
            print(format_row(case, method, report), flush=True)
            best_per_trial[method] = min(report["times"]) / report["trials"]
        if "reference" in best_per_trial:
            speedup = best_per_trial["reference"] / best_per_trial["distmat"]
            print(f"      speed-up of evaluate over the per-query loop: {speedup:.1f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
