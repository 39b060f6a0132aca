"""Render the Gallery tab from the bundled weights: `python -m demo.tools.build_gallery`.

Writes small JPEGs and `index.json` into demo/gallery/. The tables come from JSON files made by
our own commands, kept beside them:
    python -m perceptual_models bench --sizes 256,512,1024 --gatys-per-iter 50 --json demo/gallery/bench_cpu.json
    python -m perceptual_models evaluate-sr --data .../Set5 --scale 4 --json demo/gallery/sr_Set5_x4.json
(and Set14, x8 likewise); `--tables-only` refreshes just the tables from them. Gatys comparisons
need the VGG-16 weights ($PERCEPTUAL_VGG_WEIGHTS).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from perceptual_models import hub
from perceptual_models.controls import StyleControls, stylize
from perceptual_models.gatys import GATYS_OBJECTIVE, GatysSettings, network_objective, reconstruct, transfer
from perceptual_models.image_io import crop_to_multiple, degrade, load_image, resize_longer_side, to_pil
from perceptual_models.inference import (
    SR_LABELS,
    SR_METHODS,
    SR_SCALES,
    Runner,
    sr_model_name,
    style_model_name,
    style_names,
    upscale,
)
from perceptual_models.losses import PAPER_STYLE_LAYERS
from perceptual_models.tools.bench import PAPER_TABLE1
from perceptual_models.tools.evaluate import format_table
from perceptual_models.vgg import load_loss_network

DEMO = Path(__file__).resolve().parents[1]  # demo/: the example photos in, the gallery out
GALLERY = DEMO / "gallery"
EXAMPLES = sorted((DEMO / "examples").glob("*.jpg"))
CPU = torch.device("cpu")


def _save(image: Image.Image, name: str) -> str:
    GALLERY.mkdir(parents=True, exist_ok=True)
    image.save(GALLERY / name, quality=85, optimize=True)
    return name


def _strip(images: list[Image.Image], labels: list[str], height: int = 200) -> Image.Image:
    """Images side by side at one height, each with its label underneath."""
    scaled = [im.resize((round(im.width * height / im.height), height), Image.NEAREST) for im in images]
    strip = Image.new("RGB", (sum(im.width for im in scaled) + 6 * (len(scaled) - 1), height + 22), "white")
    draw, x = ImageDraw.Draw(strip), 0
    for im, label in zip(scaled, labels):
        strip.paste(im, (x, 0))
        draw.text((x + 4, height + 3), label, fill="black", font=ImageFont.load_default(size=15))
        x += im.width + 6
    return strip


def style_section(size: int, settings: hub.HubSettings) -> dict:
    styles = style_names(hub.model_names())
    images = []
    for photo in EXAMPLES:
        content = resize_longer_side(load_image(photo), size)
        for style in styles:
            output = Runner.load(style_model_name(style), CPU, "exact", settings)(content)
            images.append({"file": _save(to_pil(output), f"style_{photo.stem}_{style}.jpg"),
                           "caption": f"{photo.stem} x {style}"})
    return {"title": "Feed-forward style transfer", "columns": len(styles), "images": images,
            "text": f"Every example photo in every trained style, {size} px, one pass of the network each."}


def gatys_section(size: int, iterations: int, settings: hub.HubSettings) -> dict:
    """The paper's Figure 6 idea: ours next to Gatys et al. on the same photo, same size, same objective
    (the one the network was trained on, as the app's optimization uses)."""
    network = load_loss_network(GATYS_OBJECTIVE.layers, device=CPU, settings=settings)
    photo = EXAMPLES[0]
    content = resize_longer_side(load_image(photo), size)
    images = []
    for style in style_names(hub.model_names()):
        name = style_model_name(style)
        style_file = hub.resolve_style_image(style, settings)
        if style_file is None:
            continue
        runner = Runner.load(name, CPU, "exact", settings)
        ours = runner(content)
        objective, style_size = network_objective(runner.config)
        optimized = transfer(content, resize_longer_side(load_image(style_file[0]), style_size), network,
                             GatysSettings(iterations=iterations, objective=objective)).image
        strip = _strip([to_pil(content), to_pil(load_image(style_file[0])), to_pil(optimized), to_pil(ours)],
                       ["content", "style", f"Gatys, {iterations} L-BFGS it.", "ours, 1 pass"], height=size)
        images.append({"file": _save(strip, f"gatys_vs_ours_{style}.jpg"), "caption": style})
    return {"title": "Ours vs optimization (Gatys et al.)", "columns": 1, "images": images,
            "text": f"Same photo, same {size} px, same objective: the one each network was trained on."}


def paintings_section(sheets: Path) -> dict:
    """Ours beside Gatys et al. on held-out photos, from the contact sheets `python -m train.strength` writes
    (`--out SHEETS/<style>`; one row per photo: photo | one pass | Gatys after 100 L-BFGS iterations)."""
    images = []
    for sheet in sorted(sheets.glob("*/*.jpg")):
        style = sheet.parent.name
        image = Image.open(sheet).convert("RGB")
        image.thumbnail((480, 960))
        images.append({"file": _save(image, f"paintings_{style}.jpg"), "caption": style})
    return {"title": "Paintings, not filters: ours vs Gatys on held-out photos", "columns": 2,  # tall sheets: readable two abreast
            "images": images,
            "text": "Each row: a photo no network trained on, one pass of our network, and Gatys et al. after 100 "
                    "L-BFGS iterations from the photo on the same objective (the one the network was trained on). "
                    "Measured with `python -m train.strength`: docs/results.md."}


def reconstruction_section(iterations: int, settings: hub.HubSettings) -> dict:
    """The paper's Figure 3: images optimised from noise to match one layer's features or Grams."""
    network = load_loss_network(PAPER_STYLE_LAYERS, settings=settings)
    photo = load_image(EXAMPLES[1])
    images = []
    for mode, title in (("feature", "feature reconstruction"), ("style", "style (Gram) reconstruction")):
        results = [to_pil(resize_longer_side(photo, 192))]
        for layer in PAPER_STYLE_LAYERS:
            *_, final = reconstruct(photo, layer, mode, network, 192, iterations)
            results.append(to_pil(final.image))
        strip = _strip(results, ["photo", *PAPER_STYLE_LAYERS], height=192)
        images.append({"file": _save(strip, f"reconstruction_{mode}.jpg"), "caption": title})
    return {"title": "What the loss network sees (the paper's Figure 3)", "columns": 1, "images": images,
            "text": f"Optimised from noise for {iterations} L-BFGS iterations to match the photo's VGG-16 features "
                    "at one layer (top) or its Gram matrices up to that layer (bottom)."}


def sr_section(scale: int, settings: hub.HubSettings) -> dict:
    images = []
    for photo in EXAMPLES:
        original = crop_to_multiple(load_image(photo), scale)
        low_res = degrade(original, scale, 0.0)
        height, width = original.shape[-2:]
        side = min(height, width) // 3
        top, left = (height - side) // 2, (width - side) // 2
        crops, labels = [], []
        nearest = torch.nn.functional.interpolate(low_res, scale_factor=scale, mode="nearest")
        for label, image in [("input", nearest)] + [
            (SR_LABELS[m], _upscale(low_res, m, scale, settings)) for m in SR_METHODS
        ] + [("original", original)]:
            if image is None:
                continue
            crops.append(to_pil(image[..., top: top + side, left: left + side]))
            labels.append(label)
        images.append({"file": _save(_strip(crops, labels, height=220), f"sr_x{scale}_{photo.stem}.jpg"),
                       "caption": f"{photo.stem}, x{scale}, centre crop"})
    return {"title": f"Super-resolution x{scale}", "columns": 1, "images": images,
            "text": "The centre of each example photo: the low-resolution input (pixels enlarged), every "
                    "method, and the original."}


def _upscale(low_res: torch.Tensor, method: str, scale: int, settings: hub.HubSettings) -> torch.Tensor | None:
    if method == "bicubic":
        return upscale(low_res, method, scale)[0]
    try:
        return upscale(low_res, method, scale, Runner.load(sr_model_name(method, scale), CPU, "exact", settings))[0]
    except hub.WeightsUnavailable:
        return None


def _seconds(value: float) -> str:
    """Three decimals, or four below 0.01 s (a GPU's network times)."""
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}"


def table1_markdown(path: Path) -> str:
    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    iterations = list(result["rows"][0]["gatys_s"])
    lines = [f"**Table 1, reproduced** on {result['device']} (seconds per image; torch {result['versions']['torch']}). "
             "Paper: GTX Titan X." + (" Gatys times marked * are extrapolated from a shorter run."
                                      if any(r["extrapolated"] for r in result["rows"]) else ""), "",
             "| size | timed by | " + " | ".join(f"Gatys {n} it." for n in iterations) + " | network | speed-up at "
             f"{iterations[-1]} it. |", "|" + " --- |" * (len(iterations) + 4)]
    for row in result["rows"]:
        paper = PAPER_TABLE1.get(row["size"])
        if paper:
            lines.append(f"| {row['size']} | paper | " + " | ".join(f"{paper['gatys_s'][n]:.2f}" for n in iterations)
                         + f" | {paper['feedforward_s']:.3f} | {paper['gatys_s'][iterations[-1]] / paper['feedforward_s']:.0f}x |")
        star = "*" if row["extrapolated"] else ""
        lines.append(f"| {row['size']} | ours | " + " | ".join(f"{row['gatys_s'][n]:.1f}{star}" for n in iterations)
                     + f" | {_seconds(row['feedforward_s'])} | {row['speedup'][iterations[-1]]:.0f}x |")
    lines += ["", "Our network's fastest path against plain fp32 eager PyTorch of the same network:"]
    for row in result["rows"]:
        variants = row["feedforward_variants"]
        plain = (f"{_seconds(variants['eager_fp32_plain_process'])} s in a fresh process "
                 f"({row['fast_vs_eager_fp32_plain_process']:.2f}x), " if "eager_fp32_plain_process" in variants else "")
        if row["feedforward_path"] == "eager_fp32":
            others = ", ".join(f"{k.replace('_', ' ')} {_seconds(v)} s" for k, v in variants.items() if k != "eager_fp32")
            lines.append(f"- {row['size']} px: plain eager fp32 is the fastest here, {_seconds(row['feedforward_s'])} s ({others}).")
            continue
        agreement = row.get("psnr_vs_eager_fp32", {}).get(row["feedforward_path"])
        lines.append(f"- {row['size']} px: {row['feedforward_path'].replace('_', ' ')} {_seconds(row['feedforward_s'])} s; eager fp32 {plain}"
                     f"{_seconds(variants['eager_fp32'])} s in the same process ({row['fast_vs_eager_fp32']:.2f}x)"
                     + (f"; outputs {agreement:.0f} dB PSNR apart." if agreement else "."))
    if "note" in result:
        lines += ["", result["note"]]
    return "\n".join(lines)


def live_markdown(path: Path) -> str:
    """The Live tab's speed as a viewer sees it (written by `python -m demo.tools.bench_live --json`)."""
    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    lines = [(f"**Real time, in the browser** on {result['device']} (`python -m demo.tools.bench_live`; "
              "headless Chromium, fake camera, compiled fast path; end to end = camera grab to stylised frame on "
              f"screen; load average {' / '.join(result['load_average'])} when it started)"), "",
             "| size | frames/s shown | end to end p50 / p95 (ms) | server per frame (ms) |", "| --- | --- | --- | --- |"]
    for row in result.get("stream", []):
        lines.append(f"| {row['size']} | {row['fps_shown']:.1f} | {row['latency_p50_ms']:.0f} / {row['latency_p95_ms']:.0f}"
                     f" | {row['server_ms_median']:.0f} |")
    lines += ["", *(f"- Video file, 10 s 640x360 at {row['size']} px, batch {row['batch']}: "
                    f"{row['fps']:.1f} frames/s." for row in result.get("video", []))]
    return "\n".join(lines)


def table2_markdown(paths: list[Path]) -> str:
    return "\n\n".join(format_table(json.loads(path.read_text()), SR_LABELS, markdown=True)
                       for path in paths if path.is_file())


def teaser(settings: hub.HubSettings) -> None:
    """The README picture: a photo, the style, ours; and an SR crop strip."""
    photo = resize_longer_side(load_image(EXAMPLES[0]), 256)
    style = hub.resolve_style_image("starry_night", settings)
    ours = Runner.load("style/starry_night", CPU, "exact", settings)(photo)
    top = _strip([to_pil(photo), to_pil(load_image(style[0])), to_pil(ours)],
                 ["photo", "style", "feed-forward network, one pass"], height=256)
    sr = Image.open(GALLERY / f"sr_x4_{EXAMPLES[1].stem}.jpg")
    sr = sr.resize((top.width, round(sr.height * top.width / sr.width)))
    canvas = Image.new("RGB", (top.width, top.height + sr.height + 8), "white")
    canvas.paste(top, (0, 0))
    canvas.paste(sr, (0, top.height + 8))
    _save(canvas, "teaser.jpg")


def controls_strips(settings: hub.HubSettings, size: int = 256) -> list[str]:
    """One strip per control of perceptual_models/controls.py (docs/controls.md shows them): a photo
    and a few settings, through the same `controls.stylize` the app and the CLI use."""
    photo = resize_longer_side(load_image(DEMO / "examples" / "chelsea.jpg"), size)
    networks = {style: Runner.load(style_model_name(style), CPU, "exact", settings) for style in ("starry_night", "wave")}

    def styled(style: str = "starry_night", **values) -> Image.Image:
        controls = StyleControls(**values)
        return to_pil(stylize(photo, networks[style], controls, networks.get(controls.mix_style)))

    strips = {
        "color": ([to_pil(photo), styled(), styled(preserve_color=True), styled("wave"), styled("wave", preserve_color=True)],
                  ["photo", "starry_night", "+ photo's colours", "wave", "+ photo's colours"]),
        "strength": ([styled(strength=s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)],
                     ["strength 0 (photo)", "0.25", "0.5", "0.75", "1 (starry_night)"]),
        "stroke": ([to_pil(photo), *(styled(stroke=s) for s in (0.5, 1.0, 1.5, 2.0))],
                   ["photo", "stroke 0.5x", "1x", "1.5x", "2x"]),
        "mix": ([styled(mix_style="wave", mix=m) for m in (0.0, 0.25, 0.5, 0.75, 1.0)],
                ["starry_night", "25% wave", "50%", "75%", "wave"]),
    }
    return [_save(_strip(images, labels, height=170), f"controls_{name}.jpg") for name, (images, labels) in strips.items()]


TABLES_TITLE = "The paper's tables, reproduced by this code"


def tables_section() -> dict:
    return {"title": TABLES_TITLE, "markdown": "\n\n".join(filter(None, [
        table1_markdown(GALLERY / "bench_cpu.json"), table1_markdown(GALLERY / "bench_gpu.json"),
        live_markdown(GALLERY / "live_cpu.json"), live_markdown(GALLERY / "live_gpu.json"),
        table2_markdown([GALLERY / f"sr_{d}_x{s}.json" for s in SR_SCALES for d in ("Set5", "Set14")]),
    ]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=384, help="longer side of the style gallery images")
    parser.add_argument("--gatys-size", type=int, default=256)
    parser.add_argument("--gatys-iters", type=int, default=300)
    parser.add_argument("--skip-gatys", action="store_true")
    parser.add_argument("--tables-only", action="store_true",
                        help="only refresh the tables in index.json (after a new bench or evaluate-sr JSON)")
    parser.add_argument("--paintings", type=Path, default=None,
                        help="only refresh the ours-vs-Gatys section from train.strength's contact sheets in this folder")
    parser.add_argument("--controls-only", action="store_true", help="only write the controls' strips (docs/controls.md)")
    parser.add_argument("--styles-only", action="store_true",
                        help="only re-render the style sections and the teaser (after retraining style networks)")
    args = parser.parse_args()
    settings = hub.HubSettings.from_env()
    index_path = GALLERY / "index.json"
    if args.paintings:
        index = json.loads(index_path.read_text())
        fresh = paintings_section(args.paintings)
        others = [section for section in index["sections"] if section["title"] != fresh["title"]]
        index["sections"] = [*others[:1], fresh, *others[1:]]  # after the style gallery
        index_path.write_text(json.dumps(index, indent=2) + "\n")
        print(f"wrote {len(fresh['images'])} contact sheets into {index_path}")
        return
    if args.controls_only:
        print("wrote", ", ".join(controls_strips(settings)))
        return
    if args.tables_only or args.styles_only:
        if not index_path.is_file():
            raise SystemExit(f"{index_path} does not exist yet: build the whole gallery first.")
        torch.manual_seed(0)
        fresh = [tables_section()] if args.tables_only else [style_section(args.size, settings)]
        if args.styles_only and not args.skip_gatys:
            fresh.append(gatys_section(args.gatys_size, args.gatys_iters, settings))
        if args.styles_only:
            teaser(settings)
        by_title = {section["title"]: section for section in fresh}
        index = json.loads(index_path.read_text())
        index["sections"] = [by_title.get(section["title"], section) for section in index["sections"]]
        index_path.write_text(json.dumps(index, indent=2) + "\n")
        print(f"refreshed {', '.join(by_title)} in {index_path}")
        return
    torch.manual_seed(0)
    sections = [style_section(args.size, settings)]
    if not args.skip_gatys:
        sections.append(gatys_section(args.gatys_size, args.gatys_iters, settings))
        sections.append(reconstruction_section(args.gatys_iters, settings))
    sections += [sr_section(4, settings), sr_section(8, settings), tables_section()]
    teaser(settings)
    index = {"intro": "Precomputed with `python -m demo.tools.build_gallery` from the bundled weights "
                      "(example photos: see NOTICE).", "sections": sections}
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {index_path} and {len(list(GALLERY.glob('*.jpg')))} images")


if __name__ == "__main__":
    main()
