"""The Live tab's real-time numbers, as a viewer sees them: `python -m demo.tools.bench_live`.

Starts the app (the path it serves: eager on a CPU), opens it in headless Chromium with a fake camera,
streams for `--seconds` at each size and prints the frames per second shown in `live-output`
and the end-to-end latency (camera grab to stylised frame decoded on screen) at p50/p95, with
the server's own time per frame. `--video` also times a 10 s 640x360 clip through the same code
as the app's video panel. `--steady` measures the Live tab's steady mode without a browser (see
`bench_steady`). A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
from pathlib import Path

import psutil
from playwright.sync_api import Page, sync_playwright

from perceptual_models.cli import positive_ints
from perceptual_models.tools.clips import write_clip

from .app_process import running_app

CHROMIUM = "/usr/bin/chromium"
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU time of processes and all their descendants, each process counted once
    (Chromium's renderers are children of its main process, which is itself in the list)."""
    unique = {p.pid: p for process in processes for p in [process, *process.children(recursive=True)]}
    total = 0.0
    for p in unique.values():
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measure_stream(page: Page, size: int, seconds: float, settle: float, app: psutil.Process) -> dict:
    """Stream at `size` for `seconds` after `settle` seconds of warm-up; the viewer's numbers, and the
    CPU time the server and the browser spent per frame (what the frame costs, whatever the load)."""
    page.locator("#live-size").get_by_label(str(size)).check()
    page.wait_for_function(f"() => document.querySelector('#live-output img')?.naturalWidth === {size}",
                           timeout=120_000)
    page.wait_for_timeout(settle * 1000)
    browser = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]
    page.evaluate("() => { window.__live.shown = []; }")
    app_cpu, browser_cpu = cpu_seconds([app]), cpu_seconds(browser)
    page.wait_for_timeout(seconds * 1000)
    shown = page.evaluate("() => window.__live.shown")
    grabs = [g["t"] for g in page.evaluate("() => window.__live.grabs")]  # the last 64 camera grabs
    app_cpu, browser_cpu = cpu_seconds([app]) - app_cpu, cpu_seconds(browser) - browser_cpu
    latencies = [s["latency"] for s in shown]
    server = [s["server"] for s in shown if s["server"] is not None]
    span = (shown[-1]["t"] - shown[0]["t"]) / 1000 if len(shown) > 1 else float("inf")
    return {"size": size, "frames": len(shown), "fps_shown": (len(shown) - 1) / span,
            "grabs_per_s": (len(grabs) - 1) / ((grabs[-1] - grabs[0]) / 1000) if len(grabs) > 1 else 0.0,
            "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
            "server_ms_median": statistics.median(server) if server else None,
            "server_cpu_ms_per_frame": 1000 * app_cpu / max(1, len(shown)),
            "browser_cpu_ms_per_frame": 1000 * browser_cpu / max(1, len(shown)),
            "server_line": page.locator("#live-server").inner_text()}


def bench_stream(sizes: list[int], seconds: float, settle: float, screenshots: Path | None,
                 controls: bool = False) -> list[dict]:
    """`controls`: stream with the photo's colours kept and strength 0.6, changed while the stream runs."""
    results = []
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp), HF_HUB_OFFLINE="1") as (url, process), \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", *FAKE_CAMERA])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Live camera and video").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#live-camera .button-wrap button").first.click()
        # The first stylised frame: the app serves the eager fast path on a CPU from the start.
        page.wait_for_function("() => /fast path/.test(document.querySelector('#live-server')?.innerText)",
                               timeout=600_000)
        if controls:
            page.locator("#live-color input[type=checkbox]").check()
            page.locator("#live-strength input[type=number]").fill("0.6")
            page.locator("#live-strength input[type=number]").press("Enter")
            page.wait_for_function("() => /colours/.test(document.querySelector('#live-server')?.innerText)",
                                   timeout=60_000)
        for size in sizes:
            result = measure_stream(page, size, seconds, settle, psutil.Process(process.pid))
            results.append(result)
            print(f"{size} px: {result['fps_shown']:.1f} frames/s shown ({result['grabs_per_s']:.1f} grabbed), end to end p50 {result['latency_p50_ms']:.0f} ms"
                  f" / p95 {result['latency_p95_ms']:.0f} ms; server {result['server_ms_median']:.0f} ms per frame "
                  f"(CPU: server {result['server_cpu_ms_per_frame']:.0f} ms, browser "
                  f"{result['browser_cpu_ms_per_frame']:.0f} ms per frame; {result['frames']} frames in {seconds:g} s)",
                  flush=True)
            if screenshots:
                page.screenshot(path=str(screenshots / f"live_bench_{size}.png"))
        browser.close()
    return results


def bench_video(size: int, batch_sizes: list[int]) -> list[dict]:
    """A 10 s 640x360 30 fps clip with sound, stylised at `size` as the app does (compiled runner)."""
    from demo.live_tab import MAX_VIDEO_SECONDS
    from perceptual_models.hub import HubSettings
    from perceptual_models.inference import Runner, pick_device
    from perceptual_models.video import stylize_video

    runner = Runner.load("style/starry_night", pick_device("auto"), settings=HubSettings.from_env())
    runner.compile()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", seconds=10.0)
        for batch in batch_sizes:
            list(stylize_video(runner, clip, Path(tmp) / "warm.mp4", size, 0.5, batch))  # this batch shape, once
            final = list(stylize_video(runner, clip, Path(tmp) / "out.mp4", size, MAX_VIDEO_SECONDS, batch))[-1]
            results.append({"size": size, "batch": batch, "frames": final.frames_done, "seconds": final.elapsed,
                            "fps": final.fps})
            print(f"video 640x360 -> {size} px, batch {batch}: {final.frames_done} frames in {final.elapsed:.1f} s, "
                  f"{final.fps:.1f} frames/s", flush=True)
    return results


def flicker_ratio(frames: list, outputs: list) -> float:
    """Mean absolute frame-to-frame change of the outputs over that of the inputs."""
    def change(images):
        return sum(float((b - a).abs().mean()) for a, b in itertools.pairwise(images))
    return change(outputs) / change(frames)


def bench_steady(size: int, count: int, sigma: float, pan: int, keeps: list[float]) -> dict:
    """Steady mode on two camera-like sequences at `size` px, through the served fast path:
    - still: one photo with independent Gaussian noise (`sigma`) per frame, as a still camera sees it;
      the flicker ratio (`flicker_ratio`) with and without steady mode;
    - panning: the photo moving `pan` px per frame, same noise; the ghosting steady mode adds is its
      outputs' mean absolute difference from the plain per-frame outputs (in 8-bit levels), and the
      share of pixels more than 16 levels off.
    Each of `keeps` is tried as the most of the previous output a still pixel keeps."""
    import torch

    from demo.tools.build_gallery import EXAMPLES
    from perceptual_models.controls import STEADY_KEEP, SteadyState, steady
    from perceptual_models.hub import HubSettings
    from perceptual_models.image_io import load_image, quantize, resize
    from perceptual_models.inference import Runner, pick_device

    runner = Runner.load("style/starry_night", pick_device("cpu"), "fast", HubSettings.from_env())
    height = size * 3 // 4
    wide = resize(load_image(EXAMPLES[0]), (height, size + pan * count))  # the photo, stretched to pan across
    noise = torch.Generator().manual_seed(0)

    def noisy(image):
        return quantize(image + sigma * torch.randn(image.shape, generator=noise))

    sequences = {"still": [noisy(wide[..., :size]) for _ in range(count)],
                 "panning": [noisy(wide[..., i * pan: i * pan + size]) for i in range(count)]}
    plain = {name: [runner(frame) for frame in frames] for name, frames in sequences.items()}
    result = {"size": f"{size}x{height}", "frames": count, "sigma": sigma, "pan_px": pan,
              "plain": {"flicker": flicker_ratio(sequences["still"], plain["still"])}, "steady": {}}
    print(f"{size}x{height}, {count} frames, noise sigma {sigma * 255:g}/255, panning {pan} px per frame")
    print(f"plain: still flicker ratio {result['plain']['flicker']:.2f}")
    for keep in keeps:
        steadied = {}
        for name, frames in sequences.items():
            state = SteadyState()
            steadied[name] = [steady(frame, output, state, keep=keep) for frame, output in zip(frames, plain[name])]
        off = torch.stack([(s - p).abs() for s, p in zip(steadied["panning"], plain["panning"])])
        row = {"flicker": flicker_ratio(sequences["still"], steadied["still"]),
               "ghosting_levels": 255 * float(off.mean()), "ghosting_share_over_16": float((off > 16 / 255).float().mean())}
        result["steady"][keep] = row
        print(f"steady, keep {keep:g}{' (the default)' if keep == STEADY_KEEP else ''}: still flicker ratio "
              f"{row['flicker']:.2f}; panning: {row['ghosting_levels']:.1f} levels from the plain outputs on average, "
              f"{row['ghosting_share_over_16']:.1%} of pixels over 16", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_ints, default="256,512")
    parser.add_argument("--seconds", type=float, default=20.0, help="streaming time measured at each size")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds streamed at each size before measuring")
    parser.add_argument("--video", action="store_true", help="also time a 10 s 640x360 clip")
    parser.add_argument("--video-batches", type=positive_ints, default="1", help="frames per network call (the app uses 1 when compiled)")
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--controls", action="store_true", help="stream with the photo's colours kept and strength 0.6")
    parser.add_argument("--steady", action="store_true", help="also measure steady mode's flicker and ghosting")
    parser.add_argument("--steady-keep", default="0.8", help="comma-separated values of the previous output's share")
    parser.add_argument("--screenshots", type=Path, default=None, help="save a screenshot per size here")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from perceptual_models.inference import device_name, pick_device

    result = {"device": device_name(pick_device("auto")), "load_average": Path("/proc/loadavg").read_text().split()[:3]}
    if not args.no_stream:
        result["stream"] = bench_stream(args.sizes, args.seconds, args.settle, args.screenshots, args.controls)
    if args.video:
        result["video"] = bench_video(256, args.video_batches)
    if args.steady:
        result["steady"] = bench_steady(256, 30, 3 / 255, 3, [float(k) for k in args.steady_keep.split(",")])
    result["load_average_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before/after: {result['load_average']} / {result['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
