"""End-to-end timings of the app as a user sees them: `python -m demo.bench_app`.

Starts `python app.py` on a free port, measures the time until the page is served, then the
round trip through gradio_client (upload, queue, inference, download) of a 512 px feed-forward
stylisation and of x4 super-resolution of a 256 px image (median of several calls).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gradio_client import Client, handle_file
from PIL import Image

HERE = Path(__file__).parent
HIGH_RES = "High-resolution: make the low-res input, show PSNR/SSIM"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--style", default="starry_night")
    args = parser.parse_args()

    port = _free_port()
    start = time.monotonic()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=HERE.parent,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if app.poll() is not None or time.monotonic() - start > 300:
                    raise SystemExit("the app did not start")
                time.sleep(0.2)
        print(f"page served {time.monotonic() - start:.1f} s after `python app.py`")

        client = Client(url, verbose=False)
        with tempfile.TemporaryDirectory() as folder:
            photo = Path(folder) / "photo512.png"
            Image.open(HERE / "examples" / "astronaut.jpg").convert("RGB").resize((512, 512)).save(photo)
            small = Path(folder) / "photo256.png"
            Image.open(photo).resize((256, 256)).save(small)
            stylize = _median_seconds(lambda: client.predict(handle_file(str(photo)), args.style, 512,
                                                             api_name="/stylize"), args.repeats)
            print(f"/stylize 512x512, end to end: {stylize:.2f} s (median of {args.repeats})")
            upscale = _median_seconds(lambda: client.predict(handle_file(str(small)), "Low-resolution: just upscale it",
                                                             "x4", "bicubic", 0.5, 0.5, True, api_name="/upscale"),
                                      args.repeats)
            _, _, metrics, _ = client.predict(handle_file(str(small)), "Low-resolution: just upscale it", "x4",
                                              "bicubic", 0.5, 0.5, True, api_name="/upscale")
            print(f"/upscale x4 of 256x256 (all four methods, one request), end to end: {upscale:.2f} s")
            for row in metrics["data"]:
                print(f"    {row[0]:<16} network time {row[3]} s")
    finally:
        app.terminate()
        app.wait(timeout=30)


if __name__ == "__main__":
    main()
