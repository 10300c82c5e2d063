"""Measurements on networks trained by ``compare_methods.py --save DIR`` (demo data).

Two probes, each on the demo's synthetic SYSU-MM01 test set (``--size``, the size the
network was trained at), whose true part maps exist for every image:

- ``cscl-masks DIR/cscl``: SYSU-MM01 test scores (all-search and indoor, 10 trials) of a
  trained CSCL twice: with the PAM masks the network predicts (what a real test does) and
  with the true parsed foreground of each test image (an oracle no real test has). The
  difference is what CSCL's test-time masks cost.
- ``mhn-diversity DIR/mhn``: per modality, the redundancy of MHN's two DRM branches over
  the test images of that modality: the mean absolute cosine of their pooled features,
  each standardised over those images (``BranchDecorrelationLoss``; 1 minus it is the
  intra-modality diversity the MHN README reports), also on the BNNeck features.
- ``emif-test-feature DIR/emif``: SYSU-MM01 test scores of a trained EMIF with each test
  embedding: the shared head's alone (``test_concat=False``) and with the matching modality
  head's appended (``test_concat=True``). Training is the same for both (the choice only
  changes the test embedding), so one trained network measures both.

Usage: ``python benchmarks/probe_trained.py cscl-masks /tmp/nets/cscl [--size small]
[--network ARG=VALUE ...]``; ``--network`` gives a constructor argument the saved network
predates (VALUE read as JSON when it parses, e.g. ``pam_mask=parsing`` for a CSCL saved
before that argument existed). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from vireid_zoo.cli.demo import SIZES, default_cache_dir, demo_datamodule
from vireid_zoo.cli.demo import synthetic_sysu_with_parsing as demo_data
from vireid_zoo.core.records import MODALITY_CODES, Modality
from vireid_zoo.data.parsing import PartMaps
from vireid_zoo.evaluation.metric import RetrievalMetric
from vireid_zoo.evaluation.protocols import EvaluationSuite
from vireid_zoo.models.cscl import CSCL
from vireid_zoo.models.emif import EMIF
from vireid_zoo.models.mhn import MHN, BranchDecorrelationLoss

sys.path.insert(0, os.path.dirname(__file__))
from compare_methods import parse_setting  # noqa: E402


def test_batches(size: str, seed: int) -> tuple[DataLoader, EvaluationSuite, PartMaps]:
    """The demo's test loader (no augmentation), its suite and the part maps of its images."""
    preset = SIZES[size]
    root, parsing_root = demo_data(preset, default_cache_dir(), seed)
    datamodule = demo_datamodule(preset, root, seed, parsing_root)
    datamodule.setup("test")
    maps = PartMaps(datamodule.image_root(), parsing_root, datamodule.parsing_grouping)
    return datamodule.test_dataloader(), datamodule.test_suite, maps


def part_maps(
    maps: PartMaps, suite: EvaluationSuite, index: torch.Tensor, size: torch.Size
) -> torch.Tensor:
    """The grouped part maps (B, H, W) of the suite images ``index``, resized to ``size``."""
    loaded = []
    for i in index.tolist():
        path = suite.samples[i].path
        with Image.open(path) as image:
            loaded.append(maps.load(path, image.size).long())
    stacked = torch.stack(loaded)[:, None].float()
    return F.interpolate(stacked, size=tuple(size), mode="nearest")[:, 0].long()


def scores(metric: RetrievalMetric) -> dict[str, dict[str, float]]:
    """The mAP and Rank-1 (percent, mean over trials) of every task."""
    return {
        task: {key: round(100 * result.mean[key], 2) for key in ("mAP", "rank1")}
        for task, result in metric.compute().items()
    }


def modality_rows(batch: dict[str, torch.Tensor]) -> Iterator[tuple[Modality, torch.Tensor]]:
    """Each modality of a test batch that has images, with the indices of its rows."""
    for modality, code in MODALITY_CODES.items():
        rows = (batch["modality"] == code).nonzero(as_tuple=True)[0]
        if len(rows):
            yield modality, rows


def update(metric: RetrievalMetric, batch: dict[str, torch.Tensor], features: torch.Tensor) -> None:
    metric.update(batch["index"], features, batch["pid"], batch["camid"], batch["modality"])


@torch.no_grad()
def cscl_masks(
    directory: Path, size: str, seed: int, network: dict[str, object]
) -> dict[str, object]:
    net = CSCL.from_pretrained(directory, **network).eval()
    loader, suite, maps = test_batches(size, seed)
    metrics = {name: RetrievalMetric(suite) for name in ("predicted", "parsed")}
    for batch in loader:
        images = batch["image"]
        parsing = part_maps(maps, suite, batch["index"], images.shape[-2:])
        for name, metric in metrics.items():
            features = images.new_empty(len(images), net.embedding_dim)
            for modality, rows in modality_rows(batch):
                given = parsing[rows] if name == "parsed" else None
                output = net.features(images[rows], modality, parsing=given)
                features[rows] = net.embed_output(output)
            update(metric, batch, features)
    return {
        "pam_mask": net.pam_mask,
        "masks": {name: scores(metric) for name, metric in metrics.items()},
    }


@torch.no_grad()
def mhn_diversity(
    directory: Path, size: str, seed: int, network: dict[str, object]
) -> dict[str, object]:
    net = MHN.from_pretrained(directory, **network).eval()
    loader, _, _ = test_batches(size, seed)
    branches: dict[str, dict[str, list[torch.Tensor]]] = {
        m: {f"{b}_{k}": [] for b in ("channel", "spatial") for k in ("pool", "bn")}
        for m in MODALITY_CODES
    }
    for batch in loader:
        for modality, rows in modality_rows(batch):
            specific = net.backbone.forward_specific(batch["image"][rows], modality)
            heads = net._heads(specific, ("channel", "spatial"))
            for branch in ("channel", "spatial"):
                branches[modality][f"{branch}_pool"].append(heads[branch].pool)
                branches[modality][f"{branch}_bn"].append(heads[branch].bn)
    redundancy = BranchDecorrelationLoss()
    report = {}
    for modality, features in branches.items():
        stacked = {name: torch.cat(parts) for name, parts in features.items()}
        report[modality] = {}
        for kind in ("pool", "bn"):
            value = redundancy(stacked[f"channel_{kind}"], stacked[f"spatial_{kind}"])
            report[modality][kind] = round(value.item(), 4)
    return {"redundancy": report}


@torch.no_grad()
def emif_test_feature(
    directory: Path, size: str, seed: int, network: dict[str, object]
) -> dict[str, object]:
    loader, suite, _ = test_batches(size, seed)
    report = {}
    for concat in (False, True):
        net = EMIF.from_pretrained(directory, **{**network, "test_concat": concat}).eval()
        metric = RetrievalMetric(suite)
        for batch in loader:
            features = batch["image"].new_empty(len(batch["image"]), net.embedding_dim)
            for modality, rows in modality_rows(batch):
                features[rows] = net.extract_features(batch["image"][rows], modality)
            update(metric, batch, features)
        report[f"test_concat={concat}"] = scores(metric)
    return report


PROBES = {
    "cscl-masks": cscl_masks,
    "mhn-diversity": mhn_diversity,
    "emif-test-feature": emif_test_feature,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("probe", choices=PROBES)
    parser.add_argument("directory", type=Path, help="a network saved by compare_methods --save")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--network", type=parse_setting, action="append", default=[], metavar="ARG=VALUE"
    )
    args = parser.parse_args()
    report = PROBES[args.probe](args.directory, args.size, args.seed, dict(args.network))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
