"""The GPU-ready training paths, run on the CPU: mixed precision, channels_last, compile.

Every method fits and tests under ``bf16-mixed`` and ``16-mixed`` autocast; a compiled
and a channels_last run of one tiny model train and embed as the eager float32 run does;
checkpoints keep plain ``net.*`` names, and weights saved through a hand-made
``torch.compile(module.net)`` (``net._orig_mod.*``) load under the one strict rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.plugins.precision import MixedPrecision

from helpers.configs import write_config
from vireid_zoo.cli import main
from vireid_zoo.core.weights import (
    WeightsMismatchError,
    align_compiled_names,
    load_weights_strict,
)
from vireid_zoo.data import SYSUMM01DataModule
from vireid_zoo.hub.checkpoints import load_trained_module
from vireid_zoo.models import AGW, AGWModule, CSCLModule, EMIFModule, MHNModule
from vireid_zoo.models.base import VIReIDModule

METHODS = [AGWModule, MHNModule, EMIFModule, CSCLModule]
HALF = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def datamodule(root: Path, **settings: Any) -> SYSUMM01DataModule:
    """The tiny SYSU-MM01 data of tests/test_cli.py's ``write_config``."""
    return SYSUMM01DataModule(
        root,
        image_size=(32, 16),
        num_identities=3,
        num_instances=2,
        num_workers=0,
        samples_per_epoch=12,
        trials=2,
        check_counts=False,
        **settings,
    )


def trainer(tmp_path: Path, max_steps: int = 1, **settings: Any) -> Trainer:
    return Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **settings,
    )


def build(module_class: type[VIReIDModule], num_classes: int, **recipe: Any) -> VIReIDModule:
    seed_everything(0, verbose=False)
    network = {"arch": "resnet18", "num_classes": num_classes, "backbone_pretrained": False}
    return module_class(network, **recipe)


class StepRecorder(Callback):
    """Every training step's logged terms, and the dtype the first convolution computed in."""

    def __init__(self) -> None:
        self.terms: list[dict[str, float]] = []
        self.conv_dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        conv = next(m for m in pl_module.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda _, __, output: self.conv_dtypes.add(output.dtype))

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        metrics = trainer.callback_metrics
        self.terms.append({k: float(v) for k, v in metrics.items() if k.startswith("train/")})


# Mixed precision ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("precision", list(HALF))
@pytest.mark.parametrize("module_class", METHODS, ids=lambda c: c.__name__)
def test_every_method_fits_and_tests_under_mixed_precision(
    module_class: type[VIReIDModule],
    precision: str,
    sysu_root: Path,
    parsed_sysu: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    if module_class is CSCLModule:
        data = datamodule(parsed_sysu[0], parsing_root=parsed_sysu[1])
    else:
        data = datamodule(sysu_root)
    module = build(module_class, data.num_classes)
    initial = [p.detach().clone() for p in module.parameters()]
    recorder = StepRecorder()
    # Trainer(precision="16-mixed") on the CPU silently runs bfloat16: the plugin keeps
    # float16, with a gradient scaler whose scale lets the first step through (CPU float16
    # is slow: one step).
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8) if precision == "16-mixed" else None
    run = trainer(tmp_path, plugins=[MixedPrecision(precision, "cpu", scaler)])
    run.callbacks.append(recorder)
    run.fit(module, datamodule=data)
    assert recorder.conv_dtypes == {HALF[precision]}  # autocast did run the network
    (terms,) = recorder.terms
    assert len(terms) > 2 and all(math.isfinite(value) for value in terms.values()), terms
    after = list(module.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    changed = sum(not torch.equal(a, b) for a, b in zip(after, initial, strict=True))
    assert changed > 20  # a step was taken
    (metrics,) = run.test(module, datamodule=data, verbose=False)
    scores = {k: v for k, v in metrics.items() if k.endswith("/mAP")}
    assert scores and all(0 < v <= 1 for v in scores.values()), metrics


@pytest.mark.parametrize("precision", list(HALF))
def test_a_half_precision_step_does_not_depend_on_process_wide_modes(
    precision: str, sysu_root: Path, parsed_sysu: tuple[Path, Path]
) -> None:
    # Modes an earlier test in the same worker could have left (issue 12, item 17): the
    # deterministic algorithms a Trainer(deterministic=True) turns on, another thread count.
    for module_class in METHODS:
        if module_class is CSCLModule:
            data = datamodule(parsed_sysu[0], parsing_root=parsed_sysu[1])
        else:
            data = datamodule(sysu_root)
        data.setup("fit")
        batch = next(iter(data.train_dataloader()))
        module = build(module_class, data.num_classes)
        runs, previous = [], torch.get_num_threads()
        for deterministic, threads in ((False, previous), (True, previous + 1)):
            torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)
            try:
                with torch.no_grad(), torch.autocast("cpu", dtype=HALF[precision]):
                    runs.append(module.compute_losses(batch))
            finally:
                torch.use_deterministic_algorithms(False)
                torch.set_num_threads(previous)
        for terms in runs:
            assert all(torch.isfinite(v) for v in terms.values()), (module_class, terms)
        torch.testing.assert_close(runs[1], runs[0], rtol=1e-2, atol=1e-3)


# channels_last and compile ----------------------------------------------------------------


@dataclass
class Run:
    """One SGD step of a tiny AGW: the module, its checkpoint, what it started from."""

    module: AGWModule
    checkpoint: Path
    initial: dict[str, torch.Tensor]
    graphs: int
    """Graphs torch.compile captured during the fit."""


def fit_one_step(root: Path, directory: Path, **recipe: Any) -> Run:
    data = datamodule(root)
    module = build(AGWModule, data.num_classes, **recipe)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    run = trainer(directory)
    run.fit(module, datamodule=data)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
    path = directory / "one_step.ckpt"
    run.save_checkpoint(path)
    return Run(module, path, initial, graphs)


def assert_same_step(expected: Run, got: Run) -> None:
    """The same weights after the step, and the same update (the step did change them)."""
    after = got.module.state_dict()
    assert after.keys() == expected.initial.keys()
    changed = 0
    for key, value in expected.module.state_dict().items():
        if not value.is_floating_point():
            assert torch.equal(after[key], value), key
            continue
        update = value - expected.initial[key]
        changed += bool(update.abs().max() > 0)
        torch.testing.assert_close(after[key] - got.initial[key], update, msg=key)
    assert changed > 20


@pytest.fixture(scope="module")
def eager_run(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return fit_one_step(sysu_root, tmp_path_factory.mktemp("eager"))


@pytest.fixture(scope="module")
def compiled_run(sysu_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return fit_one_step(sysu_root, tmp_path_factory.mktemp("compiled"), compile=True)


def test_channels_last_trains_as_the_default_layout(
    eager_run: Run, sysu_root: Path, tmp_path: Path
) -> None:
    run = fit_one_step(sysu_root, tmp_path, channels_last=True)
    module, path = run.module, run.checkpoint
    conv = module.net.backbone.visible_stages[0].conv1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert_same_step(eager_run, run)
    # Its checkpoint loads into a module of the default layout, and the reverse.
    plain = AGWModule.load_from_checkpoint(path, channels_last=False)
    assert plain.net.backbone.visible_stages[0].conv1.weight.is_contiguous()
    for key, value in module.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key
    again = AGWModule.load_from_checkpoint(eager_run.checkpoint, channels_last=True)
    again.configure_model()
    assert again.net.backbone.visible_stages[0].conv1.weight.is_contiguous(
        memory_format=torch.channels_last
    )


@pytest.mark.slow
def test_a_compiled_training_step_equals_the_eager_one(eager_run: Run, compiled_run: Run) -> None:
    assert compiled_run.module._compiled is not None
    assert compiled_run.graphs > 0 and eager_run.graphs == 0  # the compiled step did run
    assert_same_step(eager_run, compiled_run)


@pytest.mark.slow
def test_compiled_extraction_equals_eager_and_loads_an_eager_checkpoint(eager_run: Run) -> None:
    eager, path = eager_run.module, eager_run.checkpoint
    compiled = AGWModule.load_from_checkpoint(path, compile=True)
    compiled.configure_model()
    torch.manual_seed(1)
    images = torch.randn(6, 3, 32, 16)
    for code in (0, 1):  # visible, infrared
        modalities = torch.full((6,), code)
        expected = eager.eval().embed(images, modalities)
        torch.testing.assert_close(compiled.eval().embed(images, modalities), expected)


@pytest.mark.slow
def test_a_compiled_runs_checkpoint_has_plain_names_and_tests_uncompiled(
    compiled_run: Run, sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module, path = compiled_run.module, compiled_run.checkpoint
    state = torch.load(path, weights_only=True)["state_dict"]
    assert state and all(k.startswith("net.") and "_orig_mod" not in k for k in state)
    plain = AGWModule.load_from_checkpoint(path, compile=False)
    for key, value in module.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value), key
    config = write_config(tmp_path, sysu_root)
    assert main(["test", "--config", str(config), "--ckpt_path", str(path)]) == 0
    assert "sysu_mm01/all" in capsys.readouterr().out


# Weights saved through a hand-made torch.compile(module.net) -------------------------------


def test_a_checkpoint_of_a_hand_compiled_network_loads_into_a_plain_module(
    sysu_root: Path, tmp_path: Path
) -> None:
    data = datamodule(sysu_root)
    module = build(AGWModule, data.num_classes)
    module.net = torch.compile(module.net)  # what a user may write; weights: net._orig_mod.*
    run = trainer(tmp_path)
    run.fit(module, datamodule=data)
    path = tmp_path / "hand_compiled.ckpt"
    run.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert all(k.startswith("net._orig_mod.") for k in saved)
    trained = {k.replace("_orig_mod.", ""): v for k, v in saved.items()}
    for loaded in (AGWModule.load_from_checkpoint(path), load_trained_module(path)[0]):
        state = loaded.state_dict()
        assert state.keys() == trained.keys()
        assert all(torch.equal(state[k], v) for k, v in trained.items())
    # And the reverse: a plain checkpoint into a hand-compiled module.
    target = build(AGWModule, data.num_classes)
    target.net = torch.compile(target.net)
    checkpoint = {"state_dict": dict(trained)}
    target.on_load_checkpoint(checkpoint)
    target.load_state_dict(checkpoint["state_dict"])
    assert all(torch.equal(target.state_dict()[k], v) for k, v in saved.items())


def test_compiled_names_are_aligned_without_weakening_the_strict_rule() -> None:
    net = AGW(4, arch="resnet18")
    state = {f"_orig_mod.{k}": v for k, v in net.state_dict().items()}
    other = AGW(4, arch="resnet18")
    load_weights_strict(other, state, source="compiled.safetensors")
    assert all(torch.equal(other.state_dict()[k], v) for k, v in net.state_dict().items())
    # A missing weight is still refused, named without the prefix.
    state.pop("_orig_mod.neck.bn.weight")
    with pytest.raises(WeightsMismatchError, match=r"1 missing \(e\.g\. \['neck\.bn\.weight'\]"):
        load_weights_strict(other, state, source="compiled.safetensors")
    # The same weight under both names is ambiguous.
    both = {"neck.bn.weight": torch.ones(1), "_orig_mod.neck.bn.weight": torch.ones(1)}
    with pytest.raises(WeightsMismatchError, match="with and without torch.compile"):
        align_compiled_names(net.state_dict(), both, "two.safetensors")
