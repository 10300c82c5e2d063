"""An independent oracle for the standard query / gallery selection.

It follows the words of PROTOCOLS.md literally, with the global ``random`` module and
``os.listdir``, the way the community-standard scripts select images, so the readers'
private-generator implementation can be checked against it path for path.
"""

from __future__ import annotations

import os
import random


def standard_listing(
    root: str, ids: list[int], camera_dirs: list[str], trial: int | None
) -> list[str]:
    """Walk ids ascending, cameras in order; all files (trial None) or one random.choice.

    With a trial, the global generator is re-seeded with it first, as the standard
    scripts do.
    """
    if trial is not None:
        random.seed(trial)
    chosen: list[str] = []
    for pid in sorted(f"{i:04d}" for i in ids):
        for camera_dir in camera_dirs:
            folder = os.path.join(root, camera_dir, pid)
            if os.path.isdir(folder):
                files = sorted(os.path.join(folder, name) for name in os.listdir(folder))
                if trial is None:
                    chosen.extend(files)
                else:
                    chosen.append(random.choice(files))
    return chosen


def read_ids(path: str) -> list[int]:
    """The ids of a one-line comma-separated file."""
    with open(path) as handle:
        return [int(token) for token in handle.read().splitlines()[0].split(",")]
