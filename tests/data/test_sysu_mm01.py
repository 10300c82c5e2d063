from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from conftest import copy_dataset
from helpers.standard_protocol import read_ids, standard_listing
from vireid_zoo.data import SYSUMM01, DatasetCountWarning, DatasetFormatError, DatasetNotFoundError

VISIBLE = ["cam1", "cam2", "cam4", "cam5"]


def paths(samples) -> list[str]:
    return [str(s.path) for s in samples]


def test_train_samples_follow_standard_order(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    ids = read_ids(str(sysu_root / "exp/train_id.txt")) + read_ids(
        str(sysu_root / "exp/val_id.txt")
    )
    samples = reader.train_samples()
    visible = [s for s in samples if s.modality == "visible"]
    infrared = [s for s in samples if s.modality == "infrared"]
    assert samples == visible + infrared
    assert paths(visible) == standard_listing(str(sysu_root), ids, VISIBLE, None)
    assert paths(infrared) == standard_listing(str(sysu_root), ids, ["cam3", "cam6"], None)
    assert {s.camid for s in visible} <= {1, 2, 4, 5}
    assert {s.camid for s in infrared} <= {3, 6}
    for sample in samples:
        assert sample.path.parent.name == f"{sample.pid:04d}"
        assert sample.path.parent.parent.name == f"cam{sample.camid}"


def test_train_split_holds_out_val_ids(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    val_ids = set(reader.ids("val"))
    assert not {s.pid for s in reader.train_samples("train")} & val_ids
    assert {s.pid for s in reader.train_samples("train+val")} >= val_ids


def test_query_is_every_infrared_test_image_in_standard_order(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    ids = read_ids(str(sysu_root / "exp/test_id.txt"))
    query = reader.query_samples()
    assert paths(query) == standard_listing(str(sysu_root), ids, ["cam3", "cam6"], None)
    assert {s.modality for s in query} == {"infrared"}


@pytest.mark.parametrize("mode,cameras", [("all", VISIBLE), ("indoor", ["cam1", "cam2"])])
def test_gallery_trials_equal_the_standard_random_sequence(
    sysu_root: Path, mode: str, cameras: list[str]
) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    ids = read_ids(str(sysu_root / "exp/test_id.txt"))
    galleries = set()
    for trial in range(10):
        expected = standard_listing(str(sysu_root), ids, cameras, trial)
        gallery = reader.gallery_samples(trial, mode)
        assert paths(gallery) == expected
        galleries.add(tuple(expected))
        pool = reader.gallery_pool(mode)
        assert [pool[i] for i in reader.gallery_trial(trial, mode)] == gallery
    assert len(galleries) > 1, "trials must differ"


def test_reader_leaves_global_random_state_alone(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    random.seed(1234)
    before = random.getstate()
    reader.gallery_samples(3)
    assert random.getstate() == before


def test_multi_shot_draws_ten_per_folder(sysu_root: Path, tmp_path: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    pool = reader.gallery_pool("all")
    picks = reader.gallery_trial(0, "all", shots=10)
    by_folder: dict[tuple[int, int], list[int]] = {}
    for index in range(len(pool)):
        by_folder.setdefault((pool[index].pid, pool[index].camid), []).append(index)
    picked = {key: [i for i in picks if i in set(members)] for key, members in by_folder.items()}
    for key, members in by_folder.items():
        assert len(picked[key]) == min(10, len(members))
    assert len(set(picks)) == len(picks)
    assert reader.gallery_trial(0, "all", shots=10) == picks


def _write_permutations(root: Path, reader: SYSUMM01, destination: Path) -> Path:
    """A rand_perm_cam.mat shaped like the official one: cell{cam}{pid} = (10 x n) 1-based."""
    rng = np.random.default_rng(0)
    max_pid = max(reader.ids("train") + reader.ids("val") + reader.ids("test"))
    cells = np.empty((6, 1), dtype=object)
    for camid in range(1, 7):
        per_id = np.empty((max_pid, 1), dtype=object)
        for pid in range(1, max_pid + 1):
            folder = root / f"cam{camid}" / f"{pid:04d}"
            n = len(list(folder.iterdir())) if folder.is_dir() else 0
            per_id[pid - 1, 0] = (
                np.stack([rng.permutation(n) + 1 for _ in range(10)]).astype(np.uint8)
                if n
                else np.zeros((10, 0), dtype=np.uint8)
            )
        cells[camid - 1, 0] = per_id
    path = destination / "rand_perm_cam.mat"
    scipy.io.savemat(path, {"rand_perm_cam": cells})
    return path


def test_official_sampling_uses_the_permutation_file(sysu_root: Path, tmp_path: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    permutation_file = _write_permutations(sysu_root, reader, tmp_path)
    official = SYSUMM01(sysu_root, check_counts=False, permutation_file=permutation_file)
    content = scipy.io.loadmat(permutation_file)["rand_perm_cam"]
    for trial in (0, 7):
        gallery = official.gallery_samples(trial, "all", sampling="official")
        expected = []
        for pid in sorted(reader.ids("test")):
            for camid in (1, 2, 4, 5):
                folder = sysu_root / f"cam{camid}" / f"{pid:04d}"
                if folder.is_dir():
                    files = sorted(folder.iterdir())
                    first = content[camid - 1, 0][pid - 1, 0][trial, 0]
                    expected.append(files[first - 1])
        assert [s.path for s in gallery] == expected


def test_official_sampling_without_file_says_where_to_get_it(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    with pytest.raises(ValueError, match="rand_perm_cam.mat"):
        reader.gallery_samples(0, sampling="official")


def test_official_permutation_of_another_copy_is_refused(sysu_root: Path, tmp_path: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    permutation_file = _write_permutations(sysu_root, reader, tmp_path)
    damaged = copy_dataset(sysu_root, tmp_path)
    pid = reader.ids("test")[0]
    folder = next(
        damaged / f"cam{c}" / f"{pid:04d}"
        for c in (1, 2, 4, 5)
        if (damaged / f"cam{c}" / f"{pid:04d}").is_dir()
    )
    sorted(folder.iterdir())[0].unlink()
    official = SYSUMM01(damaged, check_counts=False, permutation_file=permutation_file)
    with pytest.raises(DatasetFormatError, match="permutation covers"):
        official.gallery_samples(0, sampling="official")


def test_task_builds_ten_trials_over_one_pool(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    task = reader.task("indoor")
    assert task.name == "sysu_mm01/indoor"
    assert sorted(task.trials) == list(range(10))
    assert all(max(indices) < len(task.gallery_pool) for indices in task.trials.values())
    assert reader.task("all", shots=10).name == "sysu_mm01/all-10shot"


def test_missing_root_names_root_and_how_to_obtain(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        SYSUMM01(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "root folder" in message and "agreement" in message


def test_missing_camera_folder_is_named(sysu_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(sysu_root, tmp_path)
    for child in (damaged / "cam4").iterdir():
        for image in child.iterdir():
            image.unlink()
        child.rmdir()
    (damaged / "cam4").rmdir()
    with pytest.raises(DatasetNotFoundError, match="'cam4'"):
        SYSUMM01(damaged)


def test_missing_id_file_is_named(sysu_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(sysu_root, tmp_path)
    (damaged / "exp/val_id.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="exp/val_id.txt"):
        SYSUMM01(damaged)


def test_malformed_id_file_names_file_and_entry(sysu_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(sysu_root, tmp_path)
    (damaged / "exp/test_id.txt").write_text("1,2,x3\n")
    with pytest.raises(DatasetFormatError, match=r"test_id.txt line 1, entry 3: 'x3'"):
        SYSUMM01(damaged).query_samples()


def test_stray_file_in_identity_folder_is_reported(sysu_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(sysu_root, tmp_path)
    pid = SYSUMM01(damaged, check_counts=False).ids("test")[0]
    folder = next((damaged / "cam3").glob(f"{pid:04d}"), None) or next(
        (damaged / "cam6").glob(f"{pid:04d}")
    )
    (folder / "Thumbs.db").write_bytes(b"\0")
    with pytest.raises(DatasetFormatError, match="Thumbs.db"):
        SYSUMM01(damaged, check_counts=False).query_samples()


def test_counts_differing_from_published_warn_with_both_numbers(sysu_root: Path) -> None:
    reader = SYSUMM01(sysu_root)
    with pytest.warns(DatasetCountWarning) as record:
        reader.query_samples()
    messages = [str(w.message) for w in record]
    assert any("3803" in m and f"found {len(reader.query_samples())}" in m for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SYSUMM01(sysu_root, check_counts=False).query_samples()


def test_unknown_mode_is_refused(sysu_root: Path) -> None:
    with pytest.raises(ValueError, match="'outdoor'"):
        SYSUMM01(sysu_root, check_counts=False).gallery_samples(0, "outdoor")  # type: ignore[arg-type]
