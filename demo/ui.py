"""The Gradio interface: four tabs over `demo.services.Services`.

Every action has an `api_name` (/stylize, /gatys, /upscale, /reconstruct) so the same calls work
from `gradio_client`. Errors a user can fix arrive as a warning in the page, leaving every output as
it was, and as `gr.Error` with the same plain message through `gradio_client` (see `in_page`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from perceptual_models.errors import PerceptualError
from perceptual_models.gatys import GATYS_OBJECTIVE
from perceptual_models.image_io import load_image, to_pil
from perceptual_models.inference import SR_LABELS, device_name
from perceptual_models.losses import PAPER_STYLE_LAYERS

from .components import UploadedImage
from .gpu import on_gpu
from .live import build_live_panel
from .services import DEGRADATIONS, Services, SRComparison, SRStep, UserError, log

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "examples").glob("*.jpg"))
GALLERY = HERE / "gallery"
# CSS and the page script go to launch() (Gradio 6 takes them there, not in Blocks): app.py passes these.
PAGE_ASSETS = {"css_paths": [HERE / "style.css"], "js": (HERE / "page.js").read_text()}
OUTPUTS = Path(tempfile.gettempdir()) / "perceptual-losses-outputs"
# What a student compares comes first: on a phone the columns after them are a sideways scroll away.
TIMING_HEADERS = ["method", "seconds", "speed-up", "size (px)", "device"]
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
SERVER_FAULT = "Something went wrong on the server (it is in the server log). Please try again."


def user_errors(fn: Callable) -> Callable:
    """The project's own errors (`PerceptualError`: things a user can fix) become `gr.Error` with
    their plain message and one log line; anything else is a bug: logged with its traceback, shown
    as a short generic message. Generators and functions alike."""

    def plain(exc: Exception) -> gr.Error:
        if isinstance(exc, PerceptualError):
            log.info("%s: %s", fn.__name__, exc)
            return gr.Error(str(exc), print_exception=False)
        log.exception("%s failed", fn.__name__)
        return gr.Error(SERVER_FAULT, print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted into fixable and bugs in `plain`
                raise plain(exc) from None
        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - sorted into fixable and bugs in `plain`
            raise plain(exc) from None
    return function


def in_page(fn: Callable) -> Callable:
    """Outermost decorator of a button's callback: in the browser, a `gr.Error` becomes a warning
    and every output keeps what it showed (an exception paints "Error" over each output and wipes
    the timing table); `gradio_client` callers still get the exception.

    It runs in the server process (above `on_gpu`). To tell the two apart it takes the request as
    a last `request: gr.Request` parameter, which Gradio fills in, and passes it on only if `fn`
    has that parameter itself.
    """
    signature = inspect.signature(fn)
    passes_request = "request" in signature.parameters

    def from_api(request: gr.Request | None) -> bool:
        return request is None or request.headers.get("x-gradio-user") == "api"

    if inspect.isgeneratorfunction(inspect.unwrap(fn)):  # unwrapped: `spaces.GPU` may hide it
        @functools.wraps(fn)
        def wrapper(*args: Any):
            try:
                yield from fn(*(args if passes_request else args[:-1]))
            except gr.Error as exc:
                if from_api(args[-1]):
                    raise
                gr.Warning(exc.message)
                yield gr.skip()
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any):
            try:
                return fn(*(args if passes_request else args[:-1]))
            except gr.Error as exc:
                if from_api(args[-1]):
                    raise
                gr.Warning(exc.message)
                return gr.skip()

    if not passes_request:
        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), request])
    wrapper.__annotations__ = {"request": gr.Request}  # what Gradio looks for (by type, not by name)
    return wrapper


def _timing_table(timings: dict) -> pd.DataFrame:
    """The last feed-forward run and the last optimization. The speed-up divides a finished
    optimization's time by a warm network pass timed right after it at the same size, never by
    whichever (maybe first, maybe other-sized) network run came last."""
    rows = []
    for key, label in (("feedforward", "Feed-forward"), ("gatys", "Gatys")):
        entry = timings.get(key)
        if entry:
            speedup = ""
            if entry.get("network_seconds"):
                speedup = f"{entry['seconds'] / entry['network_seconds']:.0f}x vs. {entry['network_seconds']:.3f} s"
            rows.append([f"{label}, {entry['detail']}", f"{entry['seconds']:.3f}", speedup, entry["size"],
                         entry["device"]])
    return pd.DataFrame(rows, columns=TIMING_HEADERS)


def _size_text(image: torch.Tensor) -> str:
    return f"{image.shape[-1]}x{image.shape[-2]}"


def _loss_frame(history: list[dict]) -> pd.DataFrame:
    """The weighted terms of the optimization's loss, log10 (their sum, the total, is in the status
    text: drawn here it would lie on top of the largest term)."""
    objective = GATYS_OBJECTIVE  # what Services.gatys optimises
    weights = {"content": objective.content_weight, "style": objective.style_weight, "TV": objective.tv_weight}
    rows = []
    for entry in history:
        for term, weight in weights.items():
            value = entry[term.lower()] * weight
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


def _zoom(image: torch.Tensor, box: tuple[int, int, int, int]) -> str:
    """The region, enlarged twice with square pixels (so that it is a zoom at any output size)."""
    top, left, height, width = box
    crop = image[..., top : top + height, left : left + width]
    return _as_file(to_pil(crop).resize((2 * width, 2 * height), Image.NEAREST))


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


def build_demo(services: Services) -> gr.Blocks:
    styles = services.style_names()
    stop_requests: dict[str, threading.Event] = {}  # browser session -> the Stop of its running optimization

    # --- callbacks ----------------------------------------------------------------------------

    @in_page
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
    def gatys_job(content, style, custom_style, size, iterations, timings):
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
            reference = None
            if progress.done:  # the speed-up's other side: a warm network pass at exactly this size
                reference = services.feedforward_seconds(None if custom_style is not None else style,
                                                         *progress.image.shape[-2:])
            timings["gatys"] = {"seconds": progress.elapsed, "size": _size_text(progress.image),
                                "device": device_name(services.device), "done": progress.done,
                                "iteration": progress.iteration, "iterations": int(iterations),
                                "network_seconds": reference,
                                "detail": f"{style_label}, {progress.iteration} it."}
            status = (f"**{'Done' if progress.done else 'Optimizing'}**: iteration {progress.iteration} / "
                      f"{int(iterations)}, {progress.elapsed:.1f} s, total loss {progress.losses.get('total', 0):.4g}")
            yield (_as_file(progress.image), "\n\n".join(filter(None, [status, note])),
                   gr.LinePlot(_loss_frame(progress.history), x_lim=[0, int(iterations)]),
                   _timing_table(timings), timings)

    @in_page
    def on_gatys(content, style, custom_style, size, iterations, timings, request: gr.Request):
        """Streams `gatys_job`. Stop ends it after the image on screen, which stays, and says so.

        The Stop flag is checked here, in the server process, between updates: on ZeroGPU the
        optimization runs in a worker process that the flag cannot reach.
        """
        stop = stop_requests[request.session_hash] = threading.Event()
        latest = timings or {}
        try:
            with contextlib.closing(gatys_job(content, style, custom_style, size, iterations, timings)) as job:
                for update in job:
                    yield update
                    latest = update[-1]
                    if stop.is_set():
                        break
        finally:
            if stop_requests.get(request.session_hash) is stop:
                del stop_requests[request.session_hash]
        entry = latest.get("gatys")
        if stop.is_set() and entry and not entry["done"]:
            stopped = f"**Stopped** at iteration {entry['iteration']} / {entry['iterations']}, {entry['seconds']:.1f} s"
            yield gr.skip(), stopped, gr.skip(), gr.skip(), gr.skip()

    def on_stop(request: gr.Request):
        stop = stop_requests.get(request.session_hash)
        if stop is not None:
            stop.set()

    @on_gpu()
    @user_errors
    def upscale_job(upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom):
        """Yields an `SRStep` before each step, then the outputs (as plain values: on ZeroGPU they
        cross from a worker process)."""
        image, note = services.read_image(upload, "an image", min_side=4)
        factor = int(scale.removeprefix("x"))
        for update in services.upscale(image, factor, kind == "hr", degradation):
            if isinstance(update, SRStep):
                yield update
            else:
                yield _sr_outputs(update, factor, None if auto_zoom else (zoom_x, zoom_y), note)

    @in_page
    def on_upscale(upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom,
                   progress=gr.Progress(), request: gr.Request = None):  # noqa: B008 - how Gradio passes a tracker
        """Runs `upscale_job`, showing its steps (method i of n, then its PSNR/SSIM) as progress."""
        for update in upscale_job(upload, kind, scale, degradation, zoom_x, zoom_y, auto_zoom):
            if isinstance(update, SRStep):
                progress((update.done, update.total), desc=update.text, unit="steps")
            else:
                return update

    @in_page
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

    # --- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="Perceptual Losses (Johnson et al. 2016)", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Perceptual losses for real-time style transfer and super-resolution\n"
            "A hands-on reproduction of Johnson, Alahi & Fei-Fei (ECCV 2016, "
            "[arXiv 1603.08155](https://arxiv.org/abs/1603.08155)): image transformation networks trained "
            "with losses computed by a fixed VGG-16, compared with the methods they replace.",
            elem_id="intro",
        )

        with gr.Tab("Style transfer", id="style") as style_tab:
            timings = gr.State({})
            with gr.Row():
                with gr.Column(scale=1):
                    content = UploadedImage(label="Content image", sources=["upload", "webcam", "clipboard"],
                                            type="filepath", height=300, elem_id="content-image")
                    if EXAMPLES:
                        gr.Examples([[str(p)] for p in EXAMPLES], inputs=[content], label="Example photos",
                                    elem_id="content-examples")
                with gr.Column(scale=1, elem_id="style-controls"):
                    thumbnails = [(str(services.style_image(s)), s) for s in styles if services.style_image(s)]
                    style_gallery = gr.Gallery(thumbnails, label="Trained styles (click to pick)", columns=5,
                                               height="auto", allow_preview=False, object_fit="cover", interactive=False,
                                               elem_id="style-gallery", elem_classes="full-grid")
                    style = gr.Dropdown(styles, value=styles[0] if styles else None, label="Style",
                                        elem_id="style-choice")
                    size = gr.Slider(128, 1024, value=services.default_size, step=32, label="Output size (longer side, px)",
                                     elem_id="output-size")
                    with gr.Accordion("Optimization (Gatys et al.) settings", open=False, elem_id="gatys-settings"):
                        iterations = gr.Slider(10, 500, value=100, step=10, label="L-BFGS iterations")
                        custom_style = UploadedImage(label="Any style image (optimization only)", type="filepath",
                                                     height=160)
                    with gr.Row(elem_id="run-buttons"):
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
            # Not wrapped: on a phone, wrapped columns are a few letters wide and break numbers.
            timing_table = gr.Dataframe(headers=TIMING_HEADERS, interactive=False, elem_id="timing-table",
                                        label="Timing on this device (speed-up: against a warm network pass at the "
                                              "same size, timed right after the optimization)")
            # No fixed height: with one, Gradio fits the chart to it and cuts off the legend below.
            loss_plot = gr.LinePlot(x="iteration", y="log10 loss", color="term", x_axis_format="d",
                                    color_map={"content": "#1f77b4", "style": "#ff7f0e", "TV": "#2ca02c"},
                                    label="Optimization loss (log10, weighted terms)", elem_id="loss-plot")

        with gr.Tab("Live camera and video", id="live"):
            build_live_panel(services)

        with gr.Tab("Super-resolution", id="sr"):
            # Made here, shown in the right column: the examples under the image set them.
            kind = gr.Radio(SR_KINDS, value="hr", label="The image is", render=False)
            scale = gr.Radio(["x4", "x8"], value="x4", label="Scale", render=False)
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

        # Below the tabs: a student needs the buttons first; a teacher finds the models here.
        status = gr.Markdown(services.status_line(), elem_id="status-line")
        with gr.Accordion("Models: where each came from, or why it is unavailable", open=False):
            gr.Dataframe(services.model_table(), headers=["model", "status", "source / reason"], interactive=False,
                         wrap=True, elem_id="model-status")

        # --- events ---------------------------------------------------------------------------
        style_gallery.select(on_pick_style, None, style, api_visibility="private")
        run_ff.click(on_stylize, [content, style, size, timings], [ff_out, timing_table, timings, ff_note],
                     api_name="stylize", concurrency_limit=4, concurrency_id="feedforward")
        run_gatys.click(
            on_gatys, [content, style, custom_style, size, iterations, timings],
            [gatys_out, gatys_status, loss_plot, timing_table, timings],
            api_name="gatys", concurrency_limit=1, concurrency_id="optimization")
        stop_gatys.click(on_stop, None, None, queue=False, api_visibility="private")
        run_sr.click(on_upscale, [sr_input, kind, scale, degradation, zoom_x, zoom_y, auto_zoom],
                     [sr_gallery, sr_crops, sr_table, sr_note], api_name="upscale",
                     concurrency_limit=2, concurrency_id="feedforward")
        run_recon.click(on_reconstruct, [recon_input, recon_layer, recon_mode, recon_iters],
                        [recon_out, recon_status], api_name="reconstruct", concurrency_limit=1,
                        concurrency_id="optimization")
        demo.load(services.status_line, None, status, api_visibility="private")
    # The tabs' container exists once the Blocks are closed. On a phone, Gradio's default ("menu")
    # hides every tab that does not fit behind "..."; wrapped, they all stay in sight.
    style_tab.parent.overflow_behavior = "wrap"
    return demo


def _sr_outputs(comparison: SRComparison, scale: int, centre: tuple[float, float] | None, note: str):
    """Results gallery, zoomed crops, metrics table and notes of a comparison, as plain values."""
    reference = comparison.original if comparison.original is not None else comparison.results[0].image
    box = _detail_box(reference, centre)
    nearest = torch.nn.functional.interpolate(comparison.low_res, scale_factor=scale, mode="nearest")
    gallery, crops, rows = [], [(_zoom(nearest, box), f"Input, pixels x{scale}")], []
    for result in comparison.results:
        label = SR_LABELS[result.method]
        measured = result.psnr is not None
        gallery.append((_as_file(result.image), f"{label}: {_psnr_text(result.psnr, ' dB')}" if measured else label))
        crops.append((_zoom(result.image, box), label))
        rows.append([label, _psnr_text(result.psnr) if measured else "-", f"{result.ssim:.4f}" if measured else "-",
                     f"{result.seconds:.3f}", f"{result.metrics_seconds:.3f}" if measured else "-"])
    if comparison.original is not None:
        gallery.append((_as_file(comparison.original), "Original"))
        crops.append((_zoom(comparison.original, box), "Original"))
    top, left, height, width = box
    output = comparison.results[0].image
    notes = [note, comparison.note,
             (f"Low-resolution input {_size_text(comparison.low_res)} px, output x{scale} {_size_text(output)} px; "
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
                       allow_preview=True, show_label=False, elem_classes="full-grid")
        if section.get("markdown"):
            gr.Markdown(section["markdown"])
