from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_dataset
from helpers.standard_protocol import read_ids, standard_listing
from vireid_zoo.data import LLCM, DatasetCountWarning, DatasetFormatError, DatasetNotFoundError
from vireid_zoo.data.llcm import camera_from_relative_path

VIS_TREES = [f"test_vis/cam{c}" for c in range(1, 10)]
NIR_TREES = [f"test_nir/cam{c}" for c in (1, 2, 4, 5, 6, 7, 8, 9)]


def test_root_path_containing_cam_does_not_confuse_parsing(llcm_root: Path) -> None:
    assert "cam" in str(llcm_root.parent) and "cam" in llcm_root.name
    reader = LLCM(llcm_root, check_counts=False)
    for sample in reader.query_samples("ir_to_vis") + reader.query_samples("vis_to_ir"):
        relative = sample.path.relative_to(llcm_root).parts
        assert relative[1] == f"cam{sample.camid}"
        assert relative[2] == f"{sample.pid:04d}"


@pytest.mark.parametrize(
    "direction,query_trees,gallery_trees,query_modality",
    [
        ("ir_to_vis", NIR_TREES, VIS_TREES, "infrared"),
        ("vis_to_ir", VIS_TREES, NIR_TREES, "visible"),
    ],
)
def test_directions_follow_the_plain_meaning(
    llcm_root: Path, direction: str, query_trees, gallery_trees, query_modality: str
) -> None:
    reader = LLCM(llcm_root, check_counts=False)
    ids = read_ids(str(llcm_root / "idx/test_id.txt"))
    query = reader.query_samples(direction)
    assert [str(s.path) for s in query] == standard_listing(str(llcm_root), ids, query_trees, None)
    assert {s.modality for s in query} == {query_modality}
    for trial in range(10):
        gallery = reader.gallery_samples(trial, direction)
        assert [str(s.path) for s in gallery] == standard_listing(
            str(llcm_root), ids, gallery_trees, trial
        )
        assert {s.modality for s in gallery} != {query_modality}


def test_no_near_infrared_camera_3(llcm_root: Path) -> None:
    reader = LLCM(llcm_root, check_counts=False)
    infrared = reader.query_samples("ir_to_vis") + [
        s for s in reader.train_samples() if s.modality == "infrared"
    ]
    assert 3 not in {s.camid for s in infrared}


def test_train_samples_take_labels_from_index_and_cameras_from_paths(llcm_root: Path) -> None:
    reader = LLCM(llcm_root, check_counts=False)
    samples = reader.train_samples()
    lines = (llcm_root / "idx/train_vis.txt").read_text().splitlines()
    lines += (llcm_root / "idx/train_nir.txt").read_text().splitlines()
    assert len(samples) == len(lines)
    for sample, line in zip(samples, lines, strict=True):
        relative, label = line.split(" ")
        assert sample.path == llcm_root / relative and sample.pid == int(label)
        assert sample.camid == camera_from_relative_path(relative)
    assert {s.modality for s in samples[: len(lines) // 2]} <= {"visible", "infrared"}


@pytest.mark.parametrize(
    "relative,camera",
    [
        ("train_vis/cam4/0001/0001_c04_s1_f2_vis.jpg", 4),
        ("nir/0001_c07_s200_f3_nir.jpg", 7),
        ("camera_roll/cam2/0003/a.jpg", 2),
        ("images/0001.jpg", None),
    ],
)
def test_camera_parsing(relative: str, camera: int | None) -> None:
    assert camera_from_relative_path(relative) == camera


def test_task_names_and_trials(llcm_root: Path) -> None:
    task = LLCM(llcm_root, check_counts=False).task("vis_to_ir", range(3))
    assert task.name == "llcm/vis_to_ir" and task.protocol == "llcm"
    assert sorted(task.trials) == [0, 1, 2]


def test_missing_tree_is_named(llcm_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(llcm_root, tmp_path)
    import shutil

    shutil.rmtree(damaged / "test_nir")
    with pytest.raises(DatasetNotFoundError, match="'test_nir'"):
        LLCM(damaged)


def test_index_line_without_camera_is_reported(llcm_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(llcm_root, tmp_path)
    (damaged / "loose.jpg").write_bytes((llcm_root / "idx/test_id.txt").read_bytes())
    index = damaged / "idx/train_nir.txt"
    index.write_text(index.read_text() + "loose.jpg 0\n")
    with pytest.raises(
        DatasetFormatError, match=r"train_nir.txt line \d+: no camera in 'loose.jpg'"
    ):
        LLCM(damaged, check_counts=False).train_samples()


def test_counts_warn(llcm_root: Path) -> None:
    with pytest.warns(DatasetCountWarning, match="351"):
        LLCM(llcm_root).test_ids()
