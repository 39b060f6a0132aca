"""The Gradio interface: four tabs over `demo.services.Services`.

Every action has an `api_name` (/stylize, /gatys, /upscale, /reconstruct) so the same calls work
from `gradio_client`. Errors a user can fix arrive as `gr.Error` with a plain message.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from perceptual_models.gatys import GatysSettings
from perceptual_models.image_io import ImageError, load_image, to_pil
from perceptual_models.inference import SR_LABELS, device_name
from perceptual_models.losses import PAPER_STYLE_LAYERS

from .components import UploadedImage
from .gpu import on_gpu
from .live import build_live_panel
from .services import DEGRADATIONS, Services, SRComparison, UserError

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "examples").glob("*.jpg"))
GALLERY = HERE / "gallery"
OUTPUTS = Path(tempfile.gettempdir()) / "perceptual-losses-outputs"
TIMING_HEADERS = ["method", "device", "size (px)", "seconds", "speed-up"]
SR_HEADERS = ["method", "PSNR (dB)", "SSIM", "seconds", "note"]
GATYS_DEFAULTS = GatysSettings()


def user_errors(fn: Callable) -> Callable:
    """Turn the errors a user can fix into `gr.Error` popups; generators and functions alike."""
    fixable = (UserError, ImageError, ValueError)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except fixable as exc:
                raise gr.Error(str(exc)) from None
        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except fixable as exc:
            raise gr.Error(str(exc)) from None
    return function


def _timing_table(timings: dict) -> pd.DataFrame:
    rows = []
    ff, gatys = timings.get("feedforward"), timings.get("gatys")
    for key, label in (("feedforward", "Feed-forward network"), ("gatys", "Optimization (Gatys, L-BFGS)")):
        entry = timings.get(key)
        if entry:
            rows.append([f"{label}" + (f", {entry['detail']}" if entry.get("detail") else ""), entry["device"],
                         entry["size"], f"{entry['seconds']:.3f}", ""])
    if ff and gatys and gatys.get("done"):
        same_size = ff["size"] == gatys["size"]
        rows[-1][4] = f"{gatys['seconds'] / ff['seconds']:.0f}x" if same_size else "(sizes differ)"
    return pd.DataFrame(rows, columns=TIMING_HEADERS)


def _size_text(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def _loss_frame(history: list[dict], weights: dict[str, float]) -> pd.DataFrame:
    rows = []
    for entry in history:
        for term in ("total", "content", "style"):
            value = entry[term] * (weights.get(term, 1.0) if term != "total" else 1.0)
            if value > 0:
                rows.append({"iteration": entry["iteration"], "log10 loss": math.log10(value), "term": term})
    return pd.DataFrame(rows, columns=["iteration", "log10 loss", "term"])


def _as_file(image: torch.Tensor | Image.Image) -> str:
    """Write an output PNG atomically under a name made from its content, and return the path.

    Returning PIL images lets Gradio write them to its cache in place, and twenty students
    asking for the same example at once then read a file while another request rewrites it
    (truncated downloads). A rename is atomic, and Gradio copies paths into its cache safely.
    """
    pil = to_pil(image) if isinstance(image, torch.Tensor) else image
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=1)
    data = buffer.getvalue()
    path = OUTPUTS / hashlib.sha256(data).hexdigest()[:32] / "output.png"
    if path.is_file():
        os.utime(path.parent)  # in use again: not to be pruned now
    else:
        _prune_outputs()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"output.{uuid.uuid4().hex}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


def _prune_outputs(max_age_seconds: float = 3600.0) -> None:
    """Drop outputs older than an hour (Gradio has copied them into its own cache by then)."""
    now = time.time()
    for folder in OUTPUTS.glob("*") if OUTPUTS.is_dir() else []:
        try:
            if now - folder.stat().st_mtime > max_age_seconds:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def _zoom(image: torch.Tensor, box: tuple[int, int, int, int], size: int = 192) -> str:
    top, left, height, width = box
    crop = image[..., top : top + height, left : left + width]
    return _as_file(to_pil(crop).resize((size, round(size * height / width)), Image.NEAREST))


def _detail_box(image: torch.Tensor, fraction: float, centre: tuple[float, float] | None) -> tuple[int, int, int, int]:
    """A square crop: at `centre` (0-1 coordinates) or, if None, where the image has most detail."""
    height, width = image.shape[-2:]
    side = max(8, int(min(height, width) * fraction))
    if centre is None:
        gray = image.mean(dim=1, keepdim=True)
        energy = (gray[..., 1:, :-1] - gray[..., :-1, :-1]).abs() + (gray[..., :-1, 1:] - gray[..., :-1, :-1]).abs()
        pooled = torch.nn.functional.avg_pool2d(energy, side, stride=max(1, side // 4))
        index = int(pooled.flatten().argmax())
        row, col = divmod(index, pooled.shape[-1])
        top, left = row * max(1, side // 4), col * max(1, side // 4)
    else:
        top, left = int(centre[1] * (height - side)), int(centre[0] * (width - side))
    return min(top, height - side), min(left, width - side), side, side


def build_demo(services: Services) -> gr.Blocks:
    styles = services.style_names()
    default_size = 512 if services.device.type == "cuda" else 256

    # --- callbacks ----------------------------------------------------------------------------

    @on_gpu()
    @user_errors
    def on_stylize(content, style, size, timings):
        image, note = services.read_image(content, "a content image")
        if not style:
            raise UserError("Pick a style first.")
        output, seconds = services.stylize(image, style, int(size))
        timings = {**(timings or {}), "feedforward": {
            "seconds": seconds, "size": _size_text(output), "device": device_name(services.device),
            "detail": style}}
        return _as_file(output), _timing_table(timings), timings, note

    @on_gpu(duration=120)
    @user_errors
    def on_gatys(content, style, custom_style, size, iterations, timings):
        image, note = services.read_image(content, "a content image")
        if custom_style is not None:
            style_image, _ = services.read_image(custom_style, "a style image")
            style_label = "uploaded style"
        else:
            path = services.style_image(style) if style else None
            if path is None:
                raise UserError("Upload a style image for the optimization (no image is bundled for this style).")
            style_image, style_label = load_image(path), style
        timings = dict(timings or {})
        for progress in services.gatys(image, style_image, int(size), int(iterations)):
            timings["gatys"] = {"seconds": progress.elapsed, "size": _size_text(progress.image),
                                "device": device_name(services.device), "done": progress.done,
                                "detail": f"{style_label}, {progress.iteration} iterations"}
            status = (f"**{'Done' if progress.done else 'Optimizing'}**: iteration {progress.iteration} / "
                      f"{int(iterations)}, {progress.elapsed:.1f} s, total loss {progress.losses.get('total', 0):.4g}")
            weights = {"content": GATYS_DEFAULTS.content_weight, "style": GATYS_DEFAULTS.style_weight}
            yield (_as_file(progress.image), "\n\n".join(filter(None, [status, note])),
                   _loss_frame(progress.history, weights), _timing_table(timings), timings)

    @on_gpu()
    @user_errors
    def on_upscale(upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom):
        image, note = services.read_image(upload, "an image", min_side=4)
        scale = int(scale.removeprefix("x"))
        comparison = services.upscale(image, scale, kind.startswith("High"), degradation)
        return _sr_outputs(comparison, scale, None if auto_zoom else (zoom_x, zoom_y), note)

    @on_gpu()
    @user_errors
    def on_reconstruct(upload, layer, mode, iterations):
        image, _ = services.read_image(upload, "an image")
        for progress in services.reconstruct(image, layer, "feature" if mode.startswith("Feature") else "style",
                                             192, int(iterations)):
            yield _as_file(progress.image), (f"iteration {progress.iteration} / {int(iterations)}, "
                                           f"{progress.elapsed:.1f} s")

    def on_pick_style(event: gr.SelectData):
        return styles[event.index]

    def on_style_change(style):
        path = services.style_image(style) if style else None
        return str(path) if path else None

    # --- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="Perceptual Losses (Johnson et al. 2016)", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Perceptual losses for real-time style transfer and super-resolution\n"
            "A hands-on reproduction of Johnson, Alahi & Fei-Fei (ECCV 2016, "
            "[arXiv 1603.08155](https://arxiv.org/abs/1603.08155)): image transformation networks trained "
            "with losses computed by a fixed VGG-16, compared with the methods they replace."
        )
        status = gr.Markdown(services.status_line(), elem_id="status-line")
        with gr.Accordion("Models: where each came from, or why it is unavailable", open=False):
            gr.Dataframe(services.model_table(), headers=["model", "status", "source / reason"], interactive=False,
                         wrap=True, elem_id="model-status")

        with gr.Tab("Style transfer", id="style"):
            timings = gr.State({})
            with gr.Row():
                with gr.Column(scale=1):
                    content = UploadedImage(label="Content image", sources=["upload", "webcam", "clipboard"],
                                            type="filepath", height=300, elem_id="content-image")
                    if EXAMPLES:
                        gr.Examples([[str(p)] for p in EXAMPLES], inputs=[content], label="Example photos")
                with gr.Column(scale=1):
                    thumbnails = [(str(services.style_image(s)), s) for s in styles if services.style_image(s)]
                    style_gallery = gr.Gallery(thumbnails, label="Trained styles (click to pick)", columns=5,
                                               height=180, allow_preview=False, object_fit="cover", interactive=False)
                    style = gr.Dropdown(styles, value=styles[0] if styles else None, label="Style",
                                        elem_id="style-choice")
                    size = gr.Slider(128, 1024, value=default_size, step=32, label="Output size (longer side, px)")
                    with gr.Accordion("Optimization (Gatys et al.) settings", open=False):
                        iterations = gr.Slider(10, 500, value=100, step=10, label="L-BFGS iterations")
                        custom_style = UploadedImage(label="Any style image (optimization only)", type="filepath",
                                                     height=160)
                    with gr.Row():
                        run_ff = gr.Button("Feed-forward network", variant="primary", elem_id="run-feedforward")
                        run_gatys = gr.Button("Optimization (Gatys)", elem_id="run-gatys")
                        stop_gatys = gr.Button("Stop", variant="stop", elem_id="stop-gatys")
            with gr.Row():
                ff_out = gr.Image(label="Feed-forward network (one pass)", format="png", elem_id="feedforward-output",
                                  height=400)
                gatys_out = gr.Image(label="Optimization (Gatys et al.)", format="png", elem_id="gatys-output",
                                     height=400)
            with gr.Row():
                ff_note = gr.Markdown()
                gatys_status = gr.Markdown(elem_id="gatys-status")
            timing_table = gr.Dataframe(headers=TIMING_HEADERS, label="Timing (this device)", interactive=False,
                                        wrap=True, elem_id="timing-table")
            loss_plot = gr.LinePlot(x="iteration", y="log10 loss", color="term", height=220,
                                    color_map={"total": "#d62728", "content": "#1f77b4", "style": "#ff7f0e"},
                                    label="Optimization loss (log10, weighted terms)")

        with gr.Tab("Live camera and video", id="live"):
            build_live_panel(services)

        with gr.Tab("Super-resolution", id="sr"):
            with gr.Row():
                with gr.Column():
                    sr_input = UploadedImage(label="Image", type="filepath", height=300, elem_id="sr-input")
                    if EXAMPLES:
                        gr.Examples([[str(p)] for p in EXAMPLES], inputs=[sr_input], label="Example photos")
                with gr.Column():
                    kind = gr.Radio(["High-resolution: make the low-res input, show PSNR/SSIM",
                                     "Low-resolution: just upscale it"],
                                    value="High-resolution: make the low-res input, show PSNR/SSIM", label="The image is")
                    scale = gr.Radio(["x4", "x8"], value="x4", label="Scale")
                    degradation = gr.Radio(list(DEGRADATIONS), value="bicubic", label="How the low-res input is made",
                                           info="bicubic: the benchmark protocol (28.43 dB on Set5). "
                                                "blur+bicubic: Gaussian blur sigma 1 first, as the paper trained.")
                    with gr.Accordion("Zoomed crop", open=False):
                        auto_zoom = gr.Checkbox(True, label="Pick the most detailed region")
                        zoom_x = gr.Slider(0, 1, value=0.5, label="Crop position x")
                        zoom_y = gr.Slider(0, 1, value=0.5, label="Crop position y")
                    run_sr = gr.Button("Upscale with every method", variant="primary", elem_id="run-sr")
            sr_note = gr.Markdown()
            sr_gallery = gr.Gallery(label="Results", columns=5, height=330, object_fit="contain", elem_id="sr-results")
            sr_crops = gr.Gallery(label="The same region, zoomed", columns=5, height=260, object_fit="contain",
                                  elem_id="sr-crops")
            sr_table = gr.Dataframe(headers=SR_HEADERS, label="Metrics (Y channel, border = scale)",
                                    interactive=False, elem_id="sr-metrics")

        with gr.Tab("Gallery", id="gallery"):
            _gallery_tab()

        with gr.Tab("How it works", id="explain"):
            gr.Markdown((HERE / "explainer.md").read_text())
            with gr.Accordion("What does the loss network see? (the paper's Figure 3)", open=True):
                gr.Markdown("Start from noise and optimise an image so that one VGG-16 layer's **features** "
                            "(or **Gram matrices**, up to that layer) match those of the photo. Deeper feature "
                            "layers keep the shapes but not the exact colours and textures; Gram matrices keep "
                            "textures and colours but lose the layout.")
                with gr.Row():
                    recon_input = UploadedImage(label="Image", type="filepath", height=220)
                    with gr.Column():
                        recon_layer = gr.Dropdown(list(PAPER_STYLE_LAYERS), value="relu2_2", label="Layer")
                        recon_mode = gr.Radio(["Feature reconstruction", "Style (Gram) reconstruction"],
                                              value="Feature reconstruction", label="Match")
                        recon_iters = gr.Slider(20, 300, value=100, step=10, label="Iterations")
                        run_recon = gr.Button("Reconstruct", variant="primary")
                    recon_out = gr.Image(label="Reconstruction", format="png", height=220)
                recon_status = gr.Markdown()
                if EXAMPLES:
                    gr.Examples([[str(p)] for p in EXAMPLES[:2]], inputs=[recon_input])

        # --- events ---------------------------------------------------------------------------
        style_gallery.select(on_pick_style, None, style, api_visibility="private")
        style.change(on_style_change, style, None, api_visibility="private")
        run_ff.click(on_stylize, [content, style, size, timings], [ff_out, timing_table, timings, ff_note],
                     api_name="stylize", concurrency_limit=4, concurrency_id="feedforward")
        gatys_event = run_gatys.click(
            on_gatys, [content, style, custom_style, size, iterations, timings],
            [gatys_out, gatys_status, loss_plot, timing_table, timings],
            api_name="gatys", concurrency_limit=1, concurrency_id="optimization")
        stop_gatys.click(None, None, None, cancels=[gatys_event], api_visibility="private")
        run_sr.click(on_upscale, [sr_input, kind, scale, degradation, zoom_x, zoom_y, auto_zoom],
                     [sr_gallery, sr_crops, sr_table, sr_note], api_name="upscale",
                     concurrency_limit=2, concurrency_id="feedforward")
        run_recon.click(on_reconstruct, [recon_input, recon_layer, recon_mode, recon_iters],
                        [recon_out, recon_status], api_name="reconstruct", concurrency_limit=1,
                        concurrency_id="optimization")
        demo.load(services.status_line, None, status, api_visibility="private")
    return demo


def _sr_outputs(comparison: SRComparison, scale: int, centre: tuple[float, float] | None, note: str):
    reference = comparison.original if comparison.original is not None else comparison.results[0].image
    box = _detail_box(reference, 0.25, centre)
    gallery, crops, rows = [], [], []
    nearest = torch.nn.functional.interpolate(comparison.low_res, scale_factor=scale, mode="nearest")
    crops.append((_zoom(nearest, box), f"input ({_size_text(comparison.low_res)}), pixels enlarged"))
    for result in comparison.results:
        label = SR_LABELS[result.method]
        if result.image is None:
            rows.append([label, "", "", "", f"unavailable: {result.error}"])
            continue
        caption = label + (f": {result.psnr:.2f} dB" if result.psnr is not None else "")
        gallery.append((_as_file(result.image), caption))
        crops.append((_zoom(result.image, box), label))
        rows.append([label, f"{result.psnr:.2f}" if result.psnr is not None else "-",
                     f"{result.ssim:.4f}" if result.ssim is not None else "-", f"{result.seconds:.3f}", ""])
    if comparison.original is not None:
        gallery.append((_as_file(comparison.original), "Original (ground truth)"))
        crops.append((_zoom(comparison.original, box), "Original"))
    top, left, height, width = box
    notes = [note, comparison.note,
             (f"Low-resolution input: {_size_text(comparison.low_res)} px; output x{scale}. "
              f"Zoomed region: {width}x{height} px at ({left}, {top}).")]
    return gallery, crops, pd.DataFrame(rows, columns=SR_HEADERS), "\n\n".join(filter(None, notes))


def _gallery_tab() -> None:
    """Precomputed results and our reproduction of the paper's tables (built by demo/build_gallery.py)."""
    index = GALLERY / "index.json"
    if not index.is_file():
        gr.Markdown("The gallery has not been built yet: run `python -m demo.build_gallery`.")
        return
    data = json.loads(index.read_text())
    gr.Markdown(data.get("intro", ""))
    for section in data.get("sections", []):
        gr.Markdown(f"### {section['title']}\n{section.get('text', '')}")
        if section.get("columns") == 1:  # wide comparison strips: a gallery grid would squash them
            for item in section.get("images", []):
                gr.Image(str(GALLERY / item["file"]), label=item["caption"], interactive=False)
        elif section.get("images"):
            gr.Gallery([(str(GALLERY / item["file"]), item["caption"]) for item in section["images"]],
                       columns=section.get("columns", 4), height="auto", object_fit="contain",
                       allow_preview=True, show_label=False)
        if section.get("markdown"):
            gr.Markdown(section["markdown"])
