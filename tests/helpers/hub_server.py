"""A loopback fake of the few Hugging Face Hub endpoints a push-then-load round trip uses.

:class:`FakeHub` serves, on ``127.0.0.1`` and an ephemeral port, what ``huggingface_hub``
calls when the zoo pushes a network (``create_repo``, ``preupload``, ``commit``, the model
card's ``validate-yaml``) and when a fresh process loads it (``HEAD`` / ``GET`` on
``/resolve/{revision}/{path}``, a branch or a full commit hash); repos live in memory. Every
file is committed inline (preupload answers ``"regular"``), so no LFS or Xet transfer starts.
Any other route answers 501 and an exception inside the fake answers 500; both are kept in
:attr:`FakeHub.errors`, which the ``hub`` fixture asserts empty.

Usage::

    with FakeHub() as hub:
        with hub.client_config(tmp_path / "hf"):  # this process's client -> the fake Hub
            net.push_to_hub("org/tiny")
        env = hub.client_env(tmp_path / "hf")  # a fresh process: subprocess.run(..., env=env)
        hub.repos["org/tiny"].files()  # {"path": b"content"} at the head of main
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlsplit

FAKE_TOKEN = "hf_fake_token_for_tests"
BRANCH = "main"


def git_blob_id(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a regular file's ETag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """A fake model repo: its commits (id -> files) and the head of ``main``."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    head: str = ""

    def files(self, revision: str = BRANCH) -> dict[str, bytes]:
        """The files at ``revision`` (``main`` or a commit id)."""
        return dict(self.commits[self.head if revision == BRANCH else revision])


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _error(status: int, message: str, code: str, **headers: str) -> _Response:
    """An error the client maps to its exceptions through ``X-Error-Code``."""
    response = _json({"error": message}, status)
    response.headers |= {"X-Error-Code": code, "X-Error-Message": message, **headers}
    return response


def _no_proxy(env: Mapping[str, str]) -> dict[str, str]:
    current = env.get("NO_PROXY") or env.get("no_proxy") or ""
    value = ",".join(filter(None, [current, "127.0.0.1", "localhost"]))
    return {"NO_PROXY": value, "no_proxy": value}


class FakeHub:
    """An in-memory Hub over HTTP on ``127.0.0.1``; a context manager.

    Attributes:
        repos: The repos by ``namespace/name``.
        requests: ``(method, path)`` of every request served, in order.
        errors: Requests the fake could not answer (501) and its own tracebacks (500).
    """

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, for ``HF_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def client_env(self, hf_home: Path, *, offline: bool = False) -> dict[str, str]:
        """The environment of a fresh client process of this Hub, caching under ``hf_home``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        return (
            env
            | _no_proxy(env)
            | {
                "HF_ENDPOINT": self.endpoint,
                "HF_HOME": str(hf_home),
                "HF_HUB_CACHE": str(hf_home / "hub"),
                "HF_TOKEN": FAKE_TOKEN,
                "HF_HUB_OFFLINE": "1" if offline else "0",
                "HF_HUB_DISABLE_XET": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            }
        )

    @contextmanager
    def client_config(self, hf_home: Path) -> Iterator[None]:
        """Point this process's already imported client at the fake Hub, then restore it."""
        from huggingface_hub import constants
        from huggingface_hub.utils import close_session

        values = {
            "ENDPOINT": self.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": f"{self.endpoint}/{{repo_id}}/resolve/"
            "{revision}/{filename}",
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
            close_session()  # rebuilt with this configuration, closed again on exit
            stack.callback(close_session)
            yield

    def handle(self, method: str, target: str, body: bytes) -> _Response:
        """Answer one request (called by the server's connection threads)."""
        path = unquote(urlsplit(target).path)
        with self._lock:
            self.requests.append((method, path))
            try:
                response = self._route(method, path.strip("/").split("/"), body)
            except Exception:
                response = _json({"error": "FakeHub internal error"}, 500)
                self.errors.append(traceback.format_exc())
            if response.status == 501:
                self.errors.append(f"{method} {path} is not implemented by FakeHub")
        return response

    def _route(self, method: str, parts: list[str], body: bytes) -> _Response:
        if method == "POST" and parts == ["api", "repos", "create"]:
            payload = json.loads(body)
            repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
            if repo_id in self.repos:
                return _json({"url": f"{self.endpoint}/{repo_id}"}, 409)
            self.repos[repo_id] = repo = Repo()
            repo.head = self._add_commit(repo, {})
            return _json({"url": f"{self.endpoint}/{repo_id}", "name": repo_id})
        if method == "POST" and parts == ["api", "validate-yaml"]:
            return _json({"errors": [], "warnings": []})
        if method == "GET" and parts == ["api", "agent-harnesses"]:
            return _json({"standardEnvVars": [], "harnesses": {}})
        if method == "POST" and parts[:2] == ["api", "models"] and parts[-1:] == [BRANCH]:
            repo_id = f"{parts[2]}/{parts[3]}"
            repo = self.repos[repo_id]
            if parts[4] == "preupload":
                files = json.loads(body)["files"]
                return _json(
                    {
                        "files": [
                            {**f, "uploadMode": "regular", "shouldIgnore": False} for f in files
                        ]
                    }
                )
            if parts[4] == "commit":
                return self._commit(repo_id, repo, body)
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        return _json({"error": "not implemented"}, 501)

    def _add_commit(self, repo: Repo, files: dict[str, bytes]) -> str:
        oid = hashlib.sha1(f"commit {next(self._counter)}".encode()).hexdigest()
        repo.commits[oid] = files
        return oid

    def _commit(self, repo_id: str, repo: Repo, body: bytes) -> _Response:
        files = repo.files()
        for line in (json.loads(text) for text in body.splitlines() if text.strip()):
            if line["key"] == "file":
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] != "header":
                return _json({"error": f"FakeHub commits inline files only: {line['key']}"}, 501)
        repo.head = self._add_commit(repo, files)
        url = f"{self.endpoint}/{repo_id}/commit/{repo.head}"
        return _json({"success": True, "commitOid": repo.head, "commitUrl": url})

    def _resolve(self, repo_id: str, revision: str, path: str) -> _Response:
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, f"Repository {repo_id} not found", "RepoNotFound")
        oid = repo.head if revision == BRANCH else revision
        if oid not in repo.commits:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        data = repo.commits[oid].get(path)
        if data is None:
            return _error(
                404, f"Entry not found: {path}", "EntryNotFound", **{"X-Repo-Commit": oid}
            )
        headers = {"ETag": f'"{git_blob_id(data)}"', "X-Repo-Commit": oid}
        return _Response(200, data, {"Content-Type": "application/octet-stream", **headers})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub
    timeout = 30
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        response = self.server.hub.handle(self.command, self.path, self.rfile.read(length))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: :attr:`FakeHub.requests` records the requests."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can close its keep-alive connections when it stops."""

    block_on_close = True

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away is fine
            super().handle_error(request, client_address)
