"""The Live tab: the camera stylised in real time, and whole video files.

Transport: Gradio's own streaming (see the README for the measurement behind the choice). The
browser grabs a camera frame every `STREAM_EVERY` seconds as a JPEG and posts it; the server keeps
only the newest frame of a stream and works on that one when it is free: frames are dropped, never
queued, so latency stays bounded when the server falls behind. Frames travel as JPEG bytes in
memory both ways (`LiveCamera`, `LiveFrame`); nothing is written to disk per frame.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from perceptual_models.controls import SteadyState, StyleControls, video_network
from perceptual_models.errors import PerceptualError
from perceptual_models.inference import device_name
from perceptual_models.video import FRAME_SIZES, probe, stylize_video

from .components import LiveCamera, LiveFrame
from .controls_ui import ControlWidgets, build_controls, controls_from
from .gpu import on_gpu
from .services import Services, UserError
from .widgets import user_errors

LIVE_STREAMS = 2  # live streams served at once; later ones wait in the queue and see their position
LIVE_TIME_LIMIT = 300  # seconds per stream: a forgotten tab gives its slot back
# Enough for the largest size (512 px). Gradio's default asks the camera for 1920x1440: every grab then
# costs the browser three times the CPU, and the stream ran at 7 frames/s instead of 12 (README).
CAMERA_CONSTRAINTS = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
# Seconds between the browser's frame grabs, per device: no faster than the server stylises. On a
# 2-core CPU (about 13 frames/s at 256 px) every extra grab is CPU taken from the network: 0.05 showed
# 11.6 frames/s, 0.07 12.2 (medians of 7 and 11 runs, README); a GPU needs 0.03 for 25+ frames/s.
STREAM_EVERY = {"cpu": 0.07, "cuda": 0.03}
MAX_VIDEO_SECONDS = 30  # longer clips are cut here, with a note
MAX_VIDEO_BYTES = 200 * 2**20
VIDEO_BATCH = 4  # frames per network call (eager path: ~1.6x the frames/s of one at a time on this CPU)

# Measures what the viewer sees, which only the browser can: the time from grabbing a camera frame
# to its stylised version being decoded on screen, and the frames shown per second. Gradio's camera
# grabs frames with canvas.toDataURL("image/jpeg") and may send the next before the last returns;
# each output's data URL names the byte size of the frame it came from (`LiveFrame`), which finds
# its grab. `window.__live` feeds demo/tools/bench_live.py.
STATS_JS = r"""
const live = window.__live = {shown: [], grabs: [], inFlight: null, src: null};
if (!window.__liveGrabHook) {
  window.__liveGrabHook = true;
  const grab = HTMLCanvasElement.prototype.toDataURL;
  HTMLCanvasElement.prototype.toDataURL = function (...args) {
    const t = performance.now();
    const url = grab.apply(this, args);
    if (args[0] === "image/jpeg") {
      const b64 = url.slice(url.indexOf(",") + 1);
      const bytes = b64.length * 3 / 4 - (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
      window.__live.grabs = [...window.__live.grabs.slice(-63), {t, bytes}];
    }
    return url;
  };
}
new MutationObserver(() => {
  const img = document.querySelector("#live-output img");
  if (!img || img.src === live.src) return;
  live.src = img.src;
  const tag = /source-bytes=(\d+)/.exec(img.src.slice(0, 80));
  const source = tag && live.grabs.filter((g) => g.bytes === Number(tag[1])).pop();
  live.inFlight = source ? source.t : null;
}).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["src"]});
document.addEventListener("load", (event) => {
  if (event.target.tagName !== "IMG" || !event.target.closest("#live-output") || live.inFlight === null) return;
  const now = performance.now();
  const server = /Server: (\d+) ms/.exec(document.querySelector("#live-server")?.innerText || "");
  live.shown.push({t: now, latency: now - live.inFlight, server: server ? Number(server[1]) : null});
  live.inFlight = null;
  const recent = live.shown.filter((s) => now - s.t < 2000);
  const fps = recent.length > 1 ? (recent.length - 1) / ((now - recent[0].t) / 1000) : 0;
  const latencies = live.shown.slice(-30).map((s) => s.latency).sort((a, b) => a - b);
  const median = latencies[Math.floor(latencies.length / 2)];
  element.textContent = `Shown: ${fps.toFixed(1)} frames/s · end to end ${median.toFixed(0)} ms ` +
    `(median of the last ${latencies.length})`;
}, true);
"""


@dataclass
class LiveTab:
    """The tab's components (`style` is the list a newly trained style joins)."""

    camera: LiveCamera
    output: LiveFrame
    style: gr.Dropdown
    size: gr.Radio
    controls: ControlWidgets
    steady_state: gr.State
    server_stats: gr.Markdown
    video_in: gr.Video
    video_out: gr.Video
    run_video: gr.Button
    cancel_video: gr.Button
    video_status: gr.Markdown


class LiveHandlers:
    """The tab's callbacks, as plain methods over `services`: callable without a server.
    `build_live_tab` wraps them for the page (`on_gpu`, `user_errors`) around the bound method, so
    that on ZeroGPU only a call's arguments, not `self`, cross to the GPU worker."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.device = device_name(services.device)

    def on_frame(self, jpeg: bytes | None, style: str | None, size: int, preserve_color: bool, strength: float,
                 stroke: float, mix_style: str | None, mix: float, steady: bool, state: SteadyState):
        """One camera frame with the controls as they are now; `state` is this browser's previous frame
        and output (steady mode), started afresh when the style, size or a control changes."""
        if jpeg is None or not style:
            return gr.skip(), gr.skip(), state
        settings = controls_from(preserve_color, strength, stroke, mix_style, mix, steady)
        try:
            frame = self.services.live_frame(jpeg, style, int(size), settings, state)
        except PerceptualError as exc:  # the stream goes on; the next frame may be fine
            return gr.skip(), f"**{exc}**", state
        path = "compiled fast path" if frame.compiled else "fast path"
        work = "network" if settings == StyleControls() else f"network and {settings.describe()}"
        (width, height), timing = frame.size, frame.timing
        return (frame.jpeg, len(jpeg)), (f"Server: {timing.total * 1000:.0f} ms per frame ({work} "
                                         f"{timing.network * 1000:.0f} ms) · {style}, {width}x{height} · "
                                         f"{self.device}, {path}"), frame.state

    def on_video(self, path: str | None, style: str | None, size: int, preserve_color: bool, strength: float,
                 stroke: float, mix_style: str | None = None, mix: float = 0.0, steady: bool = False,
                 progress=gr.Progress()):  # noqa: B008 - how Gradio is asked for a progress bar
        if path is None:
            raise UserError("Please upload a video first.")
        if Path(path).stat().st_size > MAX_VIDEO_BYTES:
            raise UserError(f"The video is over {MAX_VIDEO_BYTES // 2**20} MB; please upload a shorter or smaller one.")
        if not style:
            raise UserError("Pick a style first.")
        settings = controls_from(preserve_color, strength, stroke, mix_style, mix, steady)
        runner, mix_runner = self.services.style_networks(style, settings)
        info = probe(path)
        folder = Path(tempfile.mkdtemp(prefix="perceptual-video-"))
        try:
            output = folder / f"{Path(path).stem}_{style}.mp4"
            # The compiled graph is warmed for one image at a time; a batch would recompile it (minutes
            # on a CPU) inside the first visitor's request.
            batch = 1 if runner.compiled else VIDEO_BATCH
            network = video_network(runner, settings, mix_runner)
            for event in stylize_video(network, path, output, int(size), MAX_VIDEO_SECONDS, batch):
                progress((event.frames_done, event.frames_total), unit="frames")
                cut = (f" The clip is {info.duration:.0f} s long; only the first {event.trimmed_to:g} s were stylised."
                       if event.trimmed_to else "")
                state = "Done" if event.output else "Stylising"
                status = (f"**{state}**: frame {event.frames_done} / {event.frames_total}, {event.fps:.1f} frames/s "
                          f"on {self.device}.{cut}")
                yield (str(event.output) if event.output else gr.skip()), status
        finally:  # Gradio has copied the result into its cache by the time the generator resumes
            shutil.rmtree(folder, ignore_errors=True)


def build_live_tab(services: Services) -> gr.Dropdown:
    """The tab's layout and events; call inside a `gr.Blocks` (demo/ui.py does). Returns the style
    list, which a newly trained style joins."""
    handlers = LiveHandlers(services)
    ui = _layout(services)
    ui.camera.stream(on_gpu(duration=10)(handlers.on_frame),
                     [ui.camera, ui.style, ui.size, *ui.controls.inputs, ui.steady_state],
                     [ui.output, ui.server_stats, ui.steady_state],
                     stream_every=STREAM_EVERY[services.device.type], time_limit=LIVE_TIME_LIMIT,
                     concurrency_limit=LIVE_STREAMS, concurrency_id="live",
                     show_progress="minimal", show_progress_on=[ui.output], api_visibility="private")
    video_event = ui.run_video.click(on_gpu(duration=120)(user_errors(handlers.on_video)),
                                     [ui.video_in, ui.style, ui.size, *ui.controls.inputs],
                                     [ui.video_out, ui.video_status], api_name="stylize_video",
                                     concurrency_limit=1, concurrency_id="video")
    ui.cancel_video.click(None, None, None, cancels=[video_event], api_visibility="private")
    return ui.style


def _layout(services: Services) -> LiveTab:
    styles = services.style_names()
    with gr.Tab("Live camera and video", id="live"):
        gr.Markdown("The paper's point: one pass of the network is fast enough for video. Open the camera and press "
                    "**Record**: the stylised stream appears beside it; switch the style, the size or the controls at any time. Frames "
                    "the server cannot keep up with are skipped, so the picture stays current. A stream stops after "
                    f"{LIVE_TIME_LIMIT // 60} minutes (press Record again); at most {LIVE_STREAMS} run at once, and "
                    "later ones wait their turn.")
        with gr.Row():
            camera = LiveCamera(sources=["webcam"], streaming=True, label="Camera", elem_id="live-camera", height=360,
                                min_width=320, webcam_options=gr.WebcamOptions(constraints=CAMERA_CONSTRAINTS))
            output = LiveFrame(label="Stylised", elem_id="live-output", interactive=False, height=360, min_width=320,
                               buttons=["fullscreen"])
        with gr.Row():
            style = gr.Dropdown(styles, value=styles[0] if styles else None, label="Style", allow_custom_value=True,
                                elem_id="live-style")
            size = gr.Radio(list(FRAME_SIZES), value=services.default_size, label="Size (longer side, px)", elem_id="live-size")
        controls = build_controls(styles, "live", video=True)
        steady_state = gr.State(SteadyState())
        with gr.Column(elem_id="live-stats"):  # the browser's measurements, then the server's
            gr.HTML("Start the camera to see the frame rate and latency.", js_on_load=STATS_JS, elem_id="live-shown",
                    head="<style>#live-output img { width: 100%; height: 100%; object-fit: contain; }</style>")
            server_stats = gr.Markdown(elem_id="live-server")

        with gr.Accordion("Video file", open=True):
            gr.Markdown(f"Upload an mp4, webm or mov clip (up to {MAX_VIDEO_SECONDS} s are stylised, "
                        f"{MAX_VIDEO_BYTES // 2**20} MB at most). Every frame goes through the network with the style "
                        "and size above; the result is an H.264 mp4 with the clip's sound and frame rate.")
            with gr.Row():
                video_in = gr.Video(sources=["upload"], label="Video", elem_id="video-input", height=300)
                video_out = gr.Video(label="Stylised video", elem_id="video-output", height=300, interactive=False)
            with gr.Row():
                run_video = gr.Button("Stylise the video", variant="primary", elem_id="run-video")
                cancel_video = gr.Button("Cancel", variant="stop", elem_id="cancel-video")
            video_status = gr.Markdown(elem_id="video-status")
    return LiveTab(camera, output, style, size, controls, steady_state, server_stats, video_in, video_out, run_video,
                   cancel_video, video_status)
