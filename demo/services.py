"""What the app does, without any UI: models loaded once, each action a plain function.

The Gradio layer (`demo.ui`) only converts between widgets and these calls, so everything here
is testable directly and the same code serves the browser and `gradio_client` users.
"""

from __future__ import annotations

import functools
import logging
import statistics
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from perceptual_models import controls, hub
from perceptual_models.controls import StyleControls
from perceptual_models.errors import PerceptualError, UnreadableWeights
from perceptual_models.gatys import GATYS_OBJECTIVE, GatysSettings, Progress, network_objective, reconstruct, run
from perceptual_models.image_io import (
    ImageSource,
    cap_pixels,
    crop_to_multiple,
    degrade,
    frame_count,
    load_image,
    quantize,
    resize_longer_side,
)
from perceptual_models.inference import (
    SR_LABELS,
    SR_METHODS,
    SR_NETWORKS,
    SR_SCALES,
    Runner,
    device_name,
    pick_device,
    sr_model_name,
    style_model_name,
    style_names,
    synchronize,
    upscale,
)
from perceptual_models.losses import StyleObjective
from perceptual_models.metrics import Reference
from perceptual_models.runtime import LongWork, RuntimeChoices
from perceptual_models.vgg import LossNetwork, load_loss_network
from perceptual_models.video import FrameTiming, stylize_jpeg

# Uploads bigger than this are downscaled first (with a note in the UI), whatever the size asked.
MAX_INPUT_PIXELS = 2048 * 2048
MAX_SR_OUTPUT_SIDE = 2048  # low-resolution inputs are downscaled so that x4/x8 stays this size
DEGRADATIONS = {"bicubic": 0.0, "blur+bicubic": 1.0}

log = logging.getLogger("perceptual_losses.app")


class UserError(PerceptualError):
    """Something the person using the app can fix; shown as-is in the UI."""


@dataclass
class Stylized:
    image: torch.Tensor
    seconds: float  # all of it: the network pass(es) and the controls
    network_seconds: float  # the network passes alone (none at strength 0, two when mixing)


@dataclass
class LiveFrame:
    """One stylised camera frame, and the stream's steady state to keep for the next one."""

    jpeg: bytes
    size: tuple[int, int]  # (width, height)
    timing: FrameTiming
    state: controls.SteadyState
    compiled: bool  # whether the style's network ran its compiled graph


@dataclass
class ModelStatus:
    name: str
    origin: str = ""  # as the resolver says it (may hold a server path): see `origin_in_words`
    error: str = ""  # in words, for the page; the full exception goes to the log

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class SRResult:
    method: str
    image: torch.Tensor
    seconds: float  # the method alone (network or bicubic)
    psnr: float | None = None  # inf when the output equals the original
    ssim: float | None = None
    metrics_seconds: float | None = None  # PSNR and SSIM of this output


@dataclass
class SRComparison:
    low_res: torch.Tensor
    original: torch.Tensor | None
    results: list[SRResult] = field(default_factory=list)
    note: str = ""
    metrics_seconds: float = 0.0  # all PSNR/SSIM work, preparing the original included


@dataclass(frozen=True)
class GatysStyle:
    """The optimization's style side: the painting, its label, the objective and the painting's size."""

    image: torch.Tensor
    label: str
    objective: StyleObjective
    size: int | None = None  # longer side of the painting; None: the output's size, at least 256 px

    def weight_text(self) -> str:
        return f"style weight {self.objective.style_weight:.3g}"


@dataclass
class SRStep:
    """Where a comparison is: `done` of `total` steps finished, `text` says what runs now."""

    done: int
    total: int
    text: str


def _long_job(method: Callable[..., Generator]) -> Callable[..., Generator]:
    """A generator method whose steps run in the app's long-work threads (`Services.long_work`), if any."""

    @functools.wraps(method)
    def steps(self: Services, *args, **kwargs) -> Generator:
        job = method(self, *args, **kwargs)
        return self.long_work.steps(job) if self.long_work else job

    return steps


class Services:
    """Loads every model once at start-up; missing or broken ones are reported, not fatal."""

    def __init__(self, device: str, settings: hub.HubSettings) -> None:
        self.device = pick_device(device)
        self.settings = settings  # where models, paintings and the loss network are looked up
        self.models: dict[str, ModelStatus] = {}
        self.runners: dict[str, Runner] = {}
        self._loss_network: LossNetwork | None = None
        self._loss_network_error = ""
        self._lock = threading.Lock()
        self.runtime: RuntimeChoices | None = None  # the process set-up app.py chose, for the status line
        self.long_work: LongWork | None = None  # where app.py runs long jobs' steps (None: the caller's thread)

    @property
    def default_size(self) -> int:
        """The output size the page starts with (longer side, px): what a GPU or a CPU serves in well under a second."""
        return 512 if self.device.type == "cuda" else 256

    # --- start-up -------------------------------------------------------------------------

    def load_models(self) -> None:
        names = [style_model_name(style) for style in style_names(hub.available_models(self.settings))]
        names += [sr_model_name(m, s) for s in SR_SCALES for m in SR_NETWORKS]
        for name in names:
            self.load_model(name)

    def load_model(self, name: str) -> bool:
        """Load one model (at start-up, or a style just trained here); a broken one is reported, not fatal."""
        try:
            runner = Runner.load(name, self.device, settings=self.settings)
        except Exception as exc:  # noqa: BLE001 - any broken file: report it, serve the rest
            self.models[name] = ModelStatus(name, error=_unavailable_in_words(exc))
            log.warning("%s unavailable: %s", name, _short(exc))
            return False
        self.runners[name] = runner
        self.models[name] = ModelStatus(name, origin=runner.config.get("origin", ""))
        log.info("%s: %s", name, self.models[name].origin)
        return True

    def warm_up(self) -> None:
        """Run every network once and load the loss network, before the page is served.

        A network's first pass at a size allocates its buffers and picks its kernels (a second or
        more); paying that here makes the first click as fast as the tenth.
        """
        start = time.perf_counter()
        for name, runner in self.runners.items():
            side = self.default_size if style_names([name]) else 64
            runner(torch.rand(1, 3, side, side))
        try:
            self.loss_network()
        except UserError:
            pass  # the status line and the Optimization button say it is unavailable
        log.info("warmed up in %.1f s", time.perf_counter() - start)

    def compile_models(self, names: list[str] | None = None) -> None:
        """Switch networks (default: all) to their torch.compile'd graph, one by one: 1.5x faster on this
        CPU (Table 1). Networks of one architecture share a graph; the bundle's take ~7 minutes to compile
        on a 2-core CPU with no inductor cache, ~40 s with one. A network that fails to compile keeps
        serving on the eager fast path."""
        for name in names or list(self.runners):
            try:
                self.runners[name].compile()
            except Exception as exc:  # noqa: BLE001 - the eager path keeps serving
                log.warning("%s not compiled, served uncompiled: %s", name, _short(exc))
        log.info("compiled: %s", ", ".join(names or self.runners))

    def style_names(self) -> list[str]:
        """Every known style, broken ones included (picking one explains why it does not work).
        The paper's iconic example comes first."""
        names = style_names(self.models)
        return sorted(names, key=lambda name: (name != "starry_night", name))

    def style_image(self, style: str) -> Path | None:
        found = hub.resolve_style_image(style, self.settings)
        return found[0] if found else None

    def loss_network(self) -> LossNetwork:
        """The paper's VGG-16, loaded on first use (Gatys only); a clear error if unavailable."""
        with self._lock:
            if self._loss_network is None and not self._loss_network_error:
                try:
                    self._loss_network = load_loss_network(GATYS_OBJECTIVE.layers, device=self.device,
                                                            settings=self.settings)
                    log.info("loss network: VGG-16, %s weights, %s", self._loss_network.weight_format,
                             self._loss_network.source)
                except PerceptualError as exc:  # no weights, a pickle, weights that stop too early
                    self._loss_network_error = "the VGG-16 loss network could not be loaded (the server log says why)"
                    log.warning("loss network unavailable: %s", exc)
        if self._loss_network is None:
            raise UserError(f"Optimization is unavailable: {self._loss_network_error}.")
        return self._loss_network

    def status_line(self) -> str:
        """Where the models came from, in words: no server paths (they are in the log and `info`)."""
        origins = sorted({origin_in_words(s.origin) for s in self.models.values() if s.ok})
        broken = sorted(s.name for s in self.models.values() if not s.ok)
        if self._loss_network is not None:
            vgg = f"VGG-16, {origin_in_words(self._loss_network.source)}"
        elif self._loss_network_error:
            vgg = "VGG-16 unavailable, so optimization is off"
        else:
            vgg = "VGG-16, loaded on first optimization"
        parts = [f"**Weights:** {', '.join(origins) or 'none found'}"
                 + (f" (not available: {', '.join(broken)})" if broken else ""),
                 f"**Loss network:** {vgg}", f"**Device:** {device_name(self.device)}"]
        if self.runtime is not None:
            parts.append(f"**Runtime:** {self.runtime.summary()}")
        return " · ".join(parts)

    def model_table(self) -> list[list[str]]:
        """[model, status, where from / why not] for the "Models" panel, in words."""
        return [[name, "available" if status.ok else "unavailable",
                 origin_in_words(status.origin) if status.ok else status.error]
                for name, status in sorted(self.models.items())]

    # --- inputs ---------------------------------------------------------------------------

    @staticmethod
    def read_image(source: ImageSource | None, what: str = "an image") -> tuple[torch.Tensor, str]:
        """Decode an upload; huge images are downscaled and animations give their first frame (the note says so)."""
        if source is None:
            raise UserError(f"Please upload {what} first.")
        image = load_image(source)
        image, shrunk = cap_pixels(image, MAX_INPUT_PIXELS)
        notes = []
        if (frames := frame_count(source)) > 1:
            notes.append(f"The upload is an animation: the first frame of {frames} was used.")
        if shrunk:
            notes.append(f"The upload was downscaled to {image.shape[-1]}x{image.shape[-2]} "
                         f"(limit {MAX_INPUT_PIXELS / 1e6:.0f} MP).")
        return image, " ".join(notes)

    # --- style transfer -------------------------------------------------------------------

    def style_runner(self, style: str) -> Runner:
        """The loaded network of a style, or a UserError that says why there is none."""
        runner = self.runners.get(style_model_name(style))
        if runner is None:
            status = self.models.get(style_model_name(style))
            raise UserError(f"Style {style!r} is unavailable" + (f": {status.error}" if status else "."))
        return runner

    def style_networks(self, style: str, settings: StyleControls) -> tuple[Runner, Runner | None]:
        """The style's network and, when the settings mix in a second style, that one's."""
        settings.validate()
        return self.style_runner(style), self.style_runner(settings.mix_style) if settings.mixes else None

    def live_frame(self, jpeg: bytes, style: str, size: int, settings: StyleControls,
                   state: controls.SteadyState) -> LiveFrame:
        """One camera frame as the Live tab serves it (the GPU service check times the same): `state` is this
        stream's previous frame and output, started afresh when the style, size or a control changes."""
        runner, mix_runner = self.style_networks(style, settings)
        state = state.following((style, size, settings))
        output, frame_size, timing = stylize_jpeg(controls.video_network(runner, settings, mix_runner, state), jpeg, size)
        return LiveFrame(output, frame_size, timing, state, runner.compiled)

    def stylize(self, content: torch.Tensor, style: str, size: int,
                settings: StyleControls = StyleControls()) -> Stylized:  # noqa: B008 - frozen, shared safely
        """Feed-forward stylisation at `size` (longer side) with the controls, timed."""
        image = resize_longer_side(content, size)
        network, mix_network = self.style_networks(style, settings)
        network_seconds = []

        def timed(runner: Runner) -> controls.Network:
            def run(x: torch.Tensor) -> torch.Tensor:
                output, seconds = runner.timed(x)
                network_seconds.append(seconds)
                return output
            return run

        synchronize(self.device)
        start = time.perf_counter()
        output = controls.stylize(image, timed(network), settings, mix_network and timed(mix_network))
        return Stylized(output, time.perf_counter() - start, sum(network_seconds))

    def feedforward_seconds(self, style: str | None, height: int, width: int, repeats: int = 3) -> float | None:
        """One warm feed-forward pass at exactly `height` x `width`, in seconds (median of `repeats`
        after a warm-up pass): what the optimization's speed-up is measured against.

        Every style network has the same architecture, so any one stands in for an uploaded style;
        None when no style network is loaded.
        """
        runner = self.runners.get(style_model_name(style)) if style else None
        runner = runner or next((self.runners[style_model_name(s)] for s in style_names(self.runners)), None)
        if runner is None:
            return None
        image = torch.rand(1, 3, height, width)
        runner(image)
        return statistics.median(runner.timed(image)[1] for _ in range(repeats))

    def gatys_style(self, style: str | None, upload: ImageSource | None) -> GatysStyle:
        """What the optimization matches: an upload wins over the picked style's own image. A style with a
        network is optimised on the objective that network was trained on, with its painting at the size it
        was trained with, so the two sides of the comparison minimise one objective (the paper's Figure 5)."""
        if upload is not None:
            return GatysStyle(self.read_image(upload, "a style image")[0], "uploaded style", GATYS_OBJECTIVE)
        path = self.style_image(style) if style else None
        if path is None:
            raise UserError("Upload a style image for the optimization (no image is bundled for this style).")
        runner = self.runners.get(style_model_name(style))
        if runner is None:
            return GatysStyle(load_image(path), style, GATYS_OBJECTIVE)
        return GatysStyle(load_image(path), style, *network_objective(runner.config))

    @_long_job
    def gatys(self, content: torch.Tensor, style: GatysStyle, size: int, iterations: int,
              preserve_color: bool = False) -> Iterator[Progress]:
        """Gatys et al. with the paper's loss network and layers, streaming progress."""
        network = self.loss_network()
        settings = GatysSettings(iterations=iterations, objective=style.objective,
                                 report_every=max(1, iterations // 60), preserve_color=preserve_color)
        content = resize_longer_side(content, size)
        style_image = resize_longer_side(style.image, style.size or max(size, 256))
        yield from run(content, style_image, network, settings)

    @_long_job
    def reconstruct(
        self, image: torch.Tensor, layer: str, mode: str, size: int, iterations: int,
    ) -> Iterator[Progress]:
        """The paper's Figure 3 with the app's loss network (`perceptual_models.gatys.reconstruct`)."""
        yield from reconstruct(image, layer, mode, self.loss_network(), size, iterations)

    # --- super-resolution -----------------------------------------------------------------

    def sr_methods(self, scale: int) -> list[str]:
        """The SR methods that have a loaded model at `scale` (bicubic needs none), in the paper's order."""
        return [m for m in SR_METHODS if m == "bicubic" or sr_model_name(m, scale) in self.runners]

    @_long_job
    def upscale(
        self, image: torch.Tensor, scale: int, is_high_res: bool, degradation: str,
    ) -> Iterator[SRStep | SRComparison]:
        """Every SR method that has a model at `scale` on the same low-resolution input, with PSNR/SSIM
        when the original is known. Yields an `SRStep` before each step (a method, its metrics), then
        the `SRComparison`."""
        notes = []
        if is_high_res:
            original = crop_to_multiple(image, scale)
            if min(original.shape[-2:]) < 8 * scale:
                raise UserError(f"For x{scale} the high-resolution image needs at least {8 * scale} px per side.")
            low_res = degrade(original, scale, DEGRADATIONS[degradation])
        else:
            original, low_res = None, image
            if max(image.shape[-2:]) * scale > MAX_SR_OUTPUT_SIDE:
                low_res = resize_longer_side(image, MAX_SR_OUTPUT_SIDE // scale)
                notes.append(f"The low-resolution input was downscaled to {low_res.shape[-1]}x{low_res.shape[-2]} "
                             f"so that the x{scale} output stays within {MAX_SR_OUTPUT_SIDE} px.")
        methods = self.sr_methods(scale)
        left_out = [SR_LABELS[m] for m in SR_METHODS if m not in methods]
        if left_out:
            names = " or ".join(f"“{label}”" for label in left_out)
            notes.append(f"No {names} model is available for x{scale}, so the comparison leaves "
                         f"{'it' if len(left_out) == 1 else 'them'} out.")
        comparison = SRComparison(low_res, original, note=" ".join(notes))
        if original is not None:
            start = time.perf_counter()
            reference = Reference(original, border=scale)  # the original's share of the metrics, once
            comparison.metrics_seconds = time.perf_counter() - start
        per_method = 2 if original is not None else 1
        total = len(methods) * per_method
        for index, method in enumerate(methods):
            label, counter = SR_LABELS[method], f"(method {index + 1} of {len(methods)})"
            yield SRStep(index * per_method, total, f"{label} {counter}")
            runner = self.runners[sr_model_name(method, scale)] if method != "bicubic" else None
            out, seconds = upscale(low_res, method, scale, runner)
            result = SRResult(method, quantize(out), seconds)  # as an 8-bit file holds it, as in evaluate-sr
            comparison.results.append(result)
            if original is not None:
                yield SRStep(index * per_method + 1, total, f"PSNR and SSIM of {label} {counter}")
                start = time.perf_counter()
                result.psnr, result.ssim = reference.psnr_ssim(result.image)
                result.metrics_seconds = time.perf_counter() - start
                comparison.metrics_seconds += result.metrics_seconds
        yield comparison


def origin_in_words(origin: str) -> str:
    """A resolver's origin ("bundled", "hub repo@rev", "file /path", ...) as the page says it, without paths."""
    kind, _, rest = origin.partition(" ")
    if kind == "hub":
        return f"Hub {rest.removeprefix('cache ')}" + (" (cached)" if rest.startswith("cache ") else "")
    if kind == "local":
        return f"folder set by {hub.LOCAL_DIR_ENV}"
    if kind == "file":
        return f"file set by {hub.VGG_WEIGHTS_ENV}"
    if kind == "torchvision":
        return "torchvision download"
    return origin if origin in ("bundled", hub.TRAINED_HERE) else "elsewhere (see the server log)"


def _unavailable_in_words(exc: Exception) -> str:
    """Why a model is unavailable, for the page; the exception itself (with paths) goes to the log."""
    if isinstance(exc, hub.IntegrityError):
        return "the Hub's file does not match its manifest"
    if isinstance(exc, hub.WeightsUnavailable) and not isinstance(exc, UnreadableWeights):
        return "no weights for it (not trained, or not in the Hub repo or the bundled copy)"
    return "its weights file could not be read (the server log says why)"


def _short(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:297] + "..."
