"""A local stand-in for the Hugging Face Hub's file endpoint, for tests without the internet.

Serves a Hub-layout folder the way the Hub answers `hf_hub_download`:
HEAD/GET /<owner>/<name>/resolve/<revision>/<path> with ETag, X-Repo-Commit and Content-Length,
404 with X-Error-Code EntryNotFound / RevisionNotFound. `hang=True` accepts connections and never
answers (a dead proxy); `missing` lists paths to answer 404 for; `requests` records every path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote


class HubServer:
    def __init__(self, folder: Path, repo: str, revision: str) -> None:
        self.folder, self.repo, self.revision = Path(folder), repo, revision
        self.commit = hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()
        self.hang = False
        self.missing: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                server._answer(self, with_body=False)

            def do_GET(self) -> None:
                server._answer(self, with_body=True)

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
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, with_body: bool) -> None:
        if self.hang:
            time.sleep(30)  # longer than any timeout a test configures
            return
        path = unquote(handler.path.split("?")[0])
        self.requests.append(f"{handler.command} {path}")
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
