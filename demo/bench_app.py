"""End-to-end timings of the app as a user sees them: `python -m demo.bench_app`.

Starts `python app.py` on a free port, measures the time until the page is served and the very
first click right after it (a 256 px stylisation, the page's default on a CPU), then the round
trip through gradio_client (upload, queue, inference, download) of a 512 px feed-forward
stylisation and of x4 super-resolution of a 256 px image (median of several calls), `--settle`
seconds after the page is served (the app warms its networks before serving and compiles them in the
background: with no compiler cache give it `--settle 420` to time the compiled path).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gradio_client import Client, handle_file
from PIL import Image

from demo.app_process import running_app

HERE = Path(__file__).parent


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
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the page is served")
    args = parser.parse_args()

    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp)) as (url, _):
        print(f"page served {time.monotonic() - start:.1f} s after `python app.py`")
        client = Client(url, verbose=False)
        photo, small = Path(tmp) / "photo512.png", Path(tmp) / "photo256.png"
        Image.open(HERE / "examples" / "astronaut.jpg").convert("RGB").resize((512, 512)).save(photo)
        Image.open(photo).resize((256, 256)).save(small)
        for label in ("first", "second"):
            started = time.perf_counter()
            client.predict(handle_file(str(photo)), args.style, 256, api_name="/stylize")
            print(f"{label} /stylize right after start (256 px), end to end: {time.perf_counter() - started:.2f} s")
        time.sleep(args.settle)

        stylize = _median_seconds(lambda: client.predict(handle_file(str(photo)), args.style, 512,
                                                         api_name="/stylize"), args.repeats)
        print(f"/stylize 512x512, end to end: {stylize:.2f} s (median of {args.repeats})")

        def upscale() -> dict:
            return client.predict(handle_file(str(small)), "lr", "x4", "bicubic", 0.5, 0.5, True,
                                  api_name="/upscale")[2]

        print(f"/upscale x4 of 256x256 (all four methods, one request), end to end: "
              f"{_median_seconds(upscale, args.repeats):.2f} s")
        for row in upscale()["data"]:
            print(f"    {row[0]:<16} network time {row[3]} s")


if __name__ == "__main__":
    main()
