"""Save a network, load it back from a folder (or the Hub), embed and search images.

Saving writes ``model.safetensors``, ``config.json`` (constructor arguments and the input
contract) and a model card; ``vz.create_model("local-dir:FOLDER")`` or
``vz.create_model("hf-hub:ORG/NAME[@REVISION]")`` rebuilds the network from them, with
its input contract in ``net.pretrained_cfg``. The script checks that the reloaded network
gives exactly the same embeddings, then searches a gallery of visible images for each
infrared query image with :func:`vireid_zoo.deploy.retrieval.search` and draws the ranked lists:

    python examples/load_and_embed.py           # an untrained AGW, synthetic images
    python examples/load_and_embed.py --source hf-hub:ORG/NAME --query night/ --gallery day/
    python examples/load_and_embed.py --smoke   # seconds: checks the code

Without ``--source``, an untrained ``agw_resnet18`` is saved to a temporary folder and
reloaded with ``local-dir:`` (its rankings are random: the round trip is the point).
Without ``--query`` / ``--gallery``, the images come from a small synthetic SYSU-MM01
(infrared camera 3 against visible camera 1).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import vireid_zoo as vz
from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.data.synthetic import make_sysu_mm01
from vireid_zoo.deploy.retrieval import plot_search, search
from vireid_zoo.models import VIReIDNetwork


def save_and_reload(folder: Path, input_size: tuple[int, int]) -> VIReIDNetwork:
    """Save an untrained AGW to ``folder``, reload it and check that nothing changed."""
    torch.manual_seed(0)
    net = vz.create_model("agw_resnet18", num_classes=0).eval()
    contract = PretrainedConfig(
        "agw_resnet18", input_size=input_size, embedding_dim=net.embedding_dim
    )
    net.save_pretrained(folder, pretrained_cfg=contract)
    print(f"saved {sorted(p.name for p in folder.iterdir())} to {folder}")

    loaded = vz.create_model(f"local-dir:{folder}")  # or type(net).from_pretrained(folder)
    images = torch.rand(2, 3, *input_size)
    with torch.no_grad():
        for modality in ("visible", "infrared"):
            expected = net.extract_features(images, modality)
            torch.testing.assert_close(loaded.extract_features(images, modality), expected)
    cfg = loaded.pretrained_cfg
    print(
        f"reloaded {type(loaded).__name__}: identical embeddings; input {cfg.input_size}, "
        f"{cfg.embedding_dim}-d {cfg.feature} embedding"
    )
    return loaded


def _short(path: Path) -> str:
    """The file and its folder (the identity folder in the synthetic layout)."""
    return "/".join(path.parts[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", help="hf-hub:ORG/NAME[@REV] or local-dir:PATH to load")
    parser.add_argument("--query", type=Path, help="folder of infrared query images")
    parser.add_argument("--gallery", type=Path, help="folder of visible gallery images")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("outputs/load_and_embed"))
    parser.add_argument("--smoke", action="store_true", help="tiny images, seconds")
    args = parser.parse_args()
    if (args.query is None) != (args.gallery is None):
        parser.error("give both --query and --gallery, or neither")
    input_size = (64, 32) if args.smoke else (288, 144)

    with tempfile.TemporaryDirectory() as scratch:
        if args.source:
            net = vz.create_model(args.source)
            print(f"loaded {args.source}: {net.pretrained_cfg}")
        else:
            net = save_and_reload(Path(scratch) / "agw_resnet18", input_size)
        query, gallery = args.query, args.gallery
        if query is None:
            root = make_sysu_mm01(
                Path(scratch) / "SYSU-MM01",
                num_train_ids=2 if args.smoke else 16,
                num_test_ids=2 if args.smoke else 8,
                images_per_camera=2 if args.smoke else 4,
                image_size=(32, 16) if args.smoke else (128, 64),
            )
            query, gallery = root / "cam3", root / "cam1"  # infrared, visible
        # The input size, normalisation and interpolation come from net.pretrained_cfg.
        result = search(
            net,
            query,
            gallery,
            query_modality="infrared",
            gallery_modality="visible",
            top_k=args.top_k,
        )
        for i, path in enumerate(result.query_paths[:3]):
            ranked = ", ".join(
                f"{_short(result.gallery_paths[j])} ({score:.3f})"
                for j, score in zip(
                    result.indices[i].tolist(), result.scores[i].tolist(), strict=True
                )
            )
            print(f"{_short(path)}: {ranked}")
        args.output.mkdir(parents=True, exist_ok=True)
        picture = plot_search(result, args.output / "ranked.png", max_queries=4)
        print(f"ranked lists of {len(result.query_paths)} queries drawn to {picture}")


if __name__ == "__main__":
    main()
