"""Shared fixtures: small synthetic datasets in each real on-disk layout.

The datasets are written once per test session (they are read-only for the tests); a test
that needs to damage a dataset copies it first with :func:`copy_dataset`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from helpers import torch_state
from helpers.hub_server import FakeHub
from vireid_zoo.data.synthetic import make_llcm, make_regdb, make_sysu_mm01

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def unchanged_torch_settings() -> Iterator[None]:
    """Fail a test that leaves a process-wide torch setting changed (helpers/torch_state.py).

    Under xdist a worker runs whichever tests it is given, in order: a setting one test
    leaves behind (deterministic algorithms, threads, autocast, the default dtype, ...)
    would change the outcome of the tests after it.
    """
    before, environment = torch_state.snapshot(), torch_state.environment()
    yield
    torch_state.restore_environment(environment)
    changed = torch_state.changes(before, torch_state.snapshot())
    if changed:
        pytest.fail(
            f"the test left process-wide torch settings changed ({'; '.join(changed)}), so "
            "the tests after it in the same worker would run under them: restore them in the "
            "test (a try/finally or a fixture)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def sysu_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sysu_mm01(
        tmp_path_factory.mktemp("data") / "SYSU-MM01",
        num_train_ids=10,
        num_val_ids=3,
        num_test_ids=6,
        images_per_camera=3,
        image_size=(32, 16),
        seed=1,
    )


@pytest.fixture(scope="session")
def regdb_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_regdb(
        tmp_path_factory.mktemp("data") / "RegDB",
        num_ids=12,
        images_per_modality=3,
        image_size=(32, 16),
        seed=1,
    )


@pytest.fixture(scope="session")
def llcm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The parent folder's name contains "cam" on purpose: paths must be parsed relative to
    # the dataset root, never from the absolute path.
    return make_llcm(
        tmp_path_factory.mktemp("camera_data") / "cam9_LLCM",
        num_train_ids=10,
        num_test_ids=6,
        images_per_camera=2,
        image_size=(32, 16),
        seed=1,
    )


@pytest.fixture(scope="session")
def parsed_sysu(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic SYSU-MM01 with its ground-truth part maps (root, parsing root)."""
    base = tmp_path_factory.mktemp("parsed")
    root = make_sysu_mm01(
        base / "SYSU-MM01",
        num_train_ids=6,
        num_val_ids=2,
        num_test_ids=4,
        images_per_camera=2,
        image_size=(32, 16),
        seed=2,
        parsing_root=base / "parsing",
    )
    return root, base / "parsing"


@pytest.fixture(scope="session")
def sysu_with_maps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A smaller synthetic SYSU-MM01 with its part maps (root, parsing root), for the data
    tests; a test that changes either copies it first."""
    base = tmp_path_factory.mktemp("parsed_small")
    root = make_sysu_mm01(
        base / "SYSU-MM01",
        num_train_ids=4,
        num_val_ids=2,
        num_test_ids=2,
        images_per_camera=2,
        image_size=(32, 16),
        seed=3,
        parsing_root=base / "parsing",
    )
    return root, base / "parsing"


def copy_dataset(root: Path, destination: Path) -> Path:
    """Copy a session dataset so a test can damage it."""
    return Path(shutil.copytree(root, destination / root.name))


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A loopback server speaking the Hugging Face Hub's HTTP API (tests/hub_server.py)."""
    with FakeHub() as fake_hub:
        yield fake_hub
    assert not fake_hub.errors, fake_hub.errors[0]
