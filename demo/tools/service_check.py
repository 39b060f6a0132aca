"""The app's own code path on any device, without Gradio: `python -m demo.tools.service_check [--out FILE]`.

What the page does, through `demo.services.Services` set up as app.py sets it up (the process
settings, every model, the warm-up, torch.compile where app.py compiles): feed-forward stylisation
at several sizes, Gatys et al., super-resolution x4 and x8 with PSNR/SSIM, a Figure 3
reconstruction, and a stream of live camera frames through the Live tab's own per-frame call
(`Services.live_frame`). Prints the timings;
`--out` writes them as JSON, and the Gallery shows demo/gallery/gpu_service_check.json when it
exists (demo/gallery_tab.py renders it). Made for the lent GPU machines, which have torch but
neither Gradio nor PyAV:

    python -m demo.tools.service_check --device cuda --out $OUT/gpu_service_check.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from demo.services import Services
from perceptual_models.controls import SteadyState, StyleControls
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import load_image, resize_longer_side
from perceptual_models.inference import device_name
from perceptual_models.runtime import COMPILE_CHOICES, compiles, configure
from perceptual_models.video import encode_jpeg

DEMO = Path(__file__).resolve().parents[1]  # demo/, for its example photos
PHOTO = DEMO / "examples" / "astronaut.jpg"
CAMERA = (640, 480)  # what the Live tab asks the camera for


def positive_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def check(services: Services, args: argparse.Namespace) -> dict:
    """Every action once (stylisation `args.repeats` times per size), timed as the page times it."""
    photo = load_image(PHOTO)
    report: dict = {"stylize": [], "super_resolution": []}

    for size in args.sizes:
        runs = [services.stylize(photo, args.style, size) for _ in range(args.repeats + 1)]
        report["stylize"].append({"size": size, "first_s": runs[0].seconds,
                                  "median_s": statistics.median(r.seconds for r in runs[1:]),
                                  "network_median_s": statistics.median(r.network_seconds for r in runs[1:])})
        print(f"stylize {size} px: first {runs[0].seconds:.4f} s, then {report['stylize'][-1]['median_s']:.4f} s "
              f"(median of {args.repeats})", flush=True)

    *_, last = services.gatys(photo, services.gatys_style(args.style, None), args.gatys_size, args.gatys_iterations)
    report["gatys"] = {"size": args.gatys_size, "iterations": last.iteration, "seconds": last.elapsed,
                       "per_iteration_s": last.elapsed / last.iteration, "loss": last.losses["total"]}
    print(f"Gatys {args.gatys_size} px, {last.iteration} iterations: {last.elapsed:.2f} s "
          f"({report['gatys']['per_iteration_s']:.4f} s per iteration)", flush=True)

    large = resize_longer_side(photo, args.sr_side)
    for scale in (4, 8):
        start = time.perf_counter()
        *_, comparison = services.upscale(large, scale, True, "bicubic")  # SRSteps, then the SRComparison
        seconds = time.perf_counter() - start
        methods = [{"method": r.method, "seconds": r.seconds, "psnr": r.psnr, "ssim": r.ssim}
                   for r in comparison.results]
        report["super_resolution"].append({"scale": scale, "input": f"{args.sr_side}x{args.sr_side}", "seconds": seconds,
                                           "metrics_seconds": comparison.metrics_seconds, "methods": methods})
        print(f"super-resolution x{scale} of {args.sr_side}x{args.sr_side}: {seconds:.2f} s; "
              + ", ".join(f"{m['method']} {m['seconds']:.3f} s {m['psnr']:.2f} dB" for m in methods), flush=True)

    *_, last = services.reconstruct(photo, "relu2_2", "feature", args.recon_size, args.recon_iterations)
    report["reconstruction"] = {"layer": "relu2_2", "mode": "feature", "size": args.recon_size,
                                "iterations": last.iteration, "seconds": last.elapsed}
    print(f"reconstruction relu2_2 at {args.recon_size} px, {last.iteration} iterations: {last.elapsed:.2f} s", flush=True)

    # A stream with the page's default controls, through the Live tab's own per-frame call.
    camera = np.asarray(Image.open(PHOTO).convert("RGB").resize(CAMERA))
    state, frames = SteadyState(), []
    for i in range(args.frames + 1):
        frame = services.live_frame(encode_jpeg(np.roll(camera, 8 * i, axis=1)), args.style, args.frame_size,
                                    StyleControls(), state)
        state = frame.state
        frames.append(frame.timing)
    frames = frames[1:]  # the first pays for this size's buffers
    total = statistics.median(f.total for f in frames)
    report["live"] = {"size": args.frame_size, "frames": len(frames), "median_ms": 1000 * total,
                      "network_median_ms": 1000 * statistics.median(f.network for f in frames),
                      "frames_per_s": len(frames) / sum(f.total for f in frames)}
    print(f"live frames {CAMERA[0]}x{CAMERA[1]} JPEG at {args.frame_size} px: {1000 * total:.1f} ms per frame "
          f"(network {report['live']['network_median_ms']:.1f} ms), {report['live']['frames_per_s']:.1f} frames/s")
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--compile", default="auto", choices=COMPILE_CHOICES, help="as app.py: auto compiles on a GPU")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--sizes", type=positive_ints, default="256,512,1024", help="stylisation sizes (longer side)")
    parser.add_argument("--repeats", type=int, default=5, help="stylisations per size after the first")
    parser.add_argument("--gatys-size", type=int, default=512)
    parser.add_argument("--gatys-iterations", type=int, default=100)
    parser.add_argument("--sr-side", type=int, default=2048, help="the original's side (the page's largest)")
    parser.add_argument("--recon-size", type=int, default=192, help="as the How it works tab")
    parser.add_argument("--recon-iterations", type=int, default=100)
    parser.add_argument("--frame-size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--out", type=Path, help="write the report here as JSON")
    args = parser.parse_args(argv)

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("perceptual_losses").setLevel(logging.INFO)  # as app.py: a network that fails to compile says so
    start = time.perf_counter()
    services = Services(args.device, HubSettings.from_env())
    services.runtime = configure(services.device)
    services.load_models()
    services.warm_up()
    compiled = compiles(args.compile, services.device)
    if compiled:
        services.compile_models()  # before timing: the path a server serves once compiled
    ready = time.perf_counter() - start
    print(f"{device_name(services.device)}: models loaded, warmed{' and compiled' if compiled else ''} in {ready:.1f} s",
          flush=True)
    report = {"device": device_name(services.device), "torch": torch.__version__, "python": platform.python_version(),
              "compiled": compiled, "runtime": services.runtime.as_dict(), "ready_s": ready,
              "date": datetime.now(UTC).strftime("%Y-%m-%d"), **check(services, args)}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
