"""The Super-resolution tab: bicubic, SRCNN-style and the paper's networks side by side, with PSNR/SSIM."""

from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from perceptual_models.image_io import to_pil
from perceptual_models.inference import SR_LABELS, SR_SCALES

from .components import UploadedImage
from .gpu import on_gpu
from .services import DEGRADATIONS, Services, SRComparison, SRStep
from .widgets import HERE, as_file, in_page, size_text, user_errors

SR_HEADERS = ["method", "PSNR (dB)", "SSIM", "seconds", "PSNR/SSIM seconds"]
# What the uploaded image is: (label on the page, value a `gradio_client` caller sends). The labels
# can be reworded freely; the values are the API.
SR_KINDS = [("High-resolution: make the low-res input, show PSNR/SSIM", "hr"), ("Low-resolution: just upscale it", "lr")]
# (label, photo, kind, scale): the 512 px photos as originals at x4 (a 128 px low-res input, as Set5's
# are), and as low-res inputs (outputs up to 2048 px), so every example shows the methods apart.
SR_EXAMPLES = [("Astronaut: the original, x4, with PSNR/SSIM", "astronaut.jpg", "hr", "x4"),
               ("Cat: the original, x4, with PSNR/SSIM", "chelsea.jpg", "hr", "x4"),
               ("Coffee: a low-res photo, x4", "coffee.jpg", "lr", "x4"),
               ("Rocket: a low-res photo, x8", "rocket.jpg", "lr", "x8")]
ZOOM_SIDE = 128  # output pixels of the zoomed region, shown twice as large


@dataclass
class SRTab:
    """The tab's components."""

    sr_input: UploadedImage
    kind: gr.Radio
    scale: gr.Radio
    degradation: gr.Radio
    zoom_x: gr.Slider
    zoom_y: gr.Slider
    auto_zoom: gr.Checkbox
    run_sr: gr.Button
    sr_gallery: gr.Gallery
    sr_crops: gr.Gallery
    sr_table: gr.Dataframe
    sr_note: gr.Markdown


class SRHandlers:
    """The tab's callbacks, as plain methods over `services`: callable without a server. The GPU part
    (`upscale_job`) is wrapped around the bound method, so that on ZeroGPU only a call's arguments,
    not `self`, cross to the GPU worker."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.upscale_on_gpu = on_gpu()(user_errors(self.upscale_job))  # what `on_upscale` runs

    def upscale_job(self, upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom):
        """Yields an `SRStep` before each step, then the outputs (as plain values: on ZeroGPU they
        cross from a worker process)."""
        image, note = self.services.read_image(upload, "an image")
        factor = int(scale.removeprefix("x"))
        for update in self.services.upscale(image, factor, kind == "hr", degradation):
            if isinstance(update, SRStep):
                yield update
            else:
                yield sr_outputs(update, factor, None if auto_zoom else (zoom_x, zoom_y), note)

    def on_upscale(self, upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom,
                   progress=gr.Progress(), request: gr.Request = None):  # noqa: B008 - how Gradio passes a tracker
        """Runs `upscale_job`, showing its steps (method i of n, then its PSNR/SSIM) as progress."""
        for update in self.upscale_on_gpu(upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom):
            if isinstance(update, SRStep):
                progress((update.done, update.total), desc=update.text, unit="steps")
            else:
                return update


def build_sr_tab(services: Services) -> None:
    """The tab's layout and events; call inside a `gr.Blocks` (demo/ui.py does)."""
    handlers = SRHandlers(services)
    ui = _layout()
    ui.run_sr.click(in_page(handlers.on_upscale),
                    [ui.sr_input, ui.kind, ui.scale, ui.degradation, ui.zoom_x, ui.zoom_y, ui.auto_zoom],
                    [ui.sr_gallery, ui.sr_crops, ui.sr_table, ui.sr_note], api_name="upscale",
                    concurrency_limit=2, concurrency_id="super-resolution")  # seconds each: not in the way of /stylize


def _layout() -> SRTab:
    with gr.Tab("Super-resolution", id="sr"):
        # Made here, shown in the right column: the examples under the image set them.
        kind = gr.Radio(SR_KINDS, value="hr", label="The image is", render=False)
        scale = gr.Radio([f"x{s}" for s in SR_SCALES], value="x4", label="Scale", render=False)
        with gr.Row():
            with gr.Column():
                sr_input = UploadedImage(label="Image", type="filepath", height=300, elem_id="sr-input")
                examples = [(label, [str(HERE / "examples" / name), kind_, scale_])
                            for label, name, kind_, scale_ in SR_EXAMPLES if (HERE / "examples" / name).is_file()]
                if examples:
                    gr.Examples([values for _, values in examples], inputs=[sr_input, kind, scale],
                                example_labels=[label for label, _ in examples], label="Examples",
                                elem_id="sr-examples")
            with gr.Column(elem_id="sr-controls"):
                kind.render()
                scale.render()
                degradation = gr.Radio(list(DEGRADATIONS), value="bicubic", label="How the low-res input is made",
                                       info="bicubic: the benchmark protocol (28.43 dB on Set5). "
                                            "blur+bicubic: Gaussian blur sigma 1 first, as the paper trained.")
                with gr.Accordion("Zoomed crop", open=False):
                    auto_zoom = gr.Checkbox(True, label="Pick the most detailed region")
                    zoom_x = gr.Slider(0, 1, value=0.5, label="Crop position x")
                    zoom_y = gr.Slider(0, 1, value=0.5, label="Crop position y")
                run_sr = gr.Button("Upscale with every method", variant="primary", elem_id="run-sr")
        sr_note = gr.Markdown(elem_id="sr-note")
        # Room for x4's five results and six crops; x8's fewer keep the same size (fit_columns=False).
        sr_gallery = gr.Gallery(label="Results", columns=5, height="auto", object_fit="contain",
                                fit_columns=False, elem_id="sr-results", elem_classes="full-grid")
        sr_crops = gr.Gallery(label="The same region, zoomed", columns=6, height="auto", object_fit="contain",
                              fit_columns=False, elem_id="sr-crops", elem_classes="full-grid")
        sr_table = gr.Dataframe(headers=SR_HEADERS, label="Metrics (Y channel, border = scale)",
                                interactive=False, wrap=True, column_widths=["26%", "17%", "21%", "16%", "20%"],
                                elem_id="sr-metrics")
    return SRTab(sr_input, kind, scale, degradation, zoom_x, zoom_y, auto_zoom, run_sr, sr_gallery, sr_crops,
                 sr_table, sr_note)


def sr_outputs(comparison: SRComparison, scale: int, centre: tuple[float, float] | None, note: str):
    """Results gallery, zoomed crops, metrics table and notes of a comparison, as plain values."""
    reference = comparison.original if comparison.original is not None else comparison.results[0].image
    box = _detail_box(reference, centre)
    nearest = torch.nn.functional.interpolate(comparison.low_res, scale_factor=scale, mode="nearest")
    gallery, crops, rows = [], [(_zoom(nearest, box), f"Input, pixels x{scale}")], []
    for result in comparison.results:
        label = SR_LABELS[result.method]
        measured = result.psnr is not None
        gallery.append((as_file(result.image), f"{label}: {_psnr_text(result.psnr, ' dB')}" if measured else label))
        crops.append((_zoom(result.image, box), label))
        rows.append([label, _psnr_text(result.psnr) if measured else "-", f"{result.ssim:.4f}" if measured else "-",
                     f"{result.seconds:.3f}", f"{result.metrics_seconds:.3f}" if measured else "-"])
    if comparison.original is not None:
        gallery.append((as_file(comparison.original), "Original"))
        crops.append((_zoom(comparison.original, box), "Original"))
    top, left, height, width = box
    output = comparison.results[0].image
    notes = [note, comparison.note,
             (f"Low-resolution input {size_text(comparison.low_res)} px, output x{scale} {size_text(output)} px; "
              f"zoomed: the {width}x{height} px region at ({left}, {top})."),
             f"Time: the methods {sum(r.seconds for r in comparison.results):.1f} s"
             + (f", PSNR/SSIM {comparison.metrics_seconds:.1f} s (on Y, border {scale} px)."
                if comparison.original is not None else ".")]
    if any(r.psnr == math.inf for r in comparison.results):
        notes.append("“identical”: the output equals the original (on Y, inside the border), so PSNR is "
                     "infinite. The image has too little detail to tell the methods apart.")
    return gallery, crops, pd.DataFrame(rows, columns=SR_HEADERS), "\n\n".join(filter(None, notes))


def _psnr_text(value: float, unit: str = "") -> str:
    return "identical" if value == math.inf else f"{value:.2f}{unit}"


def _zoom(image: torch.Tensor, box: tuple[int, int, int, int]) -> str:
    """The region, enlarged twice with square pixels (so that it is a zoom at any output size)."""
    top, left, height, width = box
    crop = image[..., top : top + height, left : left + width]
    return as_file(to_pil(crop).resize((2 * width, 2 * height), Image.NEAREST))


def _detail_box(image: torch.Tensor, centre: tuple[float, float] | None) -> tuple[int, int, int, int]:
    """A square crop of ZOOM_SIDE pixels (less in small images): at `centre` (0-1 coordinates) or,
    if None, where the image has most detail."""
    height, width = image.shape[-2:]
    side = max(8, min(ZOOM_SIDE, min(height, width) // 2))
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


