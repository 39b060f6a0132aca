"""End-to-end timings of the app as its visitors see them: `python -m demo.tools.bench_app [--class]`.

Each run starts a fresh `python app.py` on a free port as a Space restarts: offline, with an empty
compiler cache (TORCHINDUCTOR_CACHE_DIR in a new folder; `--compile` is passed on as PERCEPTUAL_COMPILE),
and times requests through gradio_client (upload, queue, the work, the download).

    (default)  from the moment the page is served, one visitor after another: a 512 px /stylize, a
               2048x2048 /upscale with the page's defaults, /reconstruct (20 iterations) and Gatys at
               256 px (20 iterations, seconds per iteration); then the same again `--later` seconds
               after (600: the issue's ten minutes), and how much slower the first round was.
    --class    a class of thirty started together `--settle` seconds after the page was served: 24
               /stylize at 512 px, 4 /gatys at 256 px for 20 iterations and 2 /upscale (2048x2048);
               p50/p95 seconds per endpoint, errors, and what the queue told the waiting Gatys requests.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gradio_client import Client, handle_file
from gradio_client.utils import Status
from PIL import Image

from demo.tools.app_process import running_app

DEMO = Path(__file__).resolve().parents[1]  # demo/, for its example photos
PHOTO = DEMO / "examples" / "astronaut.jpg"
GATYS_SIZE, ITERATIONS = 256, 20
CLASS = {"/stylize": 24, "/gatys": 4, "/upscale": 2}


@dataclass
class Photos:
    """The inputs, written once: a 512 px photo and the same enlarged to 2048x2048."""

    small: str
    large: str

    @classmethod
    def write(cls, folder: Path, large_side: int = 2048) -> Photos:
        image = Image.open(PHOTO).convert("RGB")
        small, large = folder / "photo512.png", folder / f"photo{large_side}.png"
        image.resize((512, 512)).save(small)
        image.resize((large_side, large_side), Image.Resampling.BICUBIC).save(large)
        return cls(str(small), str(large))


@dataclass
class Outcome:
    """One request as its visitor saw it."""

    endpoint: str
    seconds: float = 0.0  # submit to result, end to end
    error: str = ""
    work_seconds: float | None = None  # what an optimization's status line says it took
    queue: list[str] = field(default_factory=list)  # what the queue told it while it waited, in order


def request(client: Client, endpoint: str, photos: Photos, gatys_size: int = GATYS_SIZE,
            iterations: int = ITERATIONS) -> Outcome:
    """One call of `endpoint` with the page's defaults for what it does not name; never raises."""
    args = {"/stylize": (handle_file(photos.small), "starry_night", 512),
            "/upscale": (handle_file(photos.large),),
            "/reconstruct": (handle_file(photos.small), "relu2_2", "Feature reconstruction", iterations),
            "/gatys": (handle_file(photos.small), "starry_night", None, gatys_size, iterations)}[endpoint]
    outcome = Outcome(endpoint)
    start = time.perf_counter()
    try:
        job = client.submit(*args, api_name=endpoint)
        while not job.done():
            status = job.status()
            if status.code == Status.IN_QUEUE and status.rank is not None:
                eta = f", about {status.eta:.0f} s" if status.eta is not None else ""
                told = f"position {status.rank + 1} of {status.queue_size}{eta}"
                if not outcome.queue or outcome.queue[-1] != told:
                    outcome.queue.append(told)
            time.sleep(0.05)
        result = job.result()
    except Exception as exc:  # noqa: BLE001 - counted and shown, the rest of the class goes on
        outcome.error = f"{type(exc).__name__}: {exc}"[:200]
        return outcome
    outcome.seconds = time.perf_counter() - start
    if endpoint in ("/gatys", "/reconstruct"):  # "... iteration 20 / 20, 5.1 s ..."
        found = re.search(r"(\d+) / (\d+), (\d+\.\d) s", result[1])
        outcome.work_seconds = float(found.group(3)) if found else None
    return outcome


def visitor_round(client: Client, photos: Photos) -> dict[str, Outcome]:
    """The four actions one after another, as one visitor would click them."""
    return {endpoint: request(client, endpoint, photos) for endpoint in ("/stylize", "/upscale", "/reconstruct", "/gatys")}


def describe(outcome: Outcome) -> str:
    if outcome.error:
        return f"error: {outcome.error}"
    if outcome.endpoint == "/gatys" and outcome.work_seconds is not None:
        return (f"{outcome.seconds:.2f} s, {outcome.work_seconds / ITERATIONS:.3f} s per iteration "
                f"({ITERATIONS} at {GATYS_SIZE} px)")
    return f"{outcome.seconds:.2f} s"


def per_iteration(outcome: Outcome) -> float:
    """The figure the issue compares: seconds per iteration for Gatys, end to end for the rest."""
    if outcome.endpoint == "/gatys" and outcome.work_seconds is not None:
        return outcome.work_seconds / ITERATIONS
    return outcome.seconds


def class_of_thirty(url: str, photos: Photos, counts: dict[str, int] = CLASS, gatys_size: int = GATYS_SIZE,
                    iterations: int = ITERATIONS) -> list[Outcome]:
    """Every request of the class started at once, one client per request as in a classroom."""
    endpoints = [endpoint for endpoint, count in counts.items() for _ in range(count)]
    with ThreadPoolExecutor(len(endpoints)) as pool:
        clients = list(pool.map(lambda _: Client(url, verbose=False), endpoints))
        start = threading.Barrier(len(endpoints))

        def student(client: Client, endpoint: str) -> Outcome:
            start.wait()
            return request(client, endpoint, photos, gatys_size, iterations)

        return list(pool.map(student, clients, endpoints))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 24 values is the 23rd)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def class_report(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for endpoint in dict.fromkeys(o.endpoint for o in outcomes):
        mine = [o for o in outcomes if o.endpoint == endpoint]
        done = [o.seconds for o in mine if not o.error]
        errors = [o.error for o in mine if o.error]
        timing = (f"p50 {statistics.median(done):.2f} s, p95 {percentile(done, 0.95):.2f} s, max {max(done):.2f} s"
                  if done else "none completed")
        lines.append(f"{endpoint:<10} {len(done)}/{len(mine)} completed: {timing}"
                     + (f"; {len(errors)} errors, e.g. {errors[0]}" if errors else ""))
        for o in mine:
            if o.queue and endpoint == "/gatys":
                lines.append(f"    a queued Gatys request was told {' -> '.join(o.queue)}; done after {o.seconds:.1f} s")
    return lines


def _fresh_app(folder: Path, compile_choice: str, run: Callable[[str], None]) -> None:
    start = time.monotonic()
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_COMPILE": compile_choice, "TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor")}
    with running_app(folder / "app", **env) as (url, _):
        print(f"page served {time.monotonic() - start:.1f} s after `python app.py` (PERCEPTUAL_COMPILE={compile_choice}, "
              "empty compiler cache, offline)", flush=True)
        run(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compile", default="auto", help="PERCEPTUAL_COMPILE for the app: auto, 1 or 0")
    parser.add_argument("--later", type=float, default=600.0, help="seconds between the two rounds")
    parser.add_argument("--class", dest="classroom", action="store_true", help="the class of thirty instead")
    parser.add_argument("--settle", type=float, default=30.0, help="--class: seconds after the page served")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        photos = Photos.write(Path(tmp))

        def rounds(url: str) -> None:
            client = Client(url, verbose=False)
            first = visitor_round(client, photos)
            for endpoint, outcome in first.items():
                print(f"from the start  {endpoint:<13} {describe(outcome)}", flush=True)
            time.sleep(args.later)
            later = visitor_round(client, photos)
            for endpoint, outcome in later.items():
                slower = per_iteration(first[endpoint]) / per_iteration(outcome) - 1 if not outcome.error else 0
                print(f"{args.later:.0f} s later  {endpoint:<13} {describe(outcome)}; the first was {slower:+.0%}")

        def classroom(url: str) -> None:
            time.sleep(args.settle)
            start = time.perf_counter()
            outcomes = class_of_thirty(url, photos)
            print(f"a class of {len(outcomes)} started together {args.settle:.0f} s after the page served, "
                  f"all done after {time.perf_counter() - start:.1f} s:")
            print("\n".join(class_report(outcomes)))

        _fresh_app(Path(tmp), args.compile, classroom if args.classroom else rounds)


if __name__ == "__main__":
    main()
