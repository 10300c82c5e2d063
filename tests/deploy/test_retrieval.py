from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from vireid_zoo import create_model
from vireid_zoo.data.datasets import load_image
from vireid_zoo.data.errors import ImageDecodeError
from vireid_zoo.data.transforms import build_test_transform
from vireid_zoo.deploy.retrieval import (
    SearchResult,
    find_images,
    plot_search,
    search,
    top_k_similar,
)
from vireid_zoo.deploy.visualization import plot_image_rows
from vireid_zoo.models.network import VIReIDNetwork

SIZE = (64, 32)


@pytest.fixture(scope="module")
def net() -> VIReIDNetwork:
    """A ResNet-18 AGW whose infrared stem differs from its visible one."""
    torch.manual_seed(0)
    net = create_model("agw_resnet18", num_classes=0)
    with torch.no_grad():
        stem = net.backbone.infrared_stages[0].conv1.weight
        stem.mul_(1 + 0.5 * torch.randn_like(stem))
    return net.eval()


@pytest.fixture(scope="module")
def folders(sysu_root: Path) -> tuple[Path, Path]:
    """Infrared queries (camera 3) and a visible gallery (camera 1), in pid subfolders."""
    return sysu_root / "cam3", sysu_root / "cam1"


def brute_force(net: VIReIDNetwork, paths: list[Path], modality: str) -> torch.Tensor:
    transform = build_test_transform(SIZE)
    images = torch.stack([transform(load_image(path)) for path in paths])
    with torch.inference_mode():
        return net.extract_features(images, modality)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result(net: VIReIDNetwork, folders: tuple[Path, Path]) -> SearchResult:
    query, gallery = folders
    return search(
        net,
        query,
        gallery,
        query_modality="infrared",
        gallery_modality="visible",
        image_size=SIZE,
        top_k=5,
        batch_size=7,
    )


def test_search_equals_brute_force(
    net: VIReIDNetwork, folders: tuple[Path, Path], result: SearchResult
) -> None:
    query, gallery = folders
    assert result.query_paths == sorted(query.rglob("*.jpg"))
    assert result.gallery_paths == sorted(gallery.rglob("*.jpg"))
    similarity = (
        brute_force(net, result.query_paths, "infrared")
        @ brute_force(net, result.gallery_paths, "visible").T
    )
    order = torch.argsort(similarity, dim=1, descending=True, stable=True)[:, :5]
    assert result.indices.shape == result.scores.shape == (len(result.query_paths), 5)
    assert torch.equal(result.indices, order)
    torch.testing.assert_close(result.scores, similarity.gather(1, order), atol=1e-5, rtol=0)
    assert torch.all(result.scores[:, :-1] >= result.scores[:, 1:])
    first_path, first_score = result.ranked(0)[0]
    assert first_path == result.gallery_paths[int(order[0, 0])]
    assert first_score == pytest.approx(float(similarity[0, order[0, 0]]), abs=1e-5)


def test_each_side_goes_through_its_own_stem(
    net: VIReIDNetwork, folders: tuple[Path, Path], result: SearchResult
) -> None:
    query, gallery = folders
    swapped = search(
        net,
        result.query_paths[:4],
        gallery,
        query_modality="visible",
        gallery_modality="visible",
        image_size=SIZE,
        top_k=5,
    )
    expected = (
        brute_force(net, result.query_paths[:4], "visible")
        @ brute_force(net, result.gallery_paths, "visible").T
    )
    torch.testing.assert_close(
        swapped.scores, expected.sort(dim=1, descending=True).values[:, :5], atol=1e-5, rtol=0
    )
    assert (swapped.scores - result.scores[:4]).abs().max() > 1e-3


def test_top_k_breaks_ties_by_gallery_order_and_is_clamped() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gallery = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
    indices, scores = top_k_similar(query, gallery, top_k=10)
    assert indices.tolist() == [[1, 4, 3, 0, 2], [0, 2, 3, 1, 4]]
    torch.testing.assert_close(scores[:, 0], torch.ones(2))
    with pytest.raises(ValueError, match="top_k"):
        top_k_similar(query, gallery, top_k=0)


def test_top_k_larger_than_the_gallery_is_clamped(net: VIReIDNetwork, result: SearchResult) -> None:
    gallery = result.gallery_paths[:3]
    small = search(
        net,
        result.query_paths[0],
        gallery,
        query_modality="infrared",
        gallery_modality="visible",
        image_size=SIZE,
        top_k=50,
    )
    assert small.query_paths == result.query_paths[:1]
    assert small.indices.shape == (1, 3)
    assert sorted(small.indices[0].tolist()) == [0, 1, 2]


def test_network_mode_is_restored(result: SearchResult) -> None:
    net = create_model("agw_resnet18", num_classes=0).train()
    search(
        net,
        result.query_paths[:1],
        result.gallery_paths[:2],
        query_modality="infrared",
        gallery_modality="visible",
        image_size=SIZE,
    )
    assert net.training


def test_folders_without_images_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no query images in folder {empty}"):
        find_images(empty, "query")
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "readme.txt").write_text("not an image")
    (notes / ".hidden.jpg").write_bytes(b"")
    (notes / ".cache").mkdir()
    (notes / ".cache" / "thumb.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=f"no gallery images in folder {notes}"):
        find_images(notes, "gallery")
    with pytest.raises(ValueError, match="list of query images is empty"):
        find_images([], "query")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        find_images([tmp_path / "missing.jpg"], "query")


def test_bad_arguments_are_refused(net: VIReIDNetwork, result: SearchResult) -> None:
    query, gallery = result.query_paths[:1], result.gallery_paths[:2]
    with pytest.raises(ValueError, match="unknown modality 'thermal'"):
        search(net, query, gallery, query_modality="thermal", gallery_modality="visible")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k"):
        search(net, query, gallery, query_modality="infrared", gallery_modality="visible", top_k=0)


def test_an_unreadable_image_is_named(
    net: VIReIDNetwork, result: SearchResult, tmp_path: Path
) -> None:
    broken = tmp_path / "gallery" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"not a jpeg")
    Image.open(result.gallery_paths[0]).save(tmp_path / "gallery" / "a.png")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        search(
            net,
            result.query_paths[:1],
            broken.parent,
            query_modality="infrared",
            gallery_modality="visible",
            image_size=SIZE,
        )


def test_the_picture_is_written(result: SearchResult, tmp_path: Path) -> None:
    few = plot_search(result, tmp_path / "few.png", max_queries=1)
    many = plot_search(result, tmp_path / "many.png", max_queries=3)
    with Image.open(few) as small, Image.open(many) as large:
        assert small.format == large.format == "PNG"
        assert small.height < large.height
    with pytest.raises(ValueError, match="one entry per image"):
        plot_image_rows([[few]], [["a", "b"]], tmp_path / "bad.png")
