"""``vireid-zoo inspect --verify``: every image decoded, every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_dataset
from vireid_zoo.cli import main
from vireid_zoo.data import SYSUMM01
from vireid_zoo.data.verify import decode_images, verify_dataset


def inspect(dataset: str, root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["inspect", dataset, str(root), "--verify", "--workers", "2"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_intact_datasets_verify(
    sysu_root: Path,
    regdb_root: Path,
    llcm_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for dataset, root in (("sysu_mm01", sysu_root), ("regdb", regdb_root), ("llcm", llcm_root)):
        code, out, err = inspect(dataset, root, capsys)
        images = len([p for p in root.rglob("*") if p.suffix in (".jpg", ".bmp")])
        assert code == 0, err
        assert f"verified: {images:,} images decoded" in out
        assert "error" not in out and "bad image" not in out


def test_every_corrupt_image_is_listed_at_once(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_dataset(sysu_root, tmp_path)
    reader = SYSUMM01(root, check_counts=False)
    training = reader.train_samples()[0].path  # drawn only when the sampler picks it
    training.write_bytes(training.read_bytes()[:200])  # truncated
    gallery = reader.gallery_pool("all")[-1].path
    gallery.write_bytes(b"not an image")
    # The layout is intact: the plain inspection cannot see it.
    assert main(["inspect", "sysu_mm01", str(root)]) == 0
    capsys.readouterr()
    code, out, err = inspect("sysu_mm01", root, capsys)
    assert code == 2
    bad = [line for line in out.splitlines() if line.startswith("  bad image: ")]
    assert [line.split(": ")[1] for line in bad] == sorted([str(training), str(gallery)])
    err_lines = err.strip().splitlines()
    assert len(err_lines) == 1 and "2 of " in err_lines[0] and "cannot be decoded" in err_lines[0]


def test_a_test_id_without_images_and_a_leak_are_errors(
    sysu_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_dataset(sysu_root, tmp_path)
    test_ids = (root / "exp" / "test_id.txt").read_text().strip()
    train_id = (root / "exp" / "train_id.txt").read_text().strip().split(",")[0]
    (root / "exp" / "test_id.txt").write_text(f"{test_ids},{train_id},9999\n")
    code, out, err = inspect("sysu_mm01", root, capsys)
    assert code == 2
    assert "error: 1 identities of exp/test_id.txt have no image at all: 9999" in out
    leak = "error: 1 identities are in both exp/train_id.txt and exp/test_id.txt"
    assert f"{leak} (a leak: the model would be tested on people it trained on): {train_id}" in out
    assert "2 identity-list errors" in err and len(err.strip().splitlines()) == 1


def test_a_regdb_person_in_both_splits_is_a_leak(
    regdb_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_dataset(regdb_root, tmp_path)
    test_line = (root / "idx" / "test_visible_1.txt").read_text().splitlines()[0]
    with (root / "idx" / "train_visible_1.txt").open("a") as index:
        index.write(f"{test_line}\n")
    person = test_line.split("/")[1]
    code, out, _ = inspect("regdb", root, capsys)
    assert code == 2
    assert "1 person folders are in both idx/train_*_1.txt and idx/test_*_1.txt" in out
    assert f"trained on): {person}\n" in out


def test_an_llcm_training_identity_in_the_test_list_is_a_leak(
    llcm_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_dataset(llcm_root, tmp_path)
    train_path = (root / "idx" / "train_vis.txt").read_text().split(" ")[0]
    train_id = int(Path(train_path).parent.name)
    test_ids = (root / "idx" / "test_id.txt").read_text().strip()
    (root / "idx" / "test_id.txt").write_text(f"{test_ids},{train_id}\n")
    code, out, _ = inspect("llcm", root, capsys)
    assert code == 2
    assert "are in both idx/train_*.txt (folders) and idx/test_id.txt" in out
    # Its test images are missing as well: the test trees hold no folder of it.
    assert f"error: 1 identities of idx/test_id.txt have no image at all: {train_id}" in out


def test_decoding_shows_a_progress_bar(sysu_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(sysu_root.rglob("*.jpg"))[:5]
    assert decode_images(paths, workers=1, progress=True) == []
    assert "decoding images: 100%" in capsys.readouterr().err
    found = verify_dataset(SYSUMM01(sysu_root, check_counts=False), progress=False)
    assert found.ok and found.images == len(list(sysu_root.rglob("*.jpg")))
