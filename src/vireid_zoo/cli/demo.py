"""``vireid-zoo demo``: train and evaluate a small AGW on synthetic SYSU-MM01, on the CPU.

The demo writes a synthetic dataset in SYSU-MM01's real layout to a cache folder (once),
scores an untrained AGW (ResNet-18) under the SYSU-MM01 protocol (all-search and
indoor-search, 10 gallery trials), trains it with the Lightning ``Trainer`` and the
paired identity sampler, scores it again, prints both, and draws a ranked list and the
CMC curves. It exercises the same code paths as a real run: only the data and the model
size are small.
"""

from __future__ import annotations

import inspect
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader, Subset

from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.data.synthetic import make_sysu_mm01
from vireid_zoo.deploy.visualization import plot_cmc, plot_ranked_lists, rank_gallery
from vireid_zoo.evaluation import MultiTrialResult, cosine_distance
from vireid_zoo.models import AGWModule, VIReIDModule

DemoSizeName = Literal["tiny", "small", "large"]


@dataclass(frozen=True)
class DemoSize:
    """Dataset and training budget of a demo size."""

    train_ids: int
    val_ids: int
    test_ids: int
    images_per_camera: int
    image_size: tuple[int, int]
    epochs: int


SIZES: dict[str, DemoSize] = {
    "tiny": DemoSize(24, 4, 12, 3, (64, 32), 3),
    "small": DemoSize(100, 10, 30, 4, (96, 48), 6),
    "large": DemoSize(200, 20, 60, 6, (128, 64), 20),
}
"""``small`` is the default and finishes in well under 10 minutes on 2 CPU cores."""


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    untrained: dict[str, MultiTrialResult]
    trained: dict[str, MultiTrialResult]
    table: str
    ranked_list: Path
    cmc_curve: Path
    seconds: float


def default_cache_dir() -> Path:
    """``$VIREID_ZOO_CACHE`` or ``~/.cache/vireid-zoo``."""
    return Path(os.environ.get("VIREID_ZOO_CACHE", Path.home() / ".cache" / "vireid-zoo"))


def _synthetic_name(size: DemoSize, seed: int) -> str:
    height, width = size.image_size
    return (
        f"sysu_mm01-{size.train_ids}-{size.val_ids}-{size.test_ids}-"
        f"{size.images_per_camera}-{height}x{width}-seed{seed}"
    )


def synthetic_sysu_with_parsing(size: DemoSize, cache_dir: Path, seed: int) -> tuple[Path, Path]:
    """Write (once) and return the synthetic SYSU-MM01 of ``size`` and its true part maps.

    Dataset and maps are written together, the dataset last, so a cached dataset always
    has its maps (the maps never change the images).
    """
    root = cache_dir / "synthetic" / _synthetic_name(size, seed)
    parsing_root = root.with_name(f"{root.name}-maps")
    if not root.is_dir():
        if parsing_root.exists():  # maps of an interrupted write
            shutil.rmtree(parsing_root)
        make_sysu_mm01(
            root,
            num_train_ids=size.train_ids,
            num_val_ids=size.val_ids,
            num_test_ids=size.test_ids,
            images_per_camera=size.images_per_camera,
            image_size=size.image_size,
            seed=seed,
            parsing_root=parsing_root,
        )
    return root, parsing_root


def synthetic_sysu(size: DemoSize, cache_dir: Path, seed: int) -> Path:
    """Write (once) and return the synthetic SYSU-MM01 of ``size`` (cached with its maps)."""
    return synthetic_sysu_with_parsing(size, cache_dir, seed)[0]


def demo_datamodule(
    preset: DemoSize, root: Path, seed: int, parsing_root: Path | None = None
) -> SYSUMM01DataModule:
    """The demo's datamodule over the synthetic SYSU-MM01 at ``root`` (and its part maps)."""
    return SYSUMM01DataModule(
        root,
        image_size=preset.image_size,
        num_identities=8,
        num_instances=4,
        test_batch_size=128,
        num_workers=0,
        seed=seed,
        check_counts=False,
        parsing_root=parsing_root,
    )


def demo_recipe(
    module_class: type[VIReIDModule], num_classes: int, epochs: int, **settings: Any
) -> VIReIDModule:
    """A method's LightningModule with the demo's CPU recipe.

    ResNet-18 without ImageNet weights, Adam (lr 1e-3 for every layer), 2 warm-up epochs
    and a x0.1 step at 70% of the epochs: the reference SGD recipe needs ImageNet weights
    and 80 epochs, which a CPU demo cannot afford. Every method of the zoo accepts these
    arguments, so ``benchmarks/compare_methods.py`` trains them all alike.

    Args:
        module_class: The method's module.
        num_classes: Training identities.
        epochs: Training epochs (the learning-rate step is at 70% of them).
        **settings: Arguments of the method's network or module (each goes where its name
            belongs), e.g. ``test_concat=True`` or ``beta=0.5``.
    """
    network_parameters = inspect.signature(module_class.network_class.__init__).parameters
    network = {k: v for k, v in settings.items() if k in network_parameters}
    recipe = {k: v for k, v in settings.items() if k not in network_parameters}
    return module_class(
        {"num_classes": num_classes, "arch": "resnet18", "backbone_pretrained": False, **network},
        optimizer="adam",
        lr=1e-3,
        backbone_lr_ratio=1.0,
        warmup_epochs=2,
        milestones=(max(1, int(0.7 * epochs)),),
        **recipe,
    )


def cpu_trainer(progress: bool, **kwargs: Any) -> Trainer:
    """A CPU Trainer without logger or checkpoints."""
    return Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        **kwargs,
    )


def results_table(rows: dict[str, dict[str, MultiTrialResult]]) -> str:
    """Mean +- std over trials, in percent, one row per (model, task)."""
    scores = ("rank1", "rank10", "mAP", "mINP")
    header = f"{'model':<11}{'task':<19}" + "".join(f"{s:>15}" for s in scores)
    lines = [header, "-" * len(header)]
    for model, results in rows.items():
        for task, result in results.items():
            cells = "".join(
                f"{100 * result.mean[s]:>8.2f} ±{100 * result.std[s]:>5.2f}" for s in scores
            )
            lines.append(f"{model:<11}{task:<19}{cells}")
    trials = next(iter(next(iter(rows.values())).values())).trials
    lines.append(f"(mean ± std over {len(trials)} gallery trials, SYSU-MM01 protocol)")
    return "\n".join(lines)


def _pictures(module: VIReIDModule, dm: SYSUMM01DataModule, output: Path) -> Path:
    """Ranked lists of a few queries of the all-search task, trial 0."""
    suite = dm.test_suite
    task = next(t for t in suite.tasks if t.name == "sysu_mm01/all")
    step = max(1, len(task.query) // 6)
    query_indices = list(task.query[::step][:6])
    gallery_indices = list(task.galleries[0])
    # Embed only the pictured images (the test already scored every trial).
    pictured = Subset(dm.test_dataloader().dataset, query_indices + gallery_indices)
    module.eval()
    features = torch.cat(
        [
            module.embed(batch["image"], batch["modality"])
            for batch in DataLoader(pictured, batch_size=dm.test_batch_size)
        ]
    )
    query = [suite.samples[i] for i in query_indices]
    gallery = [suite.samples[i] for i in gallery_indices]
    distances = cosine_distance(features[: len(query)], features[len(query) :])
    ranked = rank_gallery(distances, query, gallery, protocol="sysu_mm01", top_k=10)
    return plot_ranked_lists(
        query,
        [[gallery[i] for i in row] for row in ranked],
        output / "ranked_list.png",
        title="Trained AGW: infrared queries, top-10 visible gallery (green: same person)",
    )


def run_demo(
    output: str | Path = "outputs/demo",
    *,
    size: DemoSizeName = "small",
    epochs: int | None = None,
    max_minutes: float = 6.0,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """Run the demo and write its pictures to ``output``.

    Args:
        output: Folder for ``ranked_list.png`` and ``cmc.png``.
        size: ``"tiny"`` (seconds), ``"small"`` (the default, a few minutes) or
            ``"large"``.
        epochs: Training epochs (default: the size's).
        max_minutes: Training stops after this many minutes even if epochs remain.
        cache_dir: Where the synthetic dataset is kept (default: [`default_cache_dir`][]).
        seed: Seed of the data, the model and the sampler.
        progress: Show progress bars.
    """
    started = time.perf_counter()
    preset = SIZES[size]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    root = synthetic_sysu(preset, Path(cache_dir or default_cache_dir()), seed)
    seed_everything(seed, verbose=False)
    dm = demo_datamodule(preset, root, seed)
    epochs = epochs or preset.epochs
    module = demo_recipe(AGWModule, dm.num_classes, epochs)
    cpu_trainer(progress).test(module, datamodule=dm, verbose=False)
    untrained = module.results["test"]
    training = cpu_trainer(progress, max_epochs=epochs, max_time={"minutes": max_minutes})
    training.fit(module, datamodule=dm)
    cpu_trainer(progress).test(module, datamodule=dm, verbose=False)
    trained = module.results["test"]
    table = results_table({"untrained": untrained, "trained": trained})
    cmc = plot_cmc(
        {
            f"{model} {task}": result.cmc
            for model, results in (("untrained", untrained), ("trained", trained))
            for task, result in results.items()
        },
        output / "cmc.png",
        title="AGW-ResNet18, synthetic SYSU-MM01 (mean of 10 trials)",
    )
    ranked = _pictures(module, dm, output)
    return DemoResult(untrained, trained, table, ranked, cmc, time.perf_counter() - started)
