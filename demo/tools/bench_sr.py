"""Super-resolution of a phone-sized photo, timed step by step: `python -m demo.tools.bench_sr [--app]`.

A 2048x2048 image (an example photo enlarged, or `--image`), x4, the app's defaults (the image is
the original, bicubic degradation): through `Services` in this process, each method and its
PSNR/SSIM and the whole comparison; with `--app`, also end to end through gradio_client against
`python app.py` (upload, queue, the comparison, the PNGs, the download), `--settle` seconds after
the page is served.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gradio_client import Client, handle_file
from PIL import Image

from demo.services import Services, SRComparison, SRStep
from demo.tools.app_process import running_app
from perceptual_models.hub import HubSettings
from perceptual_models.runtime import configure

DEMO = Path(__file__).resolve().parents[1]  # demo/, for its example photos


def bench_services(photo: Path, repeats: int) -> None:
    services = Services("cpu", HubSettings.from_env())  # as app.py looks models up
    services.runtime = configure(services.device)  # as app.py sets the process up
    services.load_models()
    image, _ = services.read_image(photo)
    for run in range(repeats):
        start = time.perf_counter()
        updates = list(services.upscale(image, 4, True, "bicubic"))
        total = time.perf_counter() - start
        comparison = updates[-1]
        assert isinstance(comparison, SRComparison) and all(isinstance(u, SRStep) for u in updates[:-1])
        methods = sum(r.seconds for r in comparison.results)
        print(f"Services.upscale {image.shape[-1]}x{image.shape[-2]} x4, run {run + 1}: {total:.1f} s "
              f"(methods {methods:.1f} s, PSNR/SSIM {comparison.metrics_seconds:.1f} s)")
        for r in comparison.results:
            print(f"    {r.method:<8} {r.seconds:6.2f} s   PSNR/SSIM {r.metrics_seconds:5.2f} s   "
                  f"{r.psnr:.2f} dB / {r.ssim:.4f}")


def bench_app(photo: Path, repeats: int, settle: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp)) as (url, _):
        time.sleep(settle)
        client = Client(url, verbose=False)
        for run in range(repeats):
            start = time.perf_counter()
            *_, table, _note = client.predict(handle_file(str(photo)), "hr", "x4", "bicubic", 0.5, 0.5, True,
                                              api_name="/upscale")
            print(f"/upscale 2048x2048 x4 end to end, run {run + 1}: {time.perf_counter() - start:.1f} s "
                  f"(methods {', '.join(f'{row[0]} {row[3]} s' for row in table['data'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, help="a photo (default: an example enlarged to 2048x2048)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--app", action="store_true", help="also through the running app")
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait after the page is served")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.image
        if photo is None:
            photo = Path(tmp) / "photo2048.jpg"
            Image.open(DEMO / "examples" / "astronaut.jpg").convert("RGB").resize((2048, 2048), Image.BICUBIC).save(
                photo, quality=92)
        bench_services(photo, args.repeats)
        if args.app:
            bench_app(photo, args.repeats, args.settle)


if __name__ == "__main__":
    main()
