"""The numbers behind perceptual_models/controls.py: `python -m demo.tools.bench_controls`.

`--strength`: how three ways of blending the photo into the network's output keep contrast at
strength 0.5, on the example photos: a plain pixel blend photo + s (output - photo), the
contrast-keeping `controls.blend` the app uses, and a saturation-keeping variant of it. Printed per photo and style: per-channel standard
deviation, local contrast (the mean 7x7 standard deviation of luminance) and saturation (the mean
distance of chroma from grey), each relative to the
same blend of the two endpoints' values (1.0: as contrasted as its ends). `--pictures DIR` writes
the strips to look at.
`--cost`: what the controls add to one live frame at 256 px, against the network's own time, in
the same run (the CPU may be busy: compare the ratios).
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from perceptual_models.controls import SteadyState, StyleControls, blend, keep_color, steady, stylize
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import (
    load_image,
    resize,
    resize_longer_side,
    rgb_to_y,
    rgb_to_ycbcr,
    to_pil,
    ycbcr_to_rgb,
)
from perceptual_models.inference import Runner, device_name, pick_device, style_model_name

from .build_gallery import EXAMPLES, _strip


def saturation_keeping(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """A rejected candidate: `blend` on luminance, and each pixel's chroma put back to the blend of the two
    chroma magnitudes (where the two hues are opposite it paints false colours: docs/controls.md)."""
    ya, yb = rgb_to_ycbcr(a), rgb_to_ycbcr(b)
    ca, cb = ya[:, 1:] - 128 / 255, yb[:, 1:] - 128 / 255
    chroma = torch.lerp(ca, cb, weight)
    target = torch.lerp(ca.norm(dim=1, keepdim=True), cb.norm(dim=1, keepdim=True), weight)
    chroma = chroma * (target / chroma.norm(dim=1, keepdim=True).clamp(min=1e-3)).clamp(max=4)
    luma = blend(ya[:, :1], yb[:, :1], weight)
    return ycbcr_to_rgb(torch.cat([luma, chroma + 128 / 255], dim=1)).clamp(0, 1)


BLENDS = {"pixel": lambda photo, styled, s: torch.lerp(photo, styled, s), "contrast-keeping": blend,
          "saturation-keeping": saturation_keeping}


def local_contrast(image: torch.Tensor, window: int = 7) -> float:
    """The mean standard deviation of luminance in window x window neighbourhoods."""
    y = rgb_to_y(image)
    mean = F.avg_pool2d(y, window, 1)
    return float((F.avg_pool2d(y * y, window, 1) - mean * mean).clamp(min=0).sqrt().mean())


def channel_std(image: torch.Tensor) -> float:
    return float(image.std((-2, -1)).mean())


def saturation(image: torch.Tensor) -> float:
    """The mean distance of each pixel's chroma (Cb, Cr) from grey."""
    return float((rgb_to_ycbcr(image)[:, 1:] - 128 / 255).norm(dim=1).mean())


def bench_strength(photos: list[Path], styles: list[str], size: int, strength: float,
                   pictures: Path | None) -> list[dict]:
    rows = []
    for path in photos:
        photo = resize_longer_side(load_image(path), size)
        for style in styles:
            styled = Runner.load(style_model_name(style), torch.device("cpu"), "exact", HubSettings.from_env())(photo)
            row = {"photo": path.stem, "style": style}
            for name, measure in (("std", channel_std), ("local", local_contrast), ("saturation", saturation)):
                ends = (1 - strength) * measure(photo) + strength * measure(styled)
                for blend_name, fn in BLENDS.items():
                    row[f"{blend_name} {name}"] = measure(fn(photo, styled, strength)) / ends
            rows.append(row)
            print(f"{path.stem:<10} {style:<16}" + "  ".join(f"{k} {v:.2f}" for k, v in row.items()
                                                           if k not in ("photo", "style")), flush=True)
            if pictures:
                images = [photo, *(fn(photo, styled, strength) for fn in BLENDS.values()), styled]
                labels = ["photo", *(f"{name} {strength:g}" for name in BLENDS), "network"]
                pictures.mkdir(parents=True, exist_ok=True)
                _strip([to_pil(i) for i in images], labels, height=size).save(
                    pictures / f"strength_{path.stem}_{style}.jpg", quality=90)
    for column in rows[0]:
        if column not in ("photo", "style"):
            print(f"mean {column}: {statistics.mean(r[column] for r in rows):.2f}")
    return rows


def _ms(fn, repeats: int) -> dict:
    """Median and fastest of `repeats` calls after one warm-up, in ms: on a busy CPU the fastest is
    the cost itself, the median includes the waits for a core."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return {"median": statistics.median(times), "min": min(times)}


def bench_cost(size: int, repeats: int) -> dict:
    """The network's time for one live frame, and each control's, in one run (fast path, as served)."""
    runner = Runner.load(style_model_name("starry_night"), pick_device("cpu"), "fast", HubSettings.from_env())
    frame = resize(resize_longer_side(load_image(EXAMPLES[0]), size), (size * 3 // 4, size))  # a 4:3 camera frame
    output = runner(frame)
    state = SteadyState()
    steady(frame, output, state)
    on = StyleControls(preserve_color=True, strength=0.7)
    result = {
        "network": _ms(lambda: runner(frame), repeats),
        "network_with_colour_and_strength": _ms(lambda: stylize(frame, runner, on), repeats),
        "keep_color": _ms(lambda: keep_color(output, frame), repeats),
        "blend": _ms(lambda: blend(frame, output, 0.7), repeats),
        "steady": _ms(lambda: steady(frame, output, state), repeats),
    }
    print(f"{device_name(runner.device)}, {frame.shape[-1]}x{frame.shape[-2]} frame, {repeats} runs, ms (median / fastest): "
          + ", ".join(f"{k} {v['median']:.2f} / {v['min']:.2f}" for k, v in result.items()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strength", action="store_true")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--styles", default="starry_night,udnie,wave")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--pictures", type=Path, default=None, help="write the strength strips here")
    args = parser.parse_args()
    if args.strength:
        bench_strength(EXAMPLES[:2], args.styles.split(","), args.size, 0.5, args.pictures)
    if args.cost:
        bench_cost(args.size, args.repeats)


if __name__ == "__main__":
    main()
