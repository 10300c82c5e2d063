"""CSV manifests of the synthetic datasets (ManifestDataset's format)."""

from __future__ import annotations

from pathlib import Path

from vireid_zoo.data.sysu_mm01 import SYSUMM01

HEADER = "path,pid,camera,modality,split"


def write_manifest(root: Path, sysu_root: Path, destination: Path) -> Path:
    """A manifest describing the synthetic SYSU-MM01 images with absolute and relative paths."""
    reader = SYSUMM01(sysu_root, check_counts=False)
    rows = [HEADER]
    for split, samples in (
        ("train", reader.train_samples()),
        ("query", reader.query_samples()),
        ("gallery", reader.gallery_pool("all")),
    ):
        for s in samples:
            rows.append(f"{s.path},{s.pid},{s.camid},{s.modality},{split}")
    path = destination / "manifest.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
