"""LightningDataModules: the shared base and one thin subclass per dataset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from vireid_zoo.core.contract import IMAGENET_MEAN, IMAGENET_STD
from vireid_zoo.core.records import Sample
from vireid_zoo.core.spawn import refuse_unguarded_spawn
from vireid_zoo.data.cache import CachedArrays, ImageCache
from vireid_zoo.data.datasets import EvaluationDataset, PairedTrainDataset, training_labels
from vireid_zoo.data.folder import ManifestDataset
from vireid_zoo.data.llcm import LLCM
from vireid_zoo.data.llcm import Direction as LLCMDirection
from vireid_zoo.data.parsing import PartGrouping, PartMaps
from vireid_zoo.data.regdb import Direction as RegDBDirection
from vireid_zoo.data.regdb import RegDB
from vireid_zoo.data.resumable import ResumableTrainLoader
from vireid_zoo.data.sampler import CrossModalityIdentitySampler
from vireid_zoo.data.sysu_mm01 import SYSUMM01, GallerySampling, SearchMode
from vireid_zoo.data.transforms import (
    build_paired_train_transform,
    build_test_transform,
    build_train_transform,
)
from vireid_zoo.evaluation.functional import Protocol
from vireid_zoo.evaluation.protocols import EvaluationSuite, TaskSpec


class VIReIDDataModule(LightningDataModule):
    """Shared training and evaluation data plumbing.

    Training batches come from a [`CrossModalityIdentitySampler`][] (P identities x K
    visible + K infrared images, DDP-aware) through a
    [`ResumableTrainLoader`][], so a fit stopped within an
    epoch resumes at the step it reached. Evaluation batches cover an
    [`EvaluationSuite`][]: every image of the run's tasks, embedded once.

    Subclasses implement [`train_samples`][], [`test_tasks`][] and optionally
    [`val_tasks`][].

    Args:
        image_size: ``(height, width)`` of the network input.
        num_identities: P, identities per training step and rank.
        num_instances: K, images per identity and modality in a step.
        test_batch_size: Batch size of evaluation loaders.
        num_workers: Data loading worker processes.
        seed: Seed of the identity sampler (the plan of epoch e depends on seed and e).
        samples_per_epoch: Images per modality an epoch covers (over all ranks); defaults
            to the larger modality's training set.
        pad: Zero padding before the training random crop.
        random_erasing: Random erasing probability for training images.
        channel_augmentation: CAJ channel augmentation for visible training images.
        interpolation: Resize interpolation (``bilinear``, ``bicubic``, ``lanczos``).
        mean: Normalisation mean.
        std: Normalisation standard deviation.
        pin_memory: Pin batches in memory (useful with a GPU).
        parsing_root: Folder of human-parsing maps parallel to the dataset root (CSCL; see
            docs/parsing.md): training batches then also hold ``visible_parsing`` and
            ``infrared_parsing`` part maps. None loads no maps.
        parsing_grouping: How parser labels become parts: a name of
            [`GROUPINGS`][vireid_zoo.data.parsing.GROUPINGS] (``"lip5"``: LIP into background, head,
            upper body, lower body, shoes) or a mapping ``{part: [parser labels]}`` with the
            background first.
        parsing_ignore_label: Parser label of pixels the parsing loss ignores (None: none).
        image_cache: Folder of pre-resized image caches (docs/datasets.md, "Loading speed and
            the image cache"): every image of a split is decoded and resized to ``image_size``
            once, into a memory-mapped uint8 file per split, and the loaders read it
            instead of decoding the files (same tensors under the same seed). Built on
            first use, by ``prepare_data`` (one process per node) or the first loader;
            rebuilt when the split's files or the image size change. None decodes every
            image on the fly.
    """

    dataset_name = "dataset"

    def __init__(
        self,
        *,
        image_size: tuple[int, int] = (288, 144),
        num_identities: int = 8,
        num_instances: int = 4,
        test_batch_size: int = 64,
        num_workers: int = 4,
        seed: int = 0,
        samples_per_epoch: int | None = None,
        pad: int = 10,
        random_erasing: float = 0.5,
        channel_augmentation: bool = False,
        interpolation: str = "bilinear",
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        pin_memory: bool = False,
        parsing_root: str | Path | None = None,
        parsing_grouping: str | Mapping[str, Sequence[int]] = "lip5",
        parsing_ignore_label: int | None = 255,
        image_cache: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        self.num_identities = num_identities
        self.num_instances = num_instances
        self.test_batch_size = test_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.samples_per_epoch = samples_per_epoch
        self.pad = pad
        self.random_erasing = random_erasing
        self.channel_augmentation = channel_augmentation
        self.interpolation = interpolation
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.pin_memory = pin_memory
        self.parsing_root = None if parsing_root is None else Path(parsing_root)
        self.parsing_grouping = PartGrouping.from_config(parsing_grouping, parsing_ignore_label)
        self.image_cache = None if image_cache is None else Path(image_cache).expanduser()
        self._caches: dict[str, CachedArrays] = {}

    # Dataset-specific hooks -------------------------------------------------------------

    def train_samples(self) -> list[Sample]:
        """Training images of both modalities."""
        raise NotImplementedError

    def test_tasks(self) -> list[TaskSpec]:
        """The tasks a test run scores."""
        raise NotImplementedError

    def val_tasks(self) -> list[TaskSpec]:
        """The tasks a validation run scores; none by default (no test-set selection)."""
        return []

    def image_root(self) -> Path:
        """The folder the images' paths are relative to (parsing maps mirror it)."""
        dataset = getattr(self, "dataset", None)
        if dataset is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement image_root() to load parsing maps"
            )
        return Path(dataset.root)

    # Shared machinery ---------------------------------------------------------------------

    @cached_property
    def _train_samples(self) -> list[Sample]:
        return self.train_samples()

    @property
    def num_classes(self) -> int:
        """Number of training identities: the classifier size a model needs."""
        return len(training_labels(self._train_samples))

    @cached_property
    def test_suite(self) -> EvaluationSuite:
        """Images and tasks of the test run."""
        return EvaluationSuite.from_specs(self.test_tasks())

    @cached_property
    def val_suite(self) -> EvaluationSuite | None:
        """Images and tasks of validation, or None when the dataset defines none."""
        tasks = self.val_tasks()
        return EvaluationSuite.from_specs(tasks) if tasks else None

    def _train_transform(self, channel_augmentation: bool) -> Any:
        build = build_train_transform if self.parsing_root is None else build_paired_train_transform
        return build(
            self.image_size,
            pad=self.pad,
            random_erasing=self.random_erasing,
            channel_augmentation=channel_augmentation,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            resize=self.image_cache is None,
        )

    def _test_transform(self) -> Any:
        return build_test_transform(
            self.image_size,
            mean=self.mean,
            std=self.std,
            interpolation=self.interpolation,
            resize=self.image_cache is None,
        )

    # Image cache --------------------------------------------------------------------------

    def _cached(self, split: str) -> CachedArrays | None:
        """The image cache of ``split`` (train, val, test), built if missing; None if off."""
        if self.image_cache is None:
            return None
        if split not in self._caches:
            samples: Sequence[Sample]
            if split == "train":
                samples = self._train_samples
            else:
                suite = self.val_suite if split == "val" else self.test_suite
                if suite is None:
                    raise ValueError(f"{type(self).__name__} has no {split} split")
                samples = suite.samples
            cache = ImageCache(
                self.image_cache,
                self.image_size,
                self.interpolation,
                num_workers=self.num_workers,
            )
            name = f"{self.dataset_name}-{split}"
            self._caches[split] = cache.images(name, [s.path for s in samples])
            if split == "train" and self.parsing_root is not None:
                maps = self.part_maps()
                assert maps is not None
                paths = [s.path for s in samples]
                self._caches["train-parsing"] = cache.part_maps(name, paths, maps)
        return self._caches[split]

    def _splits_of(self, stage: TrainerFn | None) -> list[str]:
        """The splits a trainer run of ``stage`` loads."""
        if stage == TrainerFn.FITTING:
            return ["train"] + (["val"] if self.val_suite is not None else [])
        if stage == TrainerFn.VALIDATING:
            return ["val"] if self.val_suite is not None else []
        if stage in (TrainerFn.TESTING, TrainerFn.PREDICTING):
            return ["test"]
        return []

    def prepare_data(self) -> None:
        """Build the image caches of the trainer's run, when ``image_cache`` is set.

        Lightning calls this on one process per node (local rank 0) while the other
        processes wait, so DDP ranks find the caches built; a loader still builds a
        missing cache itself (atomically), e.g. on a node-local folder.
        """
        if self.image_cache is None:
            return
        stage = None if self.trainer is None else self.trainer.state.fn
        for split in self._splits_of(stage):
            self._cached(split)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def part_maps(self) -> PartMaps | None:
        """The training images' parsing maps, checked to exist; None without ``parsing_root``.

        Raises:
            ParsingMapsNotFoundError: with the number of images without a map and the first.
        """
        if self.parsing_root is None:
            return None
        maps = PartMaps(self.image_root(), self.parsing_root, self.parsing_grouping)
        maps.check(self._train_samples)
        return maps

    def _trained_steps(self) -> int:
        """Steps of the current epoch the fit has trained (0 outside a fit)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        # Lightning annotates batch_progress.current as the _ReadyCompletedTracker that its
        # _ProcessedTracker extends; the batch progress holds a _ProcessedTracker.
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed  # type: ignore[attr-defined]

    def train_dataloader(self) -> DataLoader:
        """Paired P x K batches from the cross-modality identity sampler (resumable)."""
        parsing = self.part_maps()
        image_cache = self._cached("train")  # with parsing maps, also caches them
        dataset = PairedTrainDataset(
            self._train_samples,
            visible_transform=self._train_transform(self.channel_augmentation),
            infrared_transform=self._train_transform(False),
            parsing=parsing,
            image_cache=image_cache,
            parsing_cache=self._caches.get("train-parsing"),
        )
        world_size, rank = self._world()
        sampler = CrossModalityIdentitySampler(
            dataset,
            dataset.visible_labels,
            dataset.infrared_labels,
            num_identities=self.num_identities,
            num_instances=self.num_instances,
            num_replicas=world_size,
            rank=rank,
            seed=self.seed,
            samples_per_epoch=self.samples_per_epoch,
        )
        return ResumableTrainLoader(
            dataset,
            sampler=sampler,
            trained_steps=self._trained_steps,
            batch_size=sampler.batch_size,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def _evaluation_loader(self, suite: EvaluationSuite, split: str) -> DataLoader:
        dataset = EvaluationDataset.from_suite(suite, self._test_transform(), self._cached(split))
        return DataLoader(
            dataset,
            batch_size=self.test_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """Validation images, or no loader when the dataset defines no validation split."""
        suite = self.val_suite
        return [] if suite is None else self._evaluation_loader(suite, "val")

    def test_dataloader(self) -> DataLoader:
        """Every image of the test suite, each once, in suite order."""
        return self._evaluation_loader(self.test_suite, "test")

    def predict_dataloader(self) -> DataLoader:
        """The test suite's images, for embedding them with ``Trainer.predict``."""
        return self._evaluation_loader(self.test_suite, "test")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for ``ddp_spawn``: refused at once from a script without a main guard."""
        refuse_unguarded_spawn(type(self).__name__)
        return self.__dict__  # object's default state (its __getstate__ is Python 3.11+)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint records about the data it was trained on and its input contract."""
        return {
            "dataset": self.dataset_name,
            "num_classes": self.num_classes,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
        }


class SYSUMM01DataModule(VIReIDDataModule):
    """SYSU-MM01: 395 training identities; test modes ``all`` and ``indoor``.

    Args:
        root: The dataset folder.
        modes: Search modes the test run scores (each logged under its name).
        trials: Number of gallery trials (seeds 0..trials-1); 10 in the protocol.
        shots: 1 (single-shot, standard) or 10 (multi-shot) gallery images per
            (identity, camera).
        sampling: ``"standard"`` (seeded ``random.choice``, as every published number) or
            ``"official"`` (the official MATLAB permutations; needs ``permutation_file``).
        permutation_file: The official ``rand_perm_cam.mat``.
        validation: Hold the ``val`` identities out of training and validate on them
            (all-search, ``val_trials`` trials) instead of training on train+val ids.
        val_trials: Gallery trials of validation.
        check_counts: Warn when counts differ from the published dataset.
        **kwargs: [`VIReIDDataModule`][] arguments.
    """

    dataset_name = "sysu_mm01"

    def __init__(
        self,
        root: str | Path,
        *,
        modes: Sequence[SearchMode] = ("all", "indoor"),
        trials: int = 10,
        shots: int = 1,
        sampling: GallerySampling = "standard",
        permutation_file: str | Path | None = None,
        validation: bool = False,
        val_trials: int = 1,
        check_counts: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = SYSUMM01(root, check_counts=check_counts, permutation_file=permutation_file)
        self.modes = tuple(modes)
        self.trials = trials
        self.shots = shots
        self.sampling = sampling
        self.validation = validation
        self.val_trials = val_trials

    def train_samples(self) -> list[Sample]:
        """Training images of the train+val identities (train only with ``validation``)."""
        return self.dataset.train_samples("train" if self.validation else "train+val")

    def test_tasks(self) -> list[TaskSpec]:
        """One task per search mode."""
        return [
            self.dataset.task(mode, range(self.trials), self.shots, "test", self.sampling)
            for mode in self.modes
        ]

    def val_tasks(self) -> list[TaskSpec]:
        """All-search on the held-out val identities, when ``validation`` is on."""
        if not self.validation:
            return []
        return [self.dataset.task("all", range(self.val_trials), 1, "val")]


class RegDBDataModule(VIReIDDataModule):
    """RegDB: one model per trial, trained and tested on that trial's split.

    A checkpoint records its trial; restoring it into a datamodule of another trial
    fails, because that trial's test identities were seen in training.

    Args:
        root: The dataset folder.
        trial: The split, 1..10.
        directions: Directions the test run scores.
        check_counts: Warn when counts differ from the published dataset.
        **kwargs: [`VIReIDDataModule`][] arguments.
    """

    dataset_name = "regdb"

    def __init__(
        self,
        root: str | Path,
        *,
        trial: int = 1,
        directions: Sequence[RegDBDirection] = ("visible_to_thermal", "thermal_to_visible"),
        check_counts: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = RegDB(root, trial, check_counts=check_counts)
        self.directions = tuple(directions)

    def train_samples(self) -> list[Sample]:
        """Training images of this trial."""
        return self.dataset.train_samples()

    def test_tasks(self) -> list[TaskSpec]:
        """One task per direction."""
        return [self.dataset.task(direction) for direction in self.directions]

    def state_dict(self) -> dict[str, Any]:
        """Record the trial with the checkpoint."""
        return {**super().state_dict(), "trial": self.dataset.trial}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint trained on another trial's split."""
        trained_on = state_dict.get("trial")
        if trained_on is not None and trained_on != self.dataset.trial:
            raise ValueError(
                f"this checkpoint was trained on RegDB trial {trained_on}, but the datamodule "
                f"tests trial {self.dataset.trial}: trial {self.dataset.trial}'s test "
                f"identities overlap trial {trained_on}'s training identities. Set "
                f"data.trial={trained_on} or use a model trained on trial {self.dataset.trial}."
            )


class LLCMDataModule(VIReIDDataModule):
    """LLCM: 713 training identities; test directions IR-to-VIS and VIS-to-IR.

    Args:
        root: The dataset folder.
        directions: Directions the test run scores.
        trials: Number of gallery trials (seeds 0..trials-1); 10 in the protocol.
        check_counts: Warn when counts differ from the published dataset.
        **kwargs: [`VIReIDDataModule`][] arguments.
    """

    dataset_name = "llcm"

    def __init__(
        self,
        root: str | Path,
        *,
        directions: Sequence[LLCMDirection] = ("ir_to_vis", "vis_to_ir"),
        trials: int = 10,
        check_counts: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = LLCM(root, check_counts=check_counts)
        self.directions = tuple(directions)
        self.trials = trials

    def train_samples(self) -> list[Sample]:
        """Training images from the idx files."""
        return self.dataset.train_samples()

    def test_tasks(self) -> list[TaskSpec]:
        """One task per direction."""
        return [self.dataset.task(d, range(self.trials)) for d in self.directions]


class ManifestDataModule(VIReIDDataModule):
    """A user's own dataset from a CSV manifest (``path,pid,camera,modality,split``).

    Args:
        manifest: The CSV file.
        root: Folder relative paths start from (default: the manifest's folder).
        protocol: Exclusion and CMC rule (see [`ManifestDataset`][]).
        trials: Number of gallery trials.
        gallery_shots: ``None`` uses the whole gallery; ``k`` samples ``k`` images per
            (identity, camera) per trial with the standard seeded sequence.
        **kwargs: [`VIReIDDataModule`][] arguments.
    """

    dataset_name = "manifest"

    def __init__(
        self,
        manifest: str | Path,
        *,
        root: str | Path | None = None,
        protocol: Protocol = "llcm",
        trials: int = 1,
        gallery_shots: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = ManifestDataset(manifest, root, protocol)
        self.trials = trials
        self.gallery_shots = gallery_shots

    def train_samples(self) -> list[Sample]:
        """Rows of split ``train``."""
        return self.dataset.train_samples()

    def test_tasks(self) -> list[TaskSpec]:
        """The manifest's query/gallery task."""
        return [self.dataset.task(range(self.trials), self.gallery_shots)]
