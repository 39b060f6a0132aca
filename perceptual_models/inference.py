"""Run the trained networks: load once, run fast, time honestly.

`Runner` wraps a network for inference on one device. Its "fast" precision (the default for the
app and CLI) uses bf16 autocast and channels_last where the hardware supports them; "exact" is
the plain fp32 reference path used by the tests and by evaluation.
"""

from __future__ import annotations

import functools
import math
import platform
import time
from collections.abc import Iterable

import torch
from torch import nn

from .errors import ConfigError
from .hub import HubSettings
from .image_io import resize
from .networks import from_pretrained
from .rewrites import rewrite_for_inference

SR_LABELS = {"bicubic": "Bicubic", "srcnn": "SRCNN-style", "pixel": "Ours, l_pixel", "feat": "Ours, l_feat"}
SR_METHODS = tuple(SR_LABELS)  # in the order the tables show them
SR_NETWORKS = SR_METHODS[1:]  # the trained ones: bicubic needs no weights
SR_SCALES = (4, 8)  # the paper's factors
PRECISIONS = ("fast", "exact")  # see Runner


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; an explicit 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here.")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """Human-readable device for timing tables: the GPU's name or the CPU model and threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU ({cpu}, {torch.get_num_threads()} threads)"


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX), so bf16 is a speed-up."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def style_model_name(style: str) -> str:
    """Hub name of a style's network: starry_night -> style/starry_night."""
    return f"style/{style}"


def style_names(model_names: Iterable[str]) -> list[str]:
    """The styles among model names (style/starry_night -> starry_night), in their order."""
    return [name.removeprefix("style/") for name in model_names if name.startswith("style/")]


def sr_model_name(method: str, scale: int) -> str:
    """Hub name of an SR method's weights: srcnn/x4, sr/x4_pixel, sr/x8_feat ..."""
    if method == "srcnn":
        return f"srcnn/x{scale}"
    if method in ("pixel", "feat"):
        return f"sr/x{scale}_{method}"
    raise ConfigError(f"No trained model for SR method {method!r}.")


def _call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


# Each architecture and size branch is one more graph of the one compiled function: allow plenty.
RECOMPILE_LIMIT = 64


@functools.lru_cache(maxsize=1)
def _compiled_call():
    """One compiled function for every model: weights are graph inputs, so all style networks
    share one graph and only the first compile of an architecture costs time.

    The recompile limit travels with the call: torch.compile's settings are per thread, and the app
    compiles and serves in worker threads, where a limit set once at start-up read torch's default
    of 8 (seen: with batch- and instance-norm networks bundled, a first request hit it and took 52 s)."""
    import torch._dynamo

    return torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT)(torch.compile(_call, dynamic=True))


class Runner:
    """A network in eval mode on one device, with a fast (bf16/channels_last/compiled) or exact path.

    "fast" runs the network rewritten with better-shaped convolutions (`rewrites.py`), bf16 autocast
    where the hardware has bf16 units, and channels_last (the process-wide settings that help it, such
    as the allocator and cuDNN autotuning, are `runtime.configure`'s). `compile()` additionally switches to a torch.compile'd graph (worth it for a server, not
    for one image).
    "exact" is plain fp32 eager PyTorch: the reference the fast path is checked against.
    """

    def __init__(self, model: nn.Module, config: dict, device: torch.device, precision: str = "fast") -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
        self.config, self.device, self.precision = config, device, precision
        self.use_bf16 = precision == "fast" and (device.type == "cuda" or cpu_has_bf16())
        self.channels_last = precision == "fast"
        if precision == "fast":
            model = rewrite_for_inference(model)
        self.model = model.eval().requires_grad_(False).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.compiled = False
        self._call = _call

    @classmethod
    def load(cls, name_or_path: str, device: torch.device, precision: str = "fast",
             settings: HubSettings | None = None) -> Runner:
        """A file, or a model name looked up with `settings` (see `networks.from_pretrained`)."""
        model, config = from_pretrained(name_or_path, settings)
        return cls(model, config, device, precision)

    def compile(self) -> None:
        """Compile for dynamic sizes (tens of seconds on a CPU the first time), then use it.

        The warm-up sizes cover both branches of the networks' size handling (multiple of 4 or not).
        """
        if self.precision != "fast" or self.compiled:
            return
        compiled = _compiled_call()
        for height, width in ((64, 64), (63, 65)):
            # Made inside inference_mode like every real input: a tensor from outside carries another
            # dispatch key, the graph guards on it, and each first real call recompiled (seconds).
            with torch.inference_mode(), self._autocast():
                x = self._prepare(torch.rand(1, 3, height, width))
                torch._dynamo.mark_dynamic(x, 2)
                torch._dynamo.mark_dynamic(x, 3)
                compiled(self.model, x)
        self._call, self.compiled = compiled, True

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        # Always a copy made here, inside inference_mode: a photo's HWC array seen as NCHW is already
        # channels_last, and handed through it carried another dispatch key, so the compiled graph
        # recompiled inside a visitor's first 512 px request (7 s). The copy: under 1 ms at 512 px.
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        return image.to(self.device, non_blocking=True, copy=True, memory_format=memory_format)

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] on any device -> output in [0, 1] on the CPU, float32."""
        with self._autocast():
            y = self._call(self.model, self._prepare(image))
        return y.float().clamp(0, 1).cpu().contiguous()

    def timed(self, image: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Output and seconds, GPU synchronised before each clock read."""
        synchronize(self.device)
        start = time.perf_counter()
        out = self(image)
        synchronize(self.device)
        return out, time.perf_counter() - start


def bicubic_upscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The bicubic baseline, PIL-equivalent, rounded like an 8-bit image."""
    return resize(image, (image.shape[-2] * scale, image.shape[-1] * scale)).clamp(0, 1)


# SR networks run on horizontal strips of at most this many output pixels. A whole 2048x2048 x4
# output takes ~4.5 GB more memory on a CPU, two strips ~3 GB, at the same speed; smaller strips
# cost time (their margins are computed twice).
SR_STRIP_PIXELS = 2048 * 1024
# Low-resolution rows of context above and below a strip, dropped from its output: more than the
# SR networks' receptive radius (SRNet: ~14 px from its 9x9 head, eight 3x3 convolutions and the
# upsampling and 9x9 tail at high resolution), so the strips join without seams.
SR_STRIP_MARGIN = 16


def _in_strips(runner: Runner, image: torch.Tensor, scale: int, strip_pixels: int) -> torch.Tensor:
    """The network's output, computed strip by strip: the same pixels as one pass, with less memory."""
    height, width = image.shape[-2:]
    count = math.ceil(height * width * scale * scale / strip_pixels)
    if count <= 1:
        return runner(image)
    rows = math.ceil(height / count)
    out = torch.empty(1, 3, height * scale, width * scale)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        start, stop = max(0, top - SR_STRIP_MARGIN), min(height, bottom + SR_STRIP_MARGIN)
        strip = runner(image[..., start:stop, :])
        out[..., top * scale : bottom * scale, :] = strip[..., (top - start) * scale : (bottom - start) * scale, :]
    return out


def upscale(
    image: torch.Tensor, method: str, scale: int, runner: Runner | None = None, strip_pixels: int = SR_STRIP_PIXELS,
) -> tuple[torch.Tensor, float]:
    """Any SR method on a low-resolution image -> (output, seconds); trained methods need `runner`."""
    if method == "bicubic":
        start = time.perf_counter()
        return bicubic_upscale(image, scale), time.perf_counter() - start
    if runner is None:
        raise ConfigError(f"Method {method!r} needs a loaded model.")
    synchronize(runner.device)
    start = time.perf_counter()
    out = _in_strips(runner, image, scale, strip_pixels)  # on the CPU: synchronised
    return out, time.perf_counter() - start
