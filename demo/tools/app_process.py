"""Start `python app.py` as a real server process on a free port (tests, `demo.tools.bench_app`)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(log_dir: Path, *, cwd: Path = REPO, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield (url, process) once the page answers; the log is kept in `log_dir/app.log`.

    `cwd` holds the app.py to run: this checkout, or for instance the files a Space received."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / "app.log").open("w")
    # A fresh app: no styles trained earlier on this machine, unless the caller says where they are.
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False",
                   "PERCEPTUAL_USER_MODELS": str(log_dir / "user-models"), **env}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=cwd, env=environment,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}: {(log_dir / 'app.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("app.py did not serve its page within 120 s")
                time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
