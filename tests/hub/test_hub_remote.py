"""Publishing to and loading from a Hub through real HTTP (a loopback fake Hub).

Pushes run in this process; loads run in fresh processes configured only through their
environment, first online, then offline from the cache with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

import vireid_zoo as vz
from helpers.hub_server import FakeHub
from vireid_zoo.core.contract import PretrainedConfig

# Runs in a fresh interpreter: loads argv[1] (a create_model name) and prints embeddings.
LOAD_SCRIPT = """
import json, sys, torch
import vireid_zoo as vz
from vireid_zoo.core.contract import PretrainedConfig
from vireid_zoo.models.registry import register_pretrained
if len(sys.argv) > 2:  # register a published name pointing at the Hub repository
    register_pretrained(sys.argv[1], PretrainedConfig(**json.loads(sys.argv[2])))
    net = vz.create_model(sys.argv[1], pretrained=True)
else:
    net = vz.create_model(sys.argv[1])
images = torch.load("IMAGES", weights_only=True)
print(json.dumps({
    "visible": net.extract_features(images, "visible").tolist(),
    "metrics": net.pretrained_cfg.metrics,
}))
"""


def load_in_fresh_process(hub: FakeHub, home: Path, images: Path, *args: str, offline: bool):
    script = LOAD_SCRIPT.replace("IMAGES", str(images))
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=hub.client_env(home, offline=offline),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def push(
    hub: FakeHub, tmp_path: Path, repo_id: str, seed: int, map_value: float
) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = vz.create_model("agw_resnet18", num_classes=4).eval()
    cfg = PretrainedConfig(
        "agw_resnet18",
        input_size=(64, 32),
        embedding_dim=512,
        dataset="sysu_mm01",
        metrics={"sysu_mm01/all/mAP": map_value},
        hub_id=repo_id,
    )
    with hub.client_config(tmp_path / "uploader"):
        net.push_to_hub(repo_id, pretrained_cfg=cfg)
    return net


def test_push_then_load_online_then_offline(hub: FakeHub, tmp_path: Path) -> None:
    net = push(hub, tmp_path, "org/agw-tiny", seed=0, map_value=0.5)
    files = hub.repos["org/agw-tiny"].files()
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert b"model-index" in files["README.md"]

    images = torch.randn(2, 3, 64, 32)
    torch.save(images, tmp_path / "images.pt")
    expected = net.extract_features(images, "visible")
    home = tmp_path / "consumer"
    online = load_in_fresh_process(
        hub, home, tmp_path / "images.pt", "hf-hub:org/agw-tiny", offline=False
    )
    torch.testing.assert_close(torch.tensor(online["visible"]), expected)
    assert online["metrics"] == {"sysu_mm01/all/mAP": 0.5}

    requests_before = len(hub.requests)
    offline = load_in_fresh_process(
        hub, home, tmp_path / "images.pt", "hf-hub:org/agw-tiny", offline=True
    )
    assert offline == online
    assert len(hub.requests) == requests_before, "offline loading must not touch the network"


def test_revision_pinning_and_registered_pretrained_names(hub: FakeHub, tmp_path: Path) -> None:
    first = push(hub, tmp_path, "org/agw-pinned", seed=0, map_value=0.4)
    first_commit = hub.repos["org/agw-pinned"].head
    push(hub, tmp_path, "org/agw-pinned", seed=1, map_value=0.6)
    images = torch.randn(2, 3, 64, 32)
    torch.save(images, tmp_path / "images.pt")
    pinned = load_in_fresh_process(
        hub,
        tmp_path / "c1",
        tmp_path / "images.pt",
        f"hf-hub:org/agw-pinned@{first_commit}",
        offline=False,
    )
    torch.testing.assert_close(
        torch.tensor(pinned["visible"]), first.extract_features(images, "visible")
    )
    assert pinned["metrics"] == {"sysu_mm01/all/mAP": 0.4}

    registered = {
        "architecture": "agw_resnet18",
        "hub_id": "org/agw-pinned",
        "revision": first_commit,
    }
    by_name = load_in_fresh_process(
        hub,
        tmp_path / "c2",
        tmp_path / "images.pt",
        "agw_resnet18.synthetic",
        json.dumps(registered),
        offline=False,
    )
    assert by_name == pinned
