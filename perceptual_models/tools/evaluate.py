"""Table 2 from our own code: PSNR/SSIM of every SR method on a benchmark folder.

Protocol (the one behind the paper's 28.43 dB bicubic on Set5 x4): crop each ground-truth image
to a multiple of the scale, make the low-resolution input by bicubic downsampling (PIL's filter,
8-bit rounding), super-resolve, round to 8 bits, and measure PSNR/SSIM on the BT.601 luma with a
`scale`-pixel border removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ConfigError
from ..image_io import crop_to_multiple, degrade, load_image, quantize
from ..metrics import Reference

PROTOCOL = (
    "HR cropped to a multiple of the scale; LR = bicubic downsampling (PIL filter) rounded to 8 bits; "
    "output rounded to 8 bits; PSNR/SSIM on BT.601 Y with a border of `scale` pixels removed"
)

# The paper's Table 2, Set5 x4, as (PSNR dB, SSIM). Only Set5 is quoted: it is the set the
# protocol above reproduces exactly (bicubic 28.43 dB).
PAPER_X4 = {
    "Set5": {"bicubic": (28.43, 0.8114), "pixel": (28.40, 0.8002), "srcnn": (30.48, 0.8628), "feat": (27.09, 0.7680)},
}

Upscaler = Callable[[torch.Tensor], torch.Tensor]


def evaluate_sr(
    data_dir: str | Path, scale: int, methods: dict[str, Upscaler], blur_sigma: float = 0.0
) -> dict:
    """{"dataset", "scale", "protocol", "methods": {name: {"psnr", "ssim", "per_image": {...}}}}."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"Benchmark folder not found: {data_dir}")
    files = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg", ".tif"))
    if not files:
        raise ConfigError(f"No images in {data_dir}")
    results = {name: {"per_image": {}} for name in methods}
    for path in files:
        hr = crop_to_multiple(load_image(path), scale)
        lr = degrade(hr, scale, blur_sigma)
        reference = Reference(hr, border=scale)
        for name, upscale in methods.items():
            value_psnr, value_ssim = reference.psnr_ssim(quantize(upscale(lr)))
            results[name]["per_image"][path.name] = {"psnr": value_psnr, "ssim": value_ssim}
    for result in results.values():
        per_image = result["per_image"].values()
        result["psnr"] = sum(r["psnr"] for r in per_image) / len(per_image)
        result["ssim"] = sum(r["ssim"] for r in per_image) / len(per_image)
    protocol = PROTOCOL if not blur_sigma else PROTOCOL.replace("LR = ", f"LR = Gaussian blur sigma {blur_sigma} + ")
    return {"dataset": data_dir.name, "scale": scale, "protocol": protocol,
            "methods": {name: {"psnr": r["psnr"], "ssim": r["ssim"], "per_image": r["per_image"]}
                        for name, r in results.items()}}


def format_table(result: dict, labels: dict[str, str], markdown: bool = False) -> str:
    """Our numbers with the paper's beside them where it has them: plain text (the CLI) or a
    Markdown table (the Gallery)."""
    paper = PAPER_X4.get(result["dataset"], {}) if result["scale"] == 4 else {}
    rows = [(labels.get(name, name), f"{r['psnr']:.2f} / {r['ssim']:.4f}",
             f"{paper[name][0]:.2f} / {paper[name][1]:.4f}" if name in paper else "-")
            for name, r in result["methods"].items()]
    if markdown:
        return "\n".join([f"**{result['dataset']} x{result['scale']}** (PSNR dB / SSIM; {result['protocol']})", "",
                          "| method | ours | paper |", "| --- | --- | --- |",
                          *(f"| {label} | {ours} | {theirs} |" for label, ours, theirs in rows)])
    return "\n".join([f"{result['dataset']} x{result['scale']}  (PSNR dB / SSIM)",
                      f"{'method':<16}{'ours':>18}{'paper':>18}",
                      *(f"{label:<16}{ours:>18}{theirs:>18}" for label, ours, theirs in rows)])
