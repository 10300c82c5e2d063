"""Score your own embeddings under the standard SYSU-MM01 protocol (10 trials).

The zoo's evaluation does not need a zoo model: embed the images of a suite with anything,
then score them. Here the "model" is a fixed random projection of tiny images, on a
synthetic SYSU-MM01 written in the real layout, so the script runs anywhere in seconds:

    python examples/evaluate_features.py [--root /data/SYSU-MM01]
    python examples/evaluate_features.py --smoke     # a tinier dataset, 2 trials
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from vireid_zoo.data import SYSUMM01, EvaluationDataset, build_test_transform
from vireid_zoo.data.synthetic import make_sysu_mm01
from vireid_zoo.evaluation import EvaluationSuite, RetrievalMetric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="a real SYSU-MM01 (default: synthetic)")
    parser.add_argument("--smoke", action="store_true", help="tiny synthetic data, 2 trials")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        size = {"num_train_ids": 2, "num_test_ids": 4, "images_per_camera": 2} if args.smoke else {}
        root = args.root or make_sysu_mm01(Path(scratch) / "SYSU-MM01", image_size=(64, 32), **size)
        sysu = SYSUMM01(root, check_counts=args.root is not None)
        trials = range(2 if args.smoke else 10)
        suite = EvaluationSuite.from_specs([sysu.task(m, trials) for m in ("all", "indoor")])
        dataset = EvaluationDataset(suite.samples, build_test_transform((32, 16)))

        torch.manual_seed(0)
        projection = torch.randn(3 * 32 * 16, 128)
        metric = RetrievalMetric(suite)
        for start in range(0, len(dataset), 64):
            items = [dataset[i] for i in range(start, min(start + 64, len(dataset)))]
            batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
            features = batch["image"].flatten(1) @ projection
            metric.update(batch["index"], features, batch["pid"], batch["camid"], batch["modality"])
        for result in metric.compute().values():
            print(result.table(), end="\n\n")


if __name__ == "__main__":
    main()
