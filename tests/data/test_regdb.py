from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_dataset
from vireid_zoo.data import DatasetCountWarning, DatasetFormatError, DatasetNotFoundError, RegDB


def index_lines(root: Path, name: str) -> list[tuple[Path, int]]:
    lines = (root / "idx" / name).read_text().splitlines()
    return [(root / line.split(" ")[0], int(line.split(" ")[1])) for line in lines]


@pytest.mark.parametrize("trial", range(1, 11))
def test_every_trial_reads_its_own_index_files_in_order(regdb_root: Path, trial: int) -> None:
    reader = RegDB(regdb_root, trial, check_counts=False)
    train = reader.train_samples()
    expected = [
        (path, label, 1, "visible")
        for path, label in index_lines(regdb_root, f"train_visible_{trial}.txt")
    ] + [
        (path, label, 2, "infrared")
        for path, label in index_lines(regdb_root, f"train_thermal_{trial}.txt")
    ]
    assert [(s.path, s.pid, s.camid, s.modality) for s in train] == expected
    query = reader.query_samples("visible_to_thermal")
    gallery = reader.gallery_samples(direction="visible_to_thermal")
    assert [(s.path, s.pid) for s in query] == index_lines(regdb_root, f"test_visible_{trial}.txt")
    assert [(s.path, s.pid) for s in gallery] == index_lines(
        regdb_root, f"test_thermal_{trial}.txt"
    )


def test_thermal_to_visible_swaps_roles_but_not_modalities(regdb_root: Path) -> None:
    reader = RegDB(regdb_root, 2, check_counts=False)
    query = reader.query_samples("thermal_to_visible")
    gallery = reader.gallery_samples(direction="thermal_to_visible")
    assert {s.modality for s in query} == {"infrared"} and {s.camid for s in query} == {2}
    assert {s.modality for s in gallery} == {"visible"} and {s.camid for s in gallery} == {1}
    assert query == reader.gallery_samples(direction="visible_to_thermal")


def test_task_is_one_trial_over_the_whole_gallery(regdb_root: Path) -> None:
    task = RegDB(regdb_root, 4, check_counts=False).task("visible_to_thermal")
    assert task.name == "regdb/visible_to_thermal" and task.protocol == "regdb"
    assert task.trials == {4: list(range(len(task.gallery_pool)))}


def test_another_trials_gallery_is_refused(regdb_root: Path) -> None:
    reader = RegDB(regdb_root, 3, check_counts=False)
    assert reader.gallery_samples(3) == reader.gallery_samples()
    with pytest.raises(ValueError, match="bound to trial 3.*overlaps"):
        reader.gallery_samples(5)


def test_trial_out_of_range(regdb_root: Path) -> None:
    with pytest.raises(ValueError, match="1..10"):
        RegDB(regdb_root, 0)


def test_unknown_direction(regdb_root: Path) -> None:
    with pytest.raises(ValueError, match="visible_to_thermal"):
        RegDB(regdb_root, 1, check_counts=False).query_samples("v2t")  # type: ignore[arg-type]


def test_missing_index_file_is_named(regdb_root: Path, tmp_path: Path) -> None:
    damaged = copy_dataset(regdb_root, tmp_path)
    (damaged / "idx/test_thermal_7.txt").unlink()
    RegDB(damaged, 6, check_counts=False)
    with pytest.raises(DatasetNotFoundError, match="idx/test_thermal_7.txt"):
        RegDB(damaged, 7)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="RegDB not found"):
        RegDB(tmp_path / "RegDB", 1)


@pytest.mark.parametrize(
    "bad_line,message",
    [
        ("Visible/1/x.bmp", "expected '<relative path> <integer label>'"),
        ("Visible/1/x.bmp  3", "expected '<relative path> <integer label>'"),
        ("Visible/1/x.bmp three", "label 'three' is not an integer"),
        ("Visible/1/missing.bmp 3", "image 'Visible/1/missing.bmp' does not exist"),
    ],
)
def test_malformed_index_line_names_file_and_line(
    regdb_root: Path, tmp_path: Path, bad_line: str, message: str
) -> None:
    damaged = copy_dataset(regdb_root, tmp_path)
    index = damaged / "idx/train_visible_1.txt"
    lines = index.read_text().splitlines()
    lines.insert(2, bad_line)
    index.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError) as error:
        RegDB(damaged, 1, check_counts=False).train_samples()
    assert f"{index} line 3" in str(error.value)
    assert message in str(error.value)


def test_counts_warn_with_both_numbers(regdb_root: Path) -> None:
    with pytest.warns(DatasetCountWarning, match="2060"):
        RegDB(regdb_root, 1).train_samples()
