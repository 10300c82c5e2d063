"""A loopback fake of the Hugging Face Hub's HTTP API, for tests (stdlib only).

:class:`FakeHub` serves, on ``127.0.0.1`` and an ephemeral port, the endpoints that
``huggingface_hub`` 2.4 calls to create a model repo, commit files to it, tag it and download
from it. Repos live in memory. Every file is committed inline: the preupload endpoint answers
``"regular"`` for every path, so the client sends contents base64-encoded inside the NDJSON
commit payload and never starts an LFS or Xet transfer (the client has no size threshold of its
own: it follows the server's answer for any size). Downloads are plain ``HEAD``/``GET`` on
``/resolve`` without redirects and without Xet headers, so the client never takes its Xet
download path either.

Usage::

    with FakeHub() as hub:
        with hub.client_config(tmp_path / "hf"):  # this process's client -> the fake Hub
            HfApi().create_repo("user/tiny")
            HfApi().upload_folder(repo_id="user/tiny", folder_path=folder)
        env = hub.client_env(tmp_path / "hf")  # for a fresh process: subprocess.run(..., env=env)
        hub.repos["user/tiny"].files()  # {"path": b"content"} at the head of main
        hub.requests  # every request served, in order

Environment of a client process (:meth:`FakeHub.client_env` sets all of it; the constants of
``huggingface_hub`` are read once, when it is imported, hence :meth:`FakeHub.client_config`
to patch them in a process that has already imported it):

- ``HF_ENDPOINT=http://127.0.0.1:PORT``: where every request goes.
- ``HF_HUB_DISABLE_XET=1``: keeps uploads on the ``create_commit`` path. Without it (``hf_xet``
  is installed), ``upload_folder`` takes the client's multi-commit Xet pipeline, which against
  this server also works (it still only calls preupload and commit, every file being
  "regular") but starts an ``hf_xet`` session; downloads never touch Xet either way.
- ``HF_HUB_OFFLINE=0`` (``1`` for the cache-only run): the test suite's conftest defaults it
  to ``1``, which makes the client refuse every request.
- ``HF_HOME`` and ``HF_HUB_CACHE``: a temporary folder, so neither the user's cache nor their
  token are touched (the client also caches the agent-harness registry under ``HF_HOME``).
- ``HF_TOKEN``: any value; the fake Hub accepts every token, and no token at all.
- ``NO_PROXY``/``no_proxy`` include ``127.0.0.1``; ``HUGGINGFACE_CO_STAGING``,
  ``HF_OIDC_RESOURCE``, ``TRANSFORMERS_OFFLINE`` and ``HF_HUB_ENABLE_HF_TRANSFER`` are removed.
- ``HF_HUB_DISABLE_TELEMETRY=1`` and ``HF_HUB_DISABLE_PROGRESS_BARS=1``: quiet output.

Endpoints (``{repo}`` is ``namespace/name``; ``{rev}`` a branch, a tag or a full commit hash):

- ``POST /api/repos/create``: model repos only; 409 if it exists (``exist_ok`` handles it). A
  new repo has one commit, ``initial commit``, holding a ``.gitattributes`` like the Hub's.
- ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}``: repo info
  (``sha``, ``siblings``; sizes and blob ids with ``?blobs=true``).
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: listing, ``?recursive=true`` supported.
- ``GET /api/models/{repo}/refs``: branches and tags.
- ``POST /api/models/{repo}/preupload/{rev}``: ``"regular"`` for every file, with the git blob
  id of the current version so that the client skips unchanged files.
- ``POST /api/models/{repo}/commit/{rev}``: NDJSON with ``header``, ``file`` (base64),
  ``deletedFile`` and ``deletedFolder`` lines; ``parentCommit`` is checked (412 on mismatch).
- ``POST /api/models/{repo}/tag/{rev}``: creates a tag (409 if it exists).
- ``POST /api/validate-yaml``: accepts any model card.
- ``GET /api/agent-harnesses``: an empty registry (the client fetches it once per process).
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the git blob id,
  quoted), ``Content-Length``, no redirect.

Errors carry the ``X-Error-Code`` header the client maps to its exceptions: ``RepoNotFound``
(:class:`~huggingface_hub.errors.RepositoryNotFoundError`), ``RevisionNotFound`` and
``EntryNotFound`` (the latter with ``X-Repo-Commit``, so the client caches the absence). Any
other route answers 501 and is recorded in :attr:`FakeHub.requests`; an exception inside the
fake Hub answers 500 and is kept in :attr:`FakeHub.errors`.

Not implemented: dataset and Space repos, pull requests (``create_pr``), branches other than
``main``, LFS/Xet uploads (``lfsFile`` commit lines are refused), ``Range`` requests (the whole
file is sent, which the client accepts), chunked request bodies, short commit hashes,
pagination, ``expand``, private or gated repos, ``.gitignore`` rules, YAML validation.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import socket
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, unquote, urlsplit

FAKE_TOKEN = "hf_fake_token_for_tests"
DEFAULT_BRANCH = "main"
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.bin",
        "*.ckpt",
        "*.h5",
        "*.onnx",
        "*.pt",
        "*.pth",
        "*.safetensors",
        "*.tar.gz",
        "*.zip",
    )
).encode()


def git_blob_id(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _timestamp() -> str:
    """Now, in the Hub's date format (``2024-01-31T12:00:00.000Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Commit:
    """One commit of a fake repo.

    Attributes:
        oid: The 40-hex commit id.
        parent: The parent's id, ``None`` for the initial commit.
        title: The commit summary.
        description: The commit description.
        date: The creation date, in the Hub's format.
        files: The full content of the repo at this commit, by path.
    """

    oid: str
    parent: str | None
    title: str
    description: str
    date: str
    files: Mapping[str, bytes]


@dataclass
class Repo:
    """A fake model repo: its commits and refs.

    Attributes:
        repo_id: ``namespace/name``.
        created_at: The creation date, in the Hub's format.
        commits: Every commit by id, oldest first.
        branches: Branch name to commit id.
        tags: Tag name to commit id.
    """

    repo_id: str
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch, a tag or a full commit hash points to, ``None`` if unknown."""
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(oid)

    def files(self, revision: str = DEFAULT_BRANCH) -> dict[str, bytes]:
        """The repo's files at ``revision``.

        Raises:
            KeyError: If the revision is unknown.
        """
        commit = self.resolve(revision)
        if commit is None:
            raise KeyError(revision)
        return dict(commit.files)

    @property
    def head(self) -> Commit:
        """The commit at the head of the default branch."""
        return self.commits[self.branches[DEFAULT_BRANCH]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request served by the fake Hub.

    Attributes:
        method: The HTTP method.
        path: The URL path, percent-decoded, without the query.
        query: The query parameters.
        headers: The request headers, names in lower case.
        status: The status code answered.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class HubError(Exception):
    """An error answer: a status, a message, the Hub's ``X-Error-Code`` and extra fields.

    Args:
        status: The HTTP status.
        message: The ``error`` field of the JSON body and the ``X-Error-Message`` header.
        code: The ``X-Error-Code`` header, if any.
        headers: More response headers.
        fields: More fields of the JSON body.
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self.fields = dict(fields or {})


@dataclass
class _Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _is_true(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true"}


def _no_proxy(env: Mapping[str, str]) -> dict[str, str]:
    """``NO_PROXY`` and ``no_proxy`` extended with the loopback hosts."""
    current = env.get("NO_PROXY") or env.get("no_proxy") or ""
    value = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
    return {"NO_PROXY": value, "no_proxy": value}


def _check_path(path: str) -> str:
    """Refuse a path that could not exist in a repo (absolute, ``..``, ``.git``, empty)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in {"", ".", "..", ".git"} for p in parts):
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


class FakeHub:
    """An in-memory Hugging Face Hub served over HTTP on ``127.0.0.1`` (see the module doc).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Attributes:
        username: The namespace of repos created without one (the token's "user").
        repos: The repos by id; inspect them freely once the requests are answered.
        requests: Every request served, in order.
        errors: Tracebacks of exceptions raised inside the fake Hub (answered with a 500).
    """

    def __init__(self, username: str = "user") -> None:
        self.username = username
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeHub:
        """Start serving on an ephemeral port of ``127.0.0.1``."""
        if self._server is not None:
            raise RuntimeError("FakeHub is already running")
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-hub",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread of the server."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()  # joins the connection threads
        self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``, for ``HF_ENDPOINT``."""
        if self._server is None:
            raise RuntimeError("FakeHub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ clients

    def client_env(self, hf_home: Path, *, offline: bool = False) -> dict[str, str]:
        """The environment of a fresh client process that talks to this fake Hub.

        Args:
            hf_home: The process's ``HF_HOME``; its cache is ``hf_home / "hub"``.
            offline: Set ``HF_HUB_OFFLINE=1``: the client must serve everything from the cache.

        Returns:
            A copy of ``os.environ`` with the variables of the module doc set.
        """
        env = dict(os.environ)
        for name in (
            "HUGGINGFACE_CO_STAGING",
            "HF_OIDC_RESOURCE",
            "HF_HUB_ENABLE_HF_TRANSFER",
            "TRANSFORMERS_OFFLINE",
            "HUGGINGFACE_HUB_CACHE",
            "HUGGING_FACE_HUB_TOKEN",
            "HF_TOKEN_PATH",
            "HF_ASSETS_CACHE",
            "HF_XET_CACHE",
        ):
            env.pop(name, None)
        env.update(_no_proxy(env))
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(hf_home),
            HF_HUB_CACHE=str(hf_home / "hub"),
            HF_TOKEN=FAKE_TOKEN,
            HF_HUB_OFFLINE="1" if offline else "0",
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        return env

    @contextmanager
    def client_config(self, hf_home: Path) -> Iterator[None]:
        """Point this process's ``huggingface_hub`` client at the fake Hub, then restore it.

        Patches the constants ``huggingface_hub`` read from the environment when it was
        imported (endpoint, offline mode, Xet, cache and token paths), sets ``HF_TOKEN`` and
        ``NO_PROXY``, and closes the client's shared HTTP session on entry (so that it is rebuilt
        with this environment) and on exit (so that no connection outlives the block).

        Args:
            hf_home: Stands for ``HF_HOME``: the download cache is ``hf_home / "hub"``.
        """
        from huggingface_hub import constants
        from huggingface_hub.utils import close_session

        values = {
            "ENDPOINT": self.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.endpoint
            + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_XET": True,
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_TOKEN_PATH": str(hf_home / "token"),
            "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        }
        with ExitStack() as stack:
            for name, value in values.items():
                stack.enter_context(mock.patch.object(constants, name, value))
            env = {"HF_TOKEN": FAKE_TOKEN, **_no_proxy(os.environ)}
            stack.enter_context(mock.patch.dict(os.environ, env))
            close_session()
            stack.callback(close_session)
            yield

    # ------------------------------------------------------------------ requests

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> _Response:
        """Answer one request and record it (called by the server's connection threads)."""
        url = urlsplit(target)
        segments = [unquote(part) for part in url.path.split("/")[1:]]
        query = dict(parse_qsl(url.query))
        with self._lock:
            try:
                response = self._route(method, segments, query, body)
            except HubError as error:
                response = _json({"error": str(error), **error.fields}, error.status)
                response.headers["X-Error-Message"] = str(error)
                if error.code is not None:
                    response.headers["X-Error-Code"] = error.code
                response.headers.update(error.headers)
            except (ValueError, KeyError, TypeError) as error:  # a malformed request
                response = _json({"error": f"Bad request: {error!r}"}, 400)
            except Exception:
                self.errors.append(traceback.format_exc())
                response = _json({"error": "FakeHub internal error"}, 500)
            self.requests.append(
                RecordedRequest(
                    method=method,
                    path=unquote(url.path),
                    query=query,
                    headers={name.lower(): value for name, value in headers.items()},
                    status=response.status,
                )
            )
        return response

    def _route(
        self, method: str, segments: list[str], query: dict[str, str], body: bytes
    ) -> _Response:
        if segments[:1] == ["api"]:
            rest = segments[1:]
            if method == "POST" and rest == ["repos", "create"]:
                return self._create_repo(json.loads(body))
            if method == "POST" and rest == ["validate-yaml"]:
                return _json({"errors": [], "warnings": []})
            if method == "GET" and rest == ["agent-harnesses"]:
                return _json({"standardEnvVars": [], "harnesses": {}})
            if len(rest) >= 3 and rest[0] == "models":
                return self._repo_api(
                    method, self._repo(f"{rest[1]}/{rest[2]}"), rest[3:], query, body
                )
        elif len(segments) >= 5 and segments[2] == "resolve" and method in {"GET", "HEAD"}:
            repo = self._repo(f"{segments[0]}/{segments[1]}")
            return self._resolve(repo, segments[3], "/".join(segments[4:]))
        raise HubError(501, f"FakeHub does not implement {method} /{'/'.join(segments)}")

    def _repo_api(
        self, method: str, repo: Repo, rest: list[str], query: dict[str, str], body: bytes
    ) -> _Response:
        if method == "GET" and not rest:
            return self._repo_info(repo, self._commit(repo, DEFAULT_BRANCH), query)
        if method == "GET" and rest[0] == "revision" and len(rest) == 2:
            return self._repo_info(repo, self._commit(repo, rest[1]), query)
        if method == "GET" and rest[0] == "tree" and len(rest) >= 2:
            recursive = _is_true(query.get("recursive"))
            return self._tree(self._commit(repo, rest[1]), "/".join(rest[2:]), recursive)
        if method == "GET" and rest == ["refs"]:
            return self._refs(repo, _is_true(query.get("include_prs")))
        if method == "POST" and rest[0] == "preupload" and len(rest) == 2:
            return self._preupload(self._commit(repo, rest[1]), json.loads(body))
        if method == "POST" and rest[0] == "commit" and len(rest) == 2:
            if _is_true(query.get("create_pr")):
                raise HubError(400, "FakeHub does not implement pull requests")
            return self._commit_files(repo, rest[1], body)
        if method == "POST" and rest[0] == "tag" and len(rest) == 2:
            return self._create_tag(repo, self._commit(repo, rest[1]), json.loads(body))
        raise HubError(501, f"FakeHub does not implement {method} on {rest!r} of a repo")

    # ------------------------------------------------------------------ lookups

    def _repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    @staticmethod
    def _commit(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _new_commit(
        self, parent: Commit | None, title: str, description: str, files: dict[str, bytes]
    ) -> Commit:
        parent_oid = None if parent is None else parent.oid
        digest = hashlib.sha1(f"{next(self._counter)}\0{parent_oid}".encode())
        for path in sorted(files):
            digest.update(f"\0{path}\0{git_blob_id(files[path])}".encode())
        return Commit(digest.hexdigest(), parent_oid, title, description, _timestamp(), files)

    # ------------------------------------------------------------------ endpoints

    def _create_repo(self, payload: dict[str, Any]) -> _Response:
        if payload.get("type", "model") != "model":
            raise HubError(400, "FakeHub hosts model repos only")
        name = _check_path(payload["name"])
        repo_id = f"{payload.get('organization') or self.username}/{name}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            raise HubError(409, "You already created this model repo", fields={"url": url})
        repo = Repo(repo_id=repo_id, created_at=_timestamp())
        initial = self._new_commit(None, "initial commit", "", {".gitattributes": GITATTRIBUTES})
        repo.commits[initial.oid] = initial
        repo.branches[DEFAULT_BRANCH] = initial.oid
        self.repos[repo_id] = repo
        return _json({"url": url, "name": repo_id, "id": repo_id})

    @staticmethod
    def _repo_info(repo: Repo, commit: Commit, query: dict[str, str]) -> _Response:
        blobs = _is_true(query.get("blobs"))
        siblings = [
            {
                "rfilename": path,
                **({"size": len(data), "blobId": git_blob_id(data)} if blobs else {}),
            }
            for path, data in sorted(commit.files.items())
        ]
        namespace = repo.repo_id.split("/")[0]
        return _json(
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": namespace,
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": False,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    @staticmethod
    def _tree(commit: Commit, path: str, recursive: bool) -> _Response:
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries: dict[str, dict[str, Any]] = {}
        for file_path, data in commit.files.items():
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for level in range(1, min(depth, len(parts) - 1) + 1):
                folder = prefix + "/".join(parts[:level])
                folder_oid = hashlib.sha1(f"{commit.oid}\0{folder}".encode()).hexdigest()
                entries[folder] = {
                    "type": "directory",
                    "oid": folder_oid,
                    "size": 0,
                    "path": folder,
                }
            if recursive or len(parts) == 1:
                entries[file_path] = {
                    "type": "file",
                    "oid": git_blob_id(data),
                    "size": len(data),
                    "path": file_path,
                }
        if prefix and not entries:
            raise HubError(404, f"{path} does not exist on {commit.oid}", "EntryNotFound")
        return _json([entries[key] for key in sorted(entries)])

    @staticmethod
    def _refs(repo: Repo, include_prs: bool) -> _Response:
        def refs(kind: str, names: dict[str, str]) -> list[dict[str, str]]:
            return [
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}
                for name, oid in names.items()
            ]

        payload: dict[str, Any] = {
            "branches": refs("heads", repo.branches),
            "converts": [],
            "tags": refs("tags", repo.tags),
        }
        if include_prs:
            payload["pullRequests"] = []
        return _json(payload)

    @staticmethod
    def _preupload(commit: Commit, payload: dict[str, Any]) -> _Response:
        files = []
        for entry in payload["files"]:
            current = commit.files.get(entry["path"])
            files.append(
                {
                    "path": entry["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": None if current is None else git_blob_id(current),
                }
            )
        return _json({"files": files})

    def _commit_files(self, repo: Repo, branch: str, body: bytes) -> _Response:
        if branch not in repo.branches:
            raise HubError(
                404,
                f"Branch {branch} not found (FakeHub commits to branches only)",
                "RevisionNotFound",
            )
        parent = repo.commits[repo.branches[branch]]
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        expected_parent = header.get("parentCommit")
        if expected_parent is not None and expected_parent != parent.oid:
            raise HubError(412, f"A commit has happened since {expected_parent}: {parent.oid}")
        files = dict(parent.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = _check_path(value["path"].rstrip("/"))
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"Unsupported encoding for {path}")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                    )
            elif key == "deletedFolder":
                inside = [name for name in files if name.startswith(f"{path}/")]
                if not inside:
                    raise HubError(
                        404, f"A folder with this name doesn't exist: {path}", "EntryNotFound"
                    )
                for name in inside:
                    del files[name]
            else:
                raise HubError(400, f"FakeHub accepts inline files only, not {key!r} lines")
        commit = self._new_commit(parent, header["summary"], header.get("description", ""), files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return _json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.endpoint}/{repo.repo_id}/commit/{commit.oid}",
                "hookOutput": "",
            }
        )

    @staticmethod
    def _create_tag(repo: Repo, commit: Commit, payload: dict[str, Any]) -> _Response:
        tag = payload["tag"]
        if not tag or tag in repo.branches:
            raise HubError(400, f"Invalid tag name: {tag!r}")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.oid
        return _json({})

    @staticmethod
    def _resolve(repo: Repo, revision: str, path: str) -> _Response:
        commit = FakeHub._commit(repo, revision)
        data = commit.files.get(path)
        if data is None:
            raise HubError(
                404,
                f"Entry not found: {path}",
                "EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        return _Response(
            200,
            data,
            {
                "Content-Type": "application/octet-stream",
                "ETag": f'"{git_blob_id(data)}"',
                "X-Repo-Commit": commit.oid,
                "Accept-Ranges": "none",
            },
        )


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, lets the :class:`FakeHub` answer it, writes the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub
    timeout = 30  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        response = self.server.hub.handle(self.command, self.path, headers, body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log line: :attr:`FakeHub.requests` records requests."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so that it can close them."""

    daemon_threads = False  # tracked, so that server_close() joins them
    block_on_close = True

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection down, so that idle keep-alive threads return."""
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a client that went away; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)
