"""Wall time, CPU time and peak memory of the retrieval evaluation, against baselines.

Every figure is printed next to its baseline, measured in the same run (medians over
``--repeats``; on a shared machine other processes' load slows both sides):

* ``4k``: one 4,000 x 4,000 distance matrix (300 identities, cameras 1-9, each row a
  random permutation of 0..3999, so float32 holds it exactly and there are no ties),
  scored by ``evaluate`` under each protocol against fast-reid's Cython ``evaluate_cy``
  (the Market-1501 rule, one thread) and against ``torch.sort`` of the matrix alone. The
  two alternate within one process. Under ``llcm`` (the same exclusion rule) mAP, mINP
  and Rank-1 must equal fast-reid's; under ``regdb`` fast-reid is given disjoint query
  and gallery cameras (so it removes nothing) and the whole CMC must equal too.
  fast-reid has no SYSU-MM01 rule: that row compares times only.
* ``sysu``: SYSU-MM01 all-search single-shot: 3,803 queries (96 ids, cameras 3 and 6)
  against 301 gallery images (one per existing (id, camera) of cameras 1, 2, 4, 5), 10
  trials with 10 random galleries; ``llcm``: LLCM IR-to-VIS, 8,680 queries (351 ids)
  against 3,100 images, 10 trials. Methods: ``features`` (``evaluate_features``:
  distance and scoring), ``fastreid`` (the standard code's float32 numpy distance, then
  ``evaluate_cy``), ``distmat`` (``evaluate`` of a precomputed float64 matrix),
  ``reference`` (the per-query loop of ``tests/helpers/reference_eval.py``, the AGW ``eval_sysu``
  procedure, on the same matrix), ``rerank`` (``k_reciprocal_rerank`` + ``evaluate``,
  one trial).
* ``metric``: ``RetrievalMetric.compute`` of a SYSU-MM01-sized suite (3,803 infrared
  queries, a visible pool of 20 images per (id, camera)): gathering the batches, then
  10 trials of each mode (``all``, ``indoor``), against the same 20 trials scored by the
  standard code's distance + fast-reid, and by the per-query loop.
* ``20k``: 20,000 queries against 20,000 gallery images (2,000 ids, cameras 1-9), LLCM
  rule, through ``evaluate_features`` (the matrix is never built); its baseline is the
  same chunked distance products without any scoring. The peak memory over the inputs
  must stay under 1 GB.

Features are random N(0, 1) 2048-d float32 vectors from a seeded generator, so the
scores mean nothing. Each case runs in a fresh subprocess, which reports its peak RSS
(``ru_maxrss``), its RSS once the inputs are allocated, and the difference (the RSS
includes about 0.7 GB for the torch libraries). CPU times add up all threads of the
process (``time.process_time``): they measure the work, which other processes' load
changes much less than the wall times the user waits.

fast-reid: ``--fastreid auto`` (default) uses ``rank_cy`` built in a cache directory
(``~/.cache/vireid-zoo``), building it on first use: a throwaway venv with Cython and
this numpy, ``fastreid==1.4.0`` downloaded from PyPI, its
``fastreid/evaluation/rank_cylib/rank_cy.pyx`` compiled (needs network and a C
compiler). ``--fastreid DIR`` uses a directory holding a built ``rank_cy`` module (or
its ``rank_cy.pyx``, built as above); ``--fastreid off`` skips it. When it is
unavailable the fast-reid columns are skipped with a message.

Usage: ``python benchmarks/eval_speed.py [--cases 4k,sysu,llcm,metric,20k] [--repeats 3]
[--threads N] [--fastreid auto|off|DIR]``. On an idle 2-core machine the default run
takes about 8 minutes, most of it in the feature products of ``llcm`` and ``20k``
(``--repeats 5`` took 47 minutes under a load average of 10).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from measure import peak_memory_mb, run_isolated  # noqa: E402
from vireid_zoo.core.records import Sample  # noqa: E402
from vireid_zoo.evaluation import (  # noqa: E402
    EvaluationSuite,
    RetrievalMetric,
    TaskSpec,
    seeded_gallery_trial,
)
from vireid_zoo.evaluation.functional import (  # noqa: E402
    PROTOCOLS,
    evaluate,
    evaluate_features,
)
from vireid_zoo.evaluation.rerank import RerankConfig, k_reciprocal_rerank  # noqa: E402

FEATURE_DIM = 2048
TESTS_DIR = Path(__file__).resolve().parents[1] / "tests" / "helpers"
FASTREID_VERSION = "1.4.0"
FASTREID_PYX = "fastreid/evaluation/rank_cylib/rank_cy.pyx"
MEMORY_LIMIT_MB = 1024


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
    "4k": Case(
        "4k",
        "4,000 q x 4,000 g distance matrix, 300 ids, cameras 1-9",
        4000,
        4000,
        300,
        tuple(range(1, 10)),
        tuple(range(1, 10)),
        "all",
        1,
        ("compare",),
    ),
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
        ("features", "fastreid", "distmat", "reference", "rerank"),
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
        ("features", "fastreid", "distmat"),
    ),
    "metric": Case(
        "metric",
        "RetrievalMetric.compute, SYSU-MM01 suite (3,803 queries, pool of 20 per id and "
        "camera), all + indoor, 10 trials each",
        3803,
        96 * 4 * 20,
        96,
        (3, 6),
        (1, 2, 4, 5),
        "sysu_mm01",
        10,
        ("compute", "fastreid", "reference"),
    ),
    "20k": Case(
        "20k",
        "20,000 q x 20,000 g, 2,000 ids, from features",
        20000,
        20000,
        2000,
        tuple(range(1, 10)),
        tuple(range(1, 10)),
        "llcm",
        1,
        ("features", "products"),
    ),
}

BASELINES = {
    "sysu": (("features", "fastreid"), ("distmat", "reference")),
    "llcm": (("features", "fastreid"),),
    "metric": (("compute", "fastreid"), ("compute", "reference")),
    "20k": (("features", "products"),),
}
"""(method, baseline) pairs whose ratio is printed after each case."""


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


def load_reference() -> Callable[..., Any]:
    """Import the per-query reference loop that the tests use."""
    sys.path.insert(0, str(TESTS_DIR))
    return importlib.import_module("reference_eval").reference_evaluate


# fast-reid's Cython evaluator, located or built at run time (never part of the zoo).


def _cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vireid-zoo"
    tag = f"py{sys.version_info.major}{sys.version_info.minor}-numpy{np.__version__}"
    return root / f"fastreid-{FASTREID_VERSION}-rank_cy-{tag}"


def _importable(directory: Path) -> bool:
    probe = f"import sys; sys.path.insert(0, {str(directory)!r}); import rank_cy"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def _run(command: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-1500:]}")


def _build_rank_cy(directory: Path, pyx: Path | None) -> None:
    """Build ``rank_cy`` in ``directory`` with a throwaway venv holding Cython."""
    directory.mkdir(parents=True, exist_ok=True)
    venv = directory / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"  fast-reid: creating a build venv in {venv}", flush=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        pins = ["cython", f"numpy=={np.__version__}", "setuptools"]
        _run([str(python), "-m", "pip", "install", "--quiet", *pins])
    if pyx is None:
        print(f"  fast-reid: downloading fastreid=={FASTREID_VERSION} from PyPI", flush=True)
        download = directory / "download"
        _run(
            [str(python), "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary",
             ":all:", "-d", str(download), f"fastreid=={FASTREID_VERSION}"]
        )  # fmt: skip
        wheel = next(download.glob("fastreid-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            (directory / "rank_cy.pyx").write_bytes(archive.read(FASTREID_PYX))
    elif pyx.parent != directory:
        (directory / "rank_cy.pyx").write_bytes(pyx.read_bytes())
    (directory / "setup_rank_cy.py").write_text(
        "import numpy\nfrom Cython.Build import cythonize\n"
        "from setuptools import Extension, setup\n"
        "setup(name='rank_cy', ext_modules=cythonize([Extension('rank_cy', ['rank_cy.pyx'], "
        "include_dirs=[numpy.get_include()])], language_level=3))\n"
    )
    print("  fast-reid: compiling rank_cy.pyx", flush=True)
    _run([str(python), "setup_rank_cy.py", "build_ext", "--inplace"], cwd=directory)


def locate_fastreid(option: str) -> tuple[Path | None, str]:
    """Return (directory holding an importable ``rank_cy``, what it is) or (None, why not)."""
    if option == "off":
        return None, "skipped (--fastreid off)"
    try:
        if option == "auto":
            directory, pyx = _cache_dir(), None
        else:
            directory = Path(option).resolve()
            if not directory.is_dir():
                return None, f"skipped: {directory} is not a directory"
            pyx = directory / "rank_cy.pyx" if (directory / "rank_cy.pyx").exists() else None
        if not _importable(directory):
            if option != "auto" and pyx is None:
                return None, f"skipped: no importable rank_cy or rank_cy.pyx in {directory}"
            _build_rank_cy(directory, pyx)
        if not _importable(directory):
            return None, f"skipped: rank_cy built in {directory} does not import"
    except (OSError, RuntimeError, StopIteration, KeyError) as error:
        return None, f"skipped: could not build fast-reid's rank_cy ({error})"
    source = f"fastreid=={FASTREID_VERSION} {FASTREID_PYX}" if option == "auto" else option
    return directory, f"Cython evaluate_cy from {source}, built in {directory}"


def load_fastreid(directory: str | None) -> Callable[..., Any] | None:
    """Import ``rank_cy.evaluate_cy`` from ``directory`` (None: unavailable)."""
    if not directory:
        return None
    sys.path.insert(0, directory)
    return importlib.import_module("rank_cy").evaluate_cy


# Workers: each runs in a fresh process and prints one JSON line.


def timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Return (wall seconds, CPU seconds of the whole process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def standard_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """The standard code's distance: float32 ``-(q @ g.T)`` of normalised features."""
    return -np.matmul(query, gallery.T)


def run_compare(case: Case, repeats: int, fastreid: Callable[..., Any] | None) -> dict:
    """``4k``: each protocol's ``evaluate`` and fast-reid, alternating; torch.sort."""
    labels = make_labels(case)
    rng = np.random.default_rng(4)
    ranks = np.argsort(rng.random((case.num_query, case.num_gallery)), axis=1)
    matrix = torch.from_numpy(ranks.astype(np.float64))
    numpy_matrix = matrix.numpy()
    label_args = (labels.query_pids, labels.gallery_pids, labels.query_cams, labels.gallery_cams)
    # RegDB removes nothing; fast-reid always removes same identity + camera, so it
    # gets disjoint cameras for the RegDB check.
    regdb_cams = (np.zeros_like(labels.query_cams), np.ones_like(labels.gallery_cams))
    rss_inputs = current_rss_mb()
    rows: dict[str, dict] = {}
    for protocol in PROTOCOLS:
        zoo_times, base_times, checks = [], [], {}
        cams = regdb_cams if protocol == "regdb" else label_args[2:]
        zoo = partial(evaluate, matrix, *label_args, protocol=protocol)
        base = partial(fastreid, numpy_matrix, *label_args[:2], *cams, 20) if fastreid else None
        for _ in range(repeats):
            zoo_times.append(timed(zoo))
            if base is not None:
                base_times.append(timed(base))
        result = zoo_times[-1][2]
        if fastreid is not None and protocol != "sysu_mm01":
            cmc, all_ap, all_inp = base_times[-1][2]
            checks = {
                "mAP": [result.mAP, float(np.mean(all_ap))],
                "mINP": [result.mINP, float(np.mean(all_inp))],
                "rank1": [float(result.cmc[0]), float(cmc[0])],
            }
            if protocol == "regdb":
                checks["cmc_max_abs_diff"] = float(np.abs(result.cmc.numpy() - cmc).max())
        rows[protocol] = {
            "zoo": [(w, c) for w, c, _ in zoo_times],
            "fastreid": [(w, c) for w, c, _ in base_times],
            "checks": checks,
        }
    sort_times = [timed(lambda: torch.sort(matrix, dim=1)) for _ in range(repeats)]
    rows["sort"] = {"zoo": [(w, c) for w, c, _ in sort_times]}
    return {
        "rows": rows,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": peak_memory_mb(torch.device("cpu")),
    }


def metric_suite(case: Case) -> tuple[EvaluationSuite, torch.Tensor]:
    """A SYSU-MM01-sized suite (all + indoor, 10 trials each) and random features."""
    labels = make_labels(case)
    query = [
        Sample(Path(f"/q/{pid}/{cam}/{n}.jpg"), int(pid), int(cam), "infrared")
        for n, (pid, cam) in enumerate(zip(labels.query_pids, labels.query_cams, strict=True))
    ]
    pool, groups = [], {"all": [], "indoor": []}
    per_folder = case.num_gallery // (case.num_ids * len(case.gallery_cams))
    for pid in range(case.num_ids):
        for cam in case.gallery_cams:
            folder = list(range(len(pool), len(pool) + per_folder))
            pool += [Sample(Path(f"/g/{pid}/{cam}/{n}.jpg"), pid, cam, "visible") for n in folder]
            groups["all"].append(folder)
            if cam in (1, 2):
                groups["indoor"].append(folder)
    specs = [
        TaskSpec(
            name=f"sysu_mm01/{mode}",
            protocol="sysu_mm01",
            query=query,
            gallery_pool=pool,
            trials={t: seeded_gallery_trial(folders, t) for t in range(case.trials)},
        )
        for mode, folders in groups.items()
    ]
    suite = EvaluationSuite.from_specs(specs)
    generator = torch.Generator().manual_seed(1234)
    return suite, torch.randn(len(suite.samples), FEATURE_DIM, generator=generator)


def run_metric(case: Case, method: str, repeats: int, fastreid: Callable[..., Any] | None) -> dict:
    """``metric``: RetrievalMetric.compute, or its 20 trials scored by a baseline."""
    suite, features = metric_suite(case)
    pids = torch.tensor([s.pid for s in suite.samples])
    cams = torch.tensor([s.camid for s in suite.samples])
    modalities = torch.tensor([int(s.modality == "infrared") for s in suite.samples])
    reference = load_reference() if method == "reference" else None
    normalised = torch.nn.functional.normalize(features, dim=1).numpy()
    batches = [  # as a loader gives them; the metric keeps the batches it receives
        torch.arange(start, min(start + 256, len(suite.samples)))
        for start in range(0, len(suite.samples), 256)
    ]
    batches = [(i, features[i], pids[i], cams[i], modalities[i]) for i in batches]
    rss_inputs = current_rss_mb()

    def compute() -> dict:
        metric = RetrievalMetric(suite)
        for batch in batches:
            metric.update(*batch)
        wall, cpu, results = timed(metric.compute)
        return {"wall": wall, "cpu": cpu, "mAP": [r.mean["mAP"] for r in results.values()]}

    def baseline() -> dict:
        def trials() -> list[float]:
            maps = []
            for task in suite.tasks:
                query = np.asarray(task.query)
                for gallery in task.galleries:
                    gallery = np.asarray(gallery)
                    dist = standard_distance(normalised[query], normalised[gallery])
                    args = (pids[query].numpy(), pids[gallery].numpy())
                    cam_args = (cams[query].numpy(), cams[gallery].numpy())
                    if method == "fastreid":
                        _, all_ap, _ = fastreid(dist, *args, *cam_args, 20)
                        maps.append(float(np.mean(all_ap)))
                    else:
                        maps.append(reference(dist, *args, *cam_args, protocol="sysu_mm01").mAP)
            return maps

        wall, cpu, maps = timed(trials)
        half = len(maps) // 2
        return {"wall": wall, "cpu": cpu, "mAP": [np.mean(maps[:half]), np.mean(maps[half:])]}

    runs = [compute() if method == "compute" else baseline() for _ in range(repeats)]
    return {
        "times": [(r["wall"], r["cpu"]) for r in runs],
        "trials": 2 * case.trials,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": peak_memory_mb(torch.device("cpu")),
        "mAP": float(np.mean(runs[-1]["mAP"])),
        "rank1": float("nan"),
    }


def run_worker(case: Case, method: str, repeats: int, fastreid_dir: str | None) -> dict:
    """Time one method on one case in this process; return times, memory and scores."""
    fastreid = load_fastreid(fastreid_dir) if method in ("compare", "fastreid") else None
    if case.name == "4k":
        return run_compare(case, repeats, fastreid)
    if case.name == "metric":
        return run_metric(case, method, repeats, fastreid)
    labels = make_labels(case)
    generator = torch.Generator().manual_seed(1234)
    query = torch.randn(case.num_query, FEATURE_DIM, generator=generator)
    gallery = torch.zeros(case.num_gallery, FEATURE_DIM)
    needs_matrix = method in ("distmat", "reference")
    if needs_matrix:
        query64 = l2_normalise_(query.double())
        gallery64 = torch.zeros(case.num_gallery, FEATURE_DIM, dtype=torch.float64)
        distances = torch.zeros(case.num_query, case.num_gallery, dtype=torch.float64)
    if method == "fastreid":
        query32 = l2_normalise_(query.clone()).numpy()
    reference = load_reference() if method == "reference" else None
    trials = 1 if method == "rerank" else case.trials
    label_args = (labels.query_pids, labels.gallery_pids, labels.query_cams, labels.gallery_cams)
    rss_inputs = current_rss_mb()

    def products() -> None:
        gallery_t = torch.nn.functional.normalize(gallery, dim=1).T
        out = torch.empty(256, case.num_gallery)
        for start in range(0, case.num_query, 256):
            chunk = torch.nn.functional.normalize(query[start : start + 256], dim=1)
            torch.matmul(chunk, gallery_t, out=out[: len(chunk)]).neg_()

    def score(method: str) -> Any:
        """Score the current trial (its gallery features, or its float64 matrix)."""
        if method == "features":
            return evaluate_features(query, gallery, *label_args, protocol=case.protocol)
        if method == "fastreid":
            gallery32 = l2_normalise_(gallery.clone()).numpy()  # the standard code's inputs
            return fastreid(standard_distance(query32, gallery32), *label_args, 20)
        if method == "distmat":
            return evaluate(distances, *label_args, protocol=case.protocol)
        if method == "reference":
            return reference(distances.numpy(), *label_args, protocol=case.protocol)
        if method == "products":
            return products()
        reranked = k_reciprocal_rerank(query, gallery, RerankConfig())
        return evaluate(reranked, *label_args, protocol=case.protocol)

    times, maps, rank1s = [], [], []
    for _ in range(repeats):
        wall = cpu = 0.0
        maps.clear()
        rank1s.clear()
        for trial in range(trials):
            torch.randn(gallery.shape, generator=generator.manual_seed(trial), out=gallery)
            if needs_matrix:
                l2_normalise_(gallery64.copy_(gallery))
                torch.matmul(query64, gallery64.T, out=distances).neg_()
            trial_wall, trial_cpu, result = timed(lambda: score(method))
            wall, cpu = wall + trial_wall, cpu + trial_cpu
            if method == "fastreid":
                maps.append(float(np.mean(result[1])))
                rank1s.append(float(result[0][0]))
            elif method != "products":
                maps.append(result.mAP)
                rank1s.append(float(result.cmc[0]))
        times.append((wall, cpu))
    return {
        "times": times,
        "trials": trials,
        "rss_inputs_mb": rss_inputs,
        "peak_rss_mb": peak_memory_mb(torch.device("cpu")),
        "mAP": float(np.mean(maps)) if maps else float("nan"),
        "rank1": float(np.mean(rank1s)) if rank1s else float("nan"),
    }


# Printing.


def median(values: list[float]) -> float:
    """Median of the repeats."""
    return statistics.median(values)


def print_compare(report: dict, repeats: int) -> None:
    """The ``4k`` table: each protocol against fast-reid and against torch.sort."""
    rows = report["rows"]
    sort_wall = median([w for w, _ in rows["sort"]["zoo"]])
    sort_cpu = median([c for _, c in rows["sort"]["zoo"]])
    peak, inputs = report["peak_rss_mb"], report["rss_inputs_mb"]
    print(f"4k: medians of {repeats}; peak {peak:.0f} MB, inputs {inputs:.0f} MB")
    print(
        f"{'protocol':<10} {'zoo s':>7} {'cpu s':>7} {'fastreid s':>10} {'cpu s':>7} "
        f"{'speed-up':>9} {'cpu x':>7} {'sort s':>7} {'vs sort':>8}  check against fast-reid"
    )
    for protocol in PROTOCOLS:
        row = rows[protocol]
        wall = median([w for w, _ in row["zoo"]])
        cpu = median([c for _, c in row["zoo"]])
        line = f"{protocol:<10} {wall:>7.3f} {cpu:>7.3f} "
        if row["fastreid"]:
            base_wall = median([w for w, _ in row["fastreid"]])
            base_cpu = median([c for _, c in row["fastreid"]])
            line += f"{base_wall:>10.3f} {base_cpu:>7.3f} "
            line += f"{base_wall / wall:>8.2f}x {base_cpu / cpu:>6.2f}x "
        else:
            line += f"{'-':>10} {'-':>7} {'-':>9} {'-':>7} "
        line += f"{sort_wall:>7.3f} {sort_wall / wall:>7.2f}x  "
        checks = row.get("checks") or {}
        if protocol == "sysu_mm01" or not checks:
            line += "(no fast-reid counterpart: timing only)" if row["fastreid"] else ""
        else:
            pairs = {key: value for key, value in checks.items() if key != "cmc_max_abs_diff"}
            same = all(abs(a - b) < 1e-6 for a, b in pairs.values())
            same = same and checks.get("cmc_max_abs_diff", 0.0) < 1e-6
            line += "identical: " if same else "DIFFERENT: "
            line += ", ".join(f"{key} {a:.6f} / {b:.6f}" for key, (a, b) in pairs.items())
            if "cmc_max_abs_diff" in checks:
                line += f", CMC max diff {checks['cmc_max_abs_diff']:.1e}"
        print(line.rstrip())
    print(f"torch.sort of the matrix alone: {sort_wall:.3f} s wall, {sort_cpu:.3f} s CPU")


def format_row(case: Case, method: str, report: dict) -> str:
    """One (case, method) row: medians per run and per trial, memory, scores."""
    walls = [w for w, _ in report["times"]]
    cpus = [c for _, c in report["times"]]
    trials = report["trials"]
    peak, inputs = report["peak_rss_mb"], report["rss_inputs_mb"]
    return (
        f"{case.name:<6} {method:<10} {trials:>6} {median(walls):>9.3f} {min(walls):>9.3f} "
        f"{median(cpus):>9.3f} {1000 * median(walls) / trials:>10.1f} {peak:>8.0f} "
        f"{inputs:>8.0f} {peak - inputs:>8.0f} {100 * report['mAP']:>7.3f} "
        f"{100 * report['rank1']:>7.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", default="4k,sysu,llcm,metric,20k", help="comma-separated: " + ",".join(CASES)
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--fastreid", default="auto", help="auto (build in a cache), off, or a directory"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fastreid-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker:
        case_name, method = args.worker.split(":")
        report = run_worker(CASES[case_name], method, args.repeats, args.fastreid_dir)
        print(json.dumps(report))
        return
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)}")
    wants_fastreid = any("fastreid" in CASES[n].methods or n == "4k" for n in names)
    fastreid_dir, fastreid_note = (
        locate_fastreid(args.fastreid) if wants_fastreid else (None, "not needed")
    )

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; features: "
        f"random N(0, 1) {FEATURE_DIM}-d float32, seeded; medians of {args.repeats} repeats"
    )
    print(f"fast-reid: {fastreid_note}")
    for name in names:
        print(f"  {name}: {CASES[name].description}")
    extra = ["--repeats", str(args.repeats)]
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    if fastreid_dir is not None:
        extra += ["--fastreid-dir", str(fastreid_dir)]
    header = (
        f"{'case':<6} {'method':<10} {'trials':>6} {'median s':>9} {'best s':>9} {'cpu s':>9} "
        f"{'ms/trial':>10} {'peak MB':>8} {'input MB':>8} {'+eval MB':>8} {'mAP %':>7} "
        f"{'R1 %':>7}"
    )
    for name in names:
        case = CASES[name]
        if name == "4k":
            print_compare(run_isolated(__file__, "4k:compare", *extra), args.repeats)
            continue
        print(header)
        medians: dict[str, tuple[float, float]] = {}
        for method in case.methods:
            if method == "fastreid" and fastreid_dir is None:
                print(f"{case.name:<6} {method:<10} skipped: fast-reid {fastreid_note}")
                continue
            # A fresh interpreter per run, so that its peak RSS is its own.
            report = run_isolated(__file__, f"{case.name}:{method}", *extra)
            print(format_row(case, method, report), flush=True)
            medians[method] = (
                median([w for w, _ in report["times"]]),
                median([c for _, c in report["times"]]),
            )
            if name == "20k" and method == "features":
                over = report["peak_rss_mb"] - report["rss_inputs_mb"]
                verdict = "under" if over < MEMORY_LIMIT_MB else "OVER"
                print(f"       peak memory over the inputs {over:.0f} MB: {verdict} 1 GB")
        for method, baseline in BASELINES.get(name, ()):
            if method in medians and baseline in medians:
                (wall, cpu), (base_wall, base_cpu) = medians[method], medians[baseline]
                if baseline == "products":  # a part of the method: report the whole's share
                    print(
                        f"       {method} takes {wall / base_wall:.2f}x the time of the "
                        f"distance products alone ({cpu / base_cpu:.2f}x their CPU time)"
                    )
                else:
                    print(
                        f"       {method} vs {baseline}: {base_wall / wall:.2f}x faster "
                        f"({base_cpu / cpu:.2f}x less CPU time)"
                    )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
