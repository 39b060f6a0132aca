"""A local stand-in for the Hugging Face Hub's file endpoint, for tests without the internet.

Serves a Hub-layout folder the way the Hub answers `hf_hub_download`:
HEAD/GET /<owner>/<name>/resolve/<revision>/<path> with ETag, X-Repo-Commit and Content-Length,
404 with X-Error-Code EntryNotFound / RevisionNotFound. `hang=True` accepts connections and never
answers (a dead proxy); `missing` lists paths to answer 404 for; `requests` records every path.

It also takes uploads the way `HfApi.create_repo` and `upload_folder` make them without Xet
(HF_HUB_DISABLE_XET=1): repo creation, README metadata validation, preupload (binary or large files
must go through LFS, as on the Hub), the LFS batch API with basic PUT transfers, the NDJSON commit,
the tree listing that `delete_patterns` reads, tags, and Space hardware requests. What arrived is in
`created` ({"spaces/owner/name": Repo}); `authorization` records each write request's header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote

import yaml

HANG_SECONDS = 120  # how long a hanging server holds a request that `stop` does not let go: longer than any test
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files this large, or with a NUL byte in their start, in LFS
REPO_PATH = r"/api/(?P<kind>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"


@dataclass
class Repo:
    settings: dict  # the create request's JSON: type, sdk, visibility, ...
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)  # paths committed as LFS pointers
    hardware: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # tag -> commit
    commits: int = 0


class HubServer:
    def __init__(self, folder: Path, repo: str, revision: str) -> None:
        self.folder, self.repo, self.revision = Path(folder), repo, revision
        self.commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
        self.hang = False  # take each request and answer none, until `stop` (or HANG_SECONDS)
        self.hung: list[str] = []  # the requests taken while hanging
        self.hung_answered: list[str] = []  # those the server ended by itself: their client waited HANG_SECONDS
        self._release = threading.Event()
        self.missing: set[str] = set()
        self.requests: list[str] = []
        self.created: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}  # LFS objects by sha256
        self.authorization: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                server._answer(self, with_body=False)

            def do_GET(self) -> None:
                server._answer(self, with_body=True)

            def do_POST(self) -> None:
                server._write(self)

            def do_PUT(self) -> None:
                server._write(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.hang = False
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, with_body: bool) -> None:
        path = unquote(handler.path.split("?")[0])
        if self.hang:
            self.hung.append(f"{handler.command} {path}")
            if not self._release.wait(HANG_SECONDS):
                self.hung_answered.append(f"{handler.command} {path}")
            return
        self.requests.append(f"{handler.command} {path}")
        if tree := re.fullmatch(REPO_PATH + r"/tree/[^/]+", path):
            repo = self.created.get(f"{tree['kind']}/{tree['repo']}")
            if repo is None:
                return self._error(handler, 404, "RepoNotFound")
            return self._json(handler, 200, [{"type": "file", "path": name, "size": len(data),
                                              "oid": hashlib.sha1(data).hexdigest()}
                                             for name, data in sorted(repo.files.items())])
        prefix = f"/{self.repo}/resolve/"
        if not path.startswith(prefix):
            return self._error(handler, 404, "RepoNotFound")
        revision, _, filename = path[len(prefix):].partition("/")
        if revision not in (self.revision, self.commit):
            return self._error(handler, 404, "RevisionNotFound")
        file = self.folder / filename
        if filename in self.missing or not file.is_file():
            return self._error(handler, 404, "EntryNotFound")
        data = file.read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("X-Repo-Commit", self.commit)
        handler.end_headers()
        if with_body:
            handler.wfile.write(data)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, code: str) -> None:
        handler.send_response(status)
        handler.send_header("X-Error-Code", code)
        handler.send_header("X-Error-Message", code)
        handler.send_header("X-Repo-Commit", self.commit)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    # --- uploads --------------------------------------------------------------------------

    def _write(self, handler: BaseHTTPRequestHandler) -> None:
        path = unquote(handler.path.split("?")[0])
        self.requests.append(f"{handler.command} {path}")
        body = _read_body(handler)
        if handler.command == "PUT" and (put := re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)):
            if hashlib.sha256(body).hexdigest() != put[1]:
                return self._error(handler, 400, "BadRequest")
            self.blobs[put[1]] = body
            return self._json(handler, 200, {})
        self.authorization.append(handler.headers.get("Authorization"))
        if handler.headers.get("Authorization") is None:
            return self._error(handler, 401, "Unauthorized")
        if path == "/api/repos/create":
            return self._create(handler, json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate_yaml(handler, json.loads(body))
        if batch := re.fullmatch(r"/(?P<prefix>spaces/|datasets/|)(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch",
                                 path):
            kind = batch["prefix"].rstrip("/") or "models"
            if f"{kind}/{batch['repo']}" not in self.created:
                return self._error(handler, 404, "RepoNotFound")
            objects = []
            for item in json.loads(body)["objects"]:  # no "actions": the Hub has this content already
                if item["oid"] not in self.blobs:
                    item["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{item['oid']}"}}
                objects.append(item)
            return self._json(handler, 200, {"transfer": "basic", "objects": objects})
        match = re.fullmatch(REPO_PATH + r"/(?P<action>preupload|commit|hardware|tag)(/(?P<revision>[^/]+))?", path)
        if match is None:
            return self._error(handler, 404, "EntryNotFound")
        key = f"{match['kind']}/{match['repo']}"
        repo = self.created.get(key)
        if repo is None:
            return self._error(handler, 404, "RepoNotFound")
        if match["action"] == "preupload":
            files = json.loads(body)["files"]
            return self._json(handler, 200, {"files": [
                {"path": f["path"], "shouldIgnore": False, "oid": None,
                 "uploadMode": "lfs" if f["size"] >= LFS_THRESHOLD or b"\0" in base64.b64decode(f["sample"])
                 else "regular"} for f in files]})
        if match["action"] == "commit":
            return self._commit(handler, key, repo, body)
        if match["action"] == "tag":
            repo.tags[json.loads(body)["tag"]] = match["revision"]
            return self._json(handler, 200, {})
        repo.hardware = json.loads(body)["flavor"]
        return self._json(handler, 200, {"stage": "BUILDING", "hardware": {"current": None, "requested": repo.hardware}})

    def _create(self, handler: BaseHTTPRequestHandler, settings: dict) -> None:
        key = f"{settings.get('type', 'model')}s/{settings['organization']}/{settings['name']}"
        prefix = "" if key.startswith("models/") else key.split("/")[0] + "/"
        url = f"{self.url}/{prefix}{settings['organization']}/{settings['name']}"
        if key in self.created:  # the Hub's answer, which `exist_ok=True` reads the URL from
            return self._json(handler, 409, {"error": "You already created this repo", "url": url})
        self.created[key] = Repo(settings)
        return self._json(handler, 200, {"url": url})

    def _validate_yaml(self, handler: BaseHTTPRequestHandler, request: dict) -> None:
        """The Hub's check that matters here: a Space's README declares a known SDK."""
        text = request["content"]
        metadata = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}
        if request["repoType"] == "space" and (metadata or {}).get("sdk") not in ("gradio", "docker", "static"):
            return self._json(handler, 400, {"errors": [{"message": '"sdk" must be one of gradio, docker, static'}]})
        return self._json(handler, 200, {"errors": [], "warnings": []})

    def _commit(self, handler: BaseHTTPRequestHandler, key: str, repo: Repo, body: bytes) -> None:
        """Apply an NDJSON commit; LFS files must have been uploaded with the content they claim."""
        for line in body.decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                repo.files[value["path"]] = base64.b64decode(value["content"])
                repo.lfs.discard(value["path"])
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.blobs:
                    return self._json(handler, 422, {"error": f"LFS object {value['oid']} was never uploaded"})
                repo.files[value["path"]] = self.blobs[value["oid"]]
                repo.lfs.add(value["path"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                for name in [n for n in repo.files if n == value["path"] or n.startswith(value["path"].rstrip("/") + "/")]:
                    del repo.files[name]
        repo.commits += 1
        oid = hashlib.sha1(f"{key}#{repo.commits}".encode()).hexdigest()
        return self._json(handler, 200, {"commitUrl": f"{self.url}/{key}/commit/{oid}", "commitOid": oid,
                                         "pullRequestUrl": None})

    def _json(self, handler: BaseHTTPRequestHandler, status: int, value: object) -> None:
        data = json.dumps(value).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with a Content-Length or chunked (httpx streams file uploads)."""
    if "Content-Length" in handler.headers:
        return handler.rfile.read(int(handler.headers["Content-Length"]))
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return b""
    chunks = []
    while size := int(handler.rfile.readline().split(b";")[0], 16):
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()  # the CRLF after each chunk
    handler.rfile.readline()  # the CRLF after the last (empty) chunk
    return b"".join(chunks)
