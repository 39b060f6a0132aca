"""The Style transfer tab: the feed-forward network against Gatys et al.'s optimization.

Click "Feed-forward network" -> `StyleHandlers.on_stylize` -> `Services.stylize` (demo/services.py) ->
`Runner` (perceptual_models/inference.py): the whole path from the button to the image.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from perceptual_models.controls import StyleControls, stroke_size
from perceptual_models.inference import device_name
from perceptual_models.losses import StyleObjective

from .components import UploadedImage
from .controls_ui import ControlWidgets, build_controls, controls_from
from .gpu import on_gpu
from .services import Services, Stylized, UserError
from .widgets import EXAMPLES, as_file, in_page, size_text, user_errors

# What a student compares comes first: on a phone the columns after them are a sideways scroll away.
TIMING_HEADERS = ["method", "seconds", "speed-up", "size (px)", "device"]


@dataclass
class StyleTab:
    """The tab's components. Other tabs update `style` and `style_gallery` (a newly trained style joins them)."""

    tab: gr.Tab
    style: gr.Dropdown
    style_gallery: gr.Gallery
    content: UploadedImage
    size: gr.Slider
    controls: ControlWidgets
    iterations: gr.Slider
    custom_style: UploadedImage
    run_ff: gr.Button
    run_gatys: gr.Button
    stop_gatys: gr.Button
    ff_out: gr.Image
    gatys_out: gr.Image
    ff_note: gr.Markdown
    gatys_status: gr.Markdown
    timing_table: gr.Dataframe
    loss_plot: gr.LinePlot
    timings: gr.State


def style_thumbnails(services: Services) -> list[tuple[str, str]]:
    return [(str(path), name) for name in services.style_names() if (path := services.style_image(name))]


class OptimizationStops:
    """Each browser session's Stop of its running optimization (the tab's per-session state).

    The Run button `click`s at once, before the optimization waits for its turn, so a Stop while it
    is queued is kept; the run `take`s its flag when it starts, watches it, and `release`s it at the end.
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}  # session hash -> the Stop of its running optimization

    def click(self, session: str) -> None:
        """A second click while one is pending or running keeps its flag (Gradio runs the optimization
        once), so Stop still reaches the run on screen."""
        current = self._flags.get(session)
        if current is None or current.is_set():
            self._flags[session] = threading.Event()

    def stop(self, session: str) -> None:
        flag = self._flags.get(session)
        if flag is not None:
            flag.set()

    def take(self, session: str) -> threading.Event:
        """The flag `click` made, or a new one (API calls do not click)."""
        return self._flags.setdefault(session, threading.Event())

    def release(self, session: str, flag: threading.Event) -> None:
        if self._flags.get(session) is flag:
            del self._flags[session]


class StyleHandlers:
    """The tab's callbacks, as plain methods over `services` and each session's Stop (`stops`):
    callable without a server (tests/test_handlers.py). `build_style_tab` wraps them for the page
    (`in_page`, `on_gpu`, `user_errors`) around the bound method, so that on ZeroGPU only a call's
    arguments, not `self`, cross to the GPU worker."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stops = OptimizationStops()
        self.gatys_on_gpu = on_gpu(duration=120)(user_errors(self.gatys_job))  # what `on_gatys` streams

    def on_stylize(self, content, style, size, timings, preserve_color, strength, stroke, mix_style=None, mix=0.0):
        services = self.services
        image, note = services.read_image(content, "a content image")
        if not style:
            raise UserError("Pick a style first.")
        settings = controls_from(preserve_color, strength, stroke, mix_style, mix)
        result = services.stylize(image, style, int(size), settings)
        timings = {**(timings or {}), "feedforward": {
            "seconds": result.seconds, "size": size_text(result.image), "device": device_name(services.device),
            "detail": _feedforward_detail(style, settings, result)}}
        return as_file(result.image), _timing_table(timings), timings, note

    def gatys_job(self, content, style, custom_style, size, iterations, timings, preserve_color):
        services = self.services
        image, note = services.read_image(content, "a content image")
        target = services.gatys_style(style, custom_style)
        timings = dict(timings or {})
        colors = ", photo's colours" if preserve_color else ""
        for progress in services.gatys(image, target, int(size), int(iterations), bool(preserve_color)):
            reference = None
            if progress.done:  # the speed-up's other side: a warm network pass at exactly this size
                reference = services.feedforward_seconds(None if custom_style is not None else style,
                                                         *progress.image.shape[-2:])
            timings["gatys"] = {"seconds": progress.elapsed, "size": size_text(progress.image),
                                "device": device_name(services.device), "done": progress.done,
                                "iteration": progress.iteration, "iterations": int(iterations),
                                "network_seconds": reference,
                                "detail": f"{target.label}, {progress.iteration} it., {target.weight_text()}{colors}"}
            status = (f"**{'Done' if progress.done else 'Optimizing'}**: iteration {progress.iteration} / "
                      f"{int(iterations)}, {progress.elapsed:.1f} s, total loss {progress.losses.get('total', 0):.4g}")
            yield (as_file(progress.image), "\n\n".join(filter(None, [status, note])),
                   gr.LinePlot(_loss_frame(progress.history, target.objective), x_lim=[0, int(iterations)]),
                   _timing_table(timings), timings)

    def on_gatys(self, content, style, custom_style, size, iterations, timings, preserve_color, request: gr.Request):
        """Streams `gatys_job`. Stop ends it after the image on screen, which stays, and says so.

        The Stop flag is checked here, in the server process, between updates: on ZeroGPU the
        optimization runs in a worker process that the flag cannot reach.
        """
        stop = self.stops.take(request.session_hash)
        if stop.is_set():
            self.stops.release(request.session_hash, stop)
            yield gr.skip(), "**Stopped** before it started.", gr.skip(), gr.skip(), gr.skip()
            return
        latest = timings or {}
        try:
            with contextlib.closing(self.gatys_on_gpu(content, style, custom_style, size, iterations, timings,
                                                      preserve_color)) as job:
                for update in job:
                    yield update
                    latest = update[-1]
                    if stop.is_set():
                        break
        finally:
            self.stops.release(request.session_hash, stop)
        entry = latest.get("gatys")
        if stop.is_set() and entry and not entry["done"]:
            stopped = f"**Stopped** at iteration {entry['iteration']} / {entry['iterations']}, {entry['seconds']:.1f} s"
            yield gr.skip(), stopped, gr.skip(), gr.skip(), gr.skip()

    def on_click(self, request: gr.Request):
        self.stops.click(request.session_hash)

    def on_stop(self, request: gr.Request):
        self.stops.stop(request.session_hash)

    def on_pick_style(self, event: gr.SelectData):
        """The clicked thumbnail's caption, not its index: a page opened before a style was trained
        here has an older list, where the same index is another style."""
        name = event.value.get("caption") if isinstance(event.value, dict) else None
        if name not in self.services.style_names():
            raise UserError(f"The style {name!r} is not available any more; reload the page.")
        return name


def build_style_tab(services: Services) -> StyleTab:
    """The tab's layout and events; call inside a `gr.Blocks` (demo/ui.py does)."""
    handlers = StyleHandlers(services)
    ui = _layout(services)
    ui.style_gallery.select(user_errors(handlers.on_pick_style), None, ui.style, api_visibility="private")
    ui.run_ff.click(in_page(on_gpu()(user_errors(handlers.on_stylize))),
                    [ui.content, ui.style, ui.size, ui.timings, *ui.controls.inputs],
                    [ui.ff_out, ui.timing_table, ui.timings, ui.ff_note],
                    api_name="stylize", concurrency_limit=4, concurrency_id="feedforward")
    ui.run_gatys.click(handlers.on_click, None, None, queue=False, api_visibility="private").then(
        in_page(handlers.on_gatys),
        [ui.content, ui.style, ui.custom_style, ui.size, ui.iterations, ui.timings, ui.controls.preserve_color],
        [ui.gatys_out, ui.gatys_status, ui.loss_plot, ui.timing_table, ui.timings],
        api_name="gatys", concurrency_limit=1, concurrency_id="optimization")
    ui.stop_gatys.click(handlers.on_stop, None, None, queue=False, api_visibility="private")
    return ui


def _layout(services: Services) -> StyleTab:
    styles = services.style_names()
    with gr.Tab("Style transfer", id="style") as tab:
        timings = gr.State({})
        with gr.Row():
            with gr.Column(scale=1):
                content = UploadedImage(label="Content image", sources=["upload", "webcam", "clipboard"],
                                        type="filepath", height=300, elem_id="content-image")
                if EXAMPLES:
                    gr.Examples([[str(p)] for p in EXAMPLES], inputs=[content], label="Example photos",
                                elem_id="content-examples")
            with gr.Column(scale=1, elem_id="style-controls"):
                style_gallery = gr.Gallery(style_thumbnails(services), label="Trained styles (click to pick)", columns=5,
                                           height="auto", allow_preview=False, object_fit="cover", interactive=False,
                                           elem_id="style-gallery", elem_classes="full-grid")
                # Custom values: an API caller may name a style trained after this page was built.
                style = gr.Dropdown(styles, value=styles[0] if styles else None, label="Style",
                                    allow_custom_value=True, elem_id="style-choice")
                size = gr.Slider(128, 1024, value=services.default_size, step=32, label="Output size (longer side, px)",
                                 elem_id="output-size")
                with gr.Accordion("Controls: colours, strength, stroke size, mixing", open=False,
                                  elem_id="style-controls-panel"):
                    controls = build_controls(styles, "style")
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
    return StyleTab(tab, style, style_gallery, content, size, controls, iterations, custom_style, run_ff, run_gatys,
                    stop_gatys, ff_out, gatys_out, ff_note, gatys_status, timing_table, loss_plot, timings)


def _feedforward_detail(style: str, settings: StyleControls, result: Stylized) -> str:
    """The style, and with any control on, what it cost: the network's share and, for a stroke size,
    the size the network ran at."""
    if settings == StyleControls():
        return style
    height, width = result.image.shape[-2:]
    network = f"network {result.network_seconds:.3f} s"
    if settings.stroke != 1 and settings.strength > 0:
        network += " at {1}x{0}".format(*stroke_size(height, width, settings.stroke))
    return f"{style}, {settings.describe()} ({network}, controls {result.seconds - result.network_seconds:.3f} s)"


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



def _loss_frame(history: list[dict], objective: StyleObjective) -> pd.DataFrame:
    """The weighted terms of the optimization's loss, log10 (their sum, the total, is in the status
    text: drawn here it would lie on top of the largest term)."""
    weights = {"content": objective.content_weight, "style": objective.style_weight, "TV": objective.tv_weight}
    rows = []
    for entry in history:
        for term, weight in weights.items():
            value = entry[term.lower()] * weight
            if value > 0:
                rows.append({"iteration": entry["iteration"], "log10 loss": math.log10(value), "term": term})
    return pd.DataFrame(rows, columns=["iteration", "log10 loss", "term"])


