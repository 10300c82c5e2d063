"""The training loader of a fit that can stop within an epoch and resume exactly.

Lightning saves the ``state_dict`` of a stateful training loader in every checkpoint of a
fit and, when it resumes from a checkpoint written within an epoch, hands it back to
``load_state_dict`` before it iterates the loader. [`ResumableTrainLoader`][] records
the epoch and the number of its steps already trained, and on resumption starts that
epoch's plan at the next step (the sampler's ``start_step``): the resumed fit sees
exactly the batches the uninterrupted one would have, since the plan and every image's
augmentation depend only on the data seed and the epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from vireid_zoo.data.sampler import CrossModalityIdentitySampler


class ResumableTrainLoader(DataLoader):
    """A DataLoader over a [`CrossModalityIdentitySampler`][] that Lightning can resume.

    The sampler's plan of an epoch is drawn when the first batch is requested, not when
    the iterator is created: Lightning creates the first iterator of a fit before it sets
    the sampler's epoch, and worker processes would otherwise prefetch the plan of the
    wrong epoch (a resumed fit with ``num_workers > 0`` then trained on epoch 0's plan).

    Args:
        dataset: The paired training dataset.
        sampler: Its identity sampler.
        trained_steps: The number of steps of the current epoch the fit has trained
            (read when a checkpoint is written; 0 outside a fit).
        **kwargs: `DataLoader` arguments.
    """

    sampler: CrossModalityIdentitySampler

    def __init__(
        self,
        dataset: Any,
        *,
        sampler: CrossModalityIdentitySampler,
        trained_steps: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.trained_steps = trained_steps
        self._resume_at: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        """The position of the fit: ``{"epoch": e, "steps": steps of epoch e trained}``."""
        return {"epoch": self.sampler.epoch, "steps": self.trained_steps()}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Start epoch ``state_dict["epoch"]`` at step ``state_dict["steps"]`` when it is next run.

        Lightning calls this when it resumes a fit from a checkpoint written within an
        epoch; a position of another epoch than the one the fit then runs (a checkpoint
        written at an epoch's end) changes nothing.
        """
        self._resume_at = (int(state_dict["epoch"]), int(state_dict["steps"]))

    # torch annotates DataLoader.__iter__ with its private _BaseDataLoaderIter; Lightning
    # only iterates what it returns.
    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return _DrawnOnFirstBatch(self)

    def _start(self) -> Iterator[Any]:
        """The real iterator, from the sampler's current epoch and the resume position.

        Raises:
            RuntimeError: the fit continues the epoch at another step than the loader
                would start from (its saved position was not handed back).
        """
        start = 0
        if self._resume_at is not None:
            epoch, steps = self._resume_at
            self._resume_at = None
            start = steps if epoch == self.sampler.epoch else 0
        trained = self.trained_steps()
        if start != trained:
            raise RuntimeError(
                f"the fit resumes epoch {self.sampler.epoch} after step {trained} of it, but the "
                f"training loader would start at step {start}: the loader's position was not "
                "restored (the checkpoint holds none, e.g. written by an older vireid-zoo, or "
                "Lightning skipped it, as it does when configure_optimizers reads "
                "trainer.estimated_stepping_batches). Resume from a checkpoint written at an "
                "epoch's end instead."
            )
        self.sampler.start_step = start
        return super().__iter__()


class _DrawnOnFirstBatch:
    """An iterator that creates the loader's iterator when the first batch is requested."""

    def __init__(self, loader: ResumableTrainLoader) -> None:
        self.loader = loader
        self.iterator: Iterator[Any] | None = None

    def __iter__(self) -> _DrawnOnFirstBatch:
        return self

    def __next__(self) -> Any:
        if self.iterator is None:
            self.iterator = self.loader._start()
        return next(self.iterator)
