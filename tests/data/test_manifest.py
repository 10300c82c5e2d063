from __future__ import annotations

from pathlib import Path

import pytest

from helpers.manifests import HEADER, write_manifest
from vireid_zoo.data import SYSUMM01, DatasetFormatError, DatasetNotFoundError, ManifestDataset


def test_manifest_round_trip(sysu_root: Path, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, sysu_root, tmp_path)
    reader = SYSUMM01(sysu_root, check_counts=False)
    dataset = ManifestDataset(manifest, protocol="sysu_mm01")
    assert dataset.train_samples() == reader.train_samples()
    assert dataset.query_samples() == reader.query_samples()
    assert dataset.gallery_pool() == reader.gallery_pool("all")
    assert dataset.gallery_samples(0) == reader.gallery_pool("all")
    # One image per (identity, camera), as in the standard single-shot gallery; identities
    # and cameras ascending is the standard walking order, so trial picks agree.
    assert dataset.gallery_samples(5, shots=1) == reader.gallery_samples(5, "all")
    task = dataset.task(trials=range(2), shots=1)
    assert task.name == "manifest/manifest" and sorted(task.trials) == [0, 1]


def test_relative_paths_resolve_against_the_manifest_folder(
    tmp_path: Path, sysu_root: Path
) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    sample = reader.query_samples()[0]
    rows = [
        HEADER,
        f"{sample.path.relative_to(sysu_root)},1,3,infrared,train",
        f"{sample.path.relative_to(sysu_root)},1,3,infrared,query",
        f"{sample.path.relative_to(sysu_root)},1,3,infrared,gallery",
    ]
    manifest = sysu_root.parent / "relative_manifest.csv"
    manifest.write_text("\n".join(rows))
    try:
        dataset = ManifestDataset(manifest, root=sysu_root)
        assert dataset.query_samples()[0].path == sample.path
    finally:
        manifest.unlink()


@pytest.mark.parametrize(
    "row,message",
    [
        ("{path},1,3,thermal,train", "modality 'thermal' is not one of"),
        ("{path},one,3,infrared,train", "pid 'one' and camera '3' must be integers"),
        ("{path},1,3,infrared,test", "split 'test' is not one of"),
        ("missing.jpg,1,3,infrared,train", "missing.jpg' does not exist"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, sysu_root: Path, row: str, message: str) -> None:
    path = SYSUMM01(sysu_root, check_counts=False).query_samples()[0].path
    manifest = tmp_path / "m.csv"
    good = f"{path},1,3,infrared,query"
    manifest.write_text("\n".join([HEADER, good, row.format(path=path)]) + "\n")
    with pytest.raises(DatasetFormatError) as error:
        ManifestDataset(manifest)
    assert f"{manifest} line 3" in str(error.value) and message in str(error.value)


def test_missing_columns_are_listed(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,pid,modality\n")
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['camera', 'split'\]"):
        ManifestDataset(manifest)


def test_empty_split_is_reported(tmp_path: Path, sysu_root: Path) -> None:
    path = SYSUMM01(sysu_root, check_counts=False).query_samples()[0].path
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{HEADER}\n{path},1,3,infrared,train\n")
    with pytest.raises(DatasetFormatError, match=r"no rows for split\(s\) \['query', 'gallery'\]"):
        ManifestDataset(manifest)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope.csv"):
        ManifestDataset(tmp_path / "nope.csv")
