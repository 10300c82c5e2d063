from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from vireid_zoo.core.records import Sample
from vireid_zoo.data import SYSUMM01
from vireid_zoo.deploy.visualization import plot_cmc, plot_ranked_lists, rank_gallery


def sample(pid: int, camid: int, modality: str = "visible") -> Sample:
    return Sample(Path(f"/x/{pid}_{camid}.jpg"), pid, camid, modality)  # type: ignore[arg-type]


def test_rank_gallery_applies_the_protocol_exclusions() -> None:
    query = [sample(1, 3, "infrared"), sample(1, 6, "infrared")]
    gallery = [sample(1, 2), sample(2, 1), sample(1, 4), sample(3, 2)]
    distances = torch.tensor([[0.1, 0.2, 0.3, 0.0], [0.1, 0.2, 0.3, 0.0]])
    ranked = rank_gallery(distances, query, gallery, protocol="sysu_mm01", top_k=3)
    assert ranked[0] == [1, 2], "a camera-3 query never sees camera-2 images"
    assert ranked[1] == [3, 0, 1]
    assert rank_gallery(distances, query, gallery, protocol="regdb", top_k=2) == [[3, 0], [3, 0]]


def test_pictures_are_written(sysu_root: Path, tmp_path: Path) -> None:
    reader = SYSUMM01(sysu_root, check_counts=False)
    query = reader.query_samples()[:2]
    gallery = reader.gallery_samples(0)[:4]
    ranked = plot_ranked_lists(query, [gallery, gallery[:2]], tmp_path / "ranked.png", title="t")
    curves = plot_cmc({"a": torch.linspace(0.2, 1.0, 20)}, tmp_path / "cmc.png")
    for path in (ranked, curves):
        with Image.open(path) as image:
            assert image.format == "PNG"
