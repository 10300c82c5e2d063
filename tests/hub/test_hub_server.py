"""The fake Hub (tests/hub_server.py) against the real huggingface_hub client.

Uploads run in this process (through ``FakeHub.client_config``); downloads run in fresh
processes configured only through their environment (``FakeHub.client_env``), then again with
``HF_HUB_OFFLINE=1`` from the cache alone.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import torch
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import load_file, save_file

from helpers.hub_server import FAKE_TOKEN, GITATTRIBUTES, FakeHub

REPO_ID = "user/tiny-net"

# Runs in a fresh interpreter: each request is [kind, revision, filename]; prints the paths.
DOWNLOAD_SCRIPT = """
import json, sys
from huggingface_hub import hf_hub_download, snapshot_download
repo_id, requests = sys.argv[1], json.loads(sys.argv[2])
paths = [
    hf_hub_download(repo_id, filename, revision=revision) if kind == "file"
    else snapshot_download(repo_id, revision=revision)
    for kind, revision, filename in requests
]
print(json.dumps(paths))
"""


@pytest.fixture
def api(hub: FakeHub, tmp_path: Path) -> Iterator[HfApi]:
    with hub.client_config(tmp_path / "uploader"):
        yield HfApi()


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    save_file({"weight": torch.arange(12.0).reshape(3, 4)}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"arch": "tiny", "width": 4}))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Tiny net\n")
    return folder


def download(
    hub: FakeHub, hf_home: Path, requests: list[tuple[str, str, str]], *, offline: bool = False
) -> list[Path]:
    """Run ``DOWNLOAD_SCRIPT`` in a fresh process; return the local paths it printed."""
    completed = subprocess.run(
        [sys.executable, "-c", DOWNLOAD_SCRIPT, REPO_ID, json.dumps(requests)],
        env=hub.client_env(hf_home, offline=offline),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [Path(path) for path in json.loads(completed.stdout.splitlines()[-1])]


def test_upload_download_in_fresh_process_then_offline(
    hub: FakeHub, api: HfApi, model_folder: Path, tmp_path: Path
) -> None:
    url = api.create_repo(REPO_ID)
    assert url == f"{hub.endpoint}/{REPO_ID}"
    assert api.create_repo(REPO_ID, exist_ok=True).repo_id == REPO_ID
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(REPO_ID)
    assert conflict.value.response.status_code == 409

    commit = api.upload_folder(repo_id=REPO_ID, folder_path=model_folder)
    repo = hub.repos[REPO_ID]
    assert repo.head.oid == commit.oid
    assert [c.title for c in repo.commits.values()] == [
        "initial commit",
        "Upload folder using huggingface_hub",
    ]
    names = ["model.safetensors", "config.json", "README.md"]
    expected = {name: (model_folder / name).read_bytes() for name in names}
    assert repo.files() == {**expected, ".gitattributes": GITATTRIBUTES}
    assert sorted(api.list_repo_files(REPO_ID)) == sorted([*names, ".gitattributes"])
    # Unchanged files are skipped by the client (preupload returns their blob ids): no commit.
    assert api.upload_folder(repo_id=REPO_ID, folder_path=model_folder).oid == commit.oid
    assert len(repo.commits) == 2

    hf_home = tmp_path / "downloader"
    requests = [("file", "main", name) for name in names] + [("snapshot", "main", "")]
    first = len(hub.requests)
    *files, snapshot = download(hub, hf_home, requests)
    for name, path in zip(names, files, strict=True):
        assert path.read_bytes() == expected[name]
        assert path.is_relative_to(hf_home / "hub" / "models--user--tiny-net" / "snapshots")
    assert torch.equal(load_file(files[0])["weight"], torch.arange(12.0).reshape(3, 4))
    assert sorted(p.name for p in snapshot.iterdir()) == sorted([*names, ".gitattributes"])
    served = hub.requests[first:]
    assert all(r.status == 200 for r in served)
    assert {r.path for r in served if r.method == "GET" and "/resolve/" in r.path} >= {
        f"/{REPO_ID}/resolve/main/{name}" for name in names
    }
    assert all(
        r.headers["authorization"] == f"Bearer {FAKE_TOKEN}"
        for r in served
        if r.path != "/api/agent-harnesses"  # fetched once per process, without a token
    )

    served_before = len(hub.requests)
    offline = download(hub, hf_home, requests, offline=True)
    assert offline == [*files, snapshot]
    assert len(hub.requests) == served_before


def test_missing_file_repo_and_revision(hub: FakeHub, api: HfApi) -> None:
    api.create_repo(REPO_ID)
    with pytest.raises(EntryNotFoundError) as missing:
        hf_hub_download(REPO_ID, "missing.json")
    assert isinstance(missing.value, RemoteEntryNotFoundError)
    assert hub.requests[-1].status == 404
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO_ID, ".gitattributes", revision="no-such-branch")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/no-such-repo", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("user/no-such-repo")


def test_commit_hash_and_tag_pin_the_old_content(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    api.create_repo(REPO_ID)
    old = api.upload_file(path_or_fileobj=b'{"v": 1}', path_in_repo="config.json", repo_id=REPO_ID)
    api.create_tag(REPO_ID, tag="v1", revision=old.oid)
    new = api.upload_file(path_or_fileobj=b'{"v": 2}', path_in_repo="config.json", repo_id=REPO_ID)
    assert [tag.target_commit for tag in api.list_repo_refs(REPO_ID).tags] == [old.oid]
    with pytest.raises(HfHubHTTPError) as stale:  # parent_commit is checked
        api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO_ID, parent_commit=old.oid
        )
    assert stale.value.response.status_code == 412

    requests = [
        ("file", old.oid, "config.json"),
        ("file", "v1", "config.json"),
        ("file", "main", "config.json"),
        ("snapshot", "v1", ""),
    ]
    by_hash, by_tag, head, snapshot = download(hub, tmp_path / "downloader", requests)
    assert by_hash.read_bytes() == by_tag.read_bytes() == b'{"v": 1}'
    assert head.read_bytes() == b'{"v": 2}'
    assert by_hash.parent.name == old.oid and head.parent.name == new.oid
    assert snapshot.name == old.oid


def test_upload_with_xet_enabled_still_commits_inline(
    hub: FakeHub, api: HfApi, model_folder: Path
) -> None:
    api.create_repo(REPO_ID)
    with mock.patch.object(constants, "HF_HUB_DISABLE_XET", False):
        commit = api.upload_folder(repo_id=REPO_ID, folder_path=model_folder)
    assert hub.repos[REPO_ID].head.oid == commit.oid
    assert hub.repos[REPO_ID].files()["config.json"] == (model_folder / "config.json").read_bytes()


def test_stop_closes_idle_connections_threads_and_port() -> None:
    hub = FakeHub().start()
    port = int(hub.endpoint.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/unknown")  # keep-alive: the connection stays open
    assert connection.getresponse().read() and hub.requests[-1].status == 501
    hub.stop()
    server_threads = [
        t for t in threading.enumerate() if t.name == "fake-hub" or "process_request" in t.name
    ]
    assert server_threads == []
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()
    connection.close()
