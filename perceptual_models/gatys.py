"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2015): the paper's slow baseline.

The output image itself is optimised to minimise a `StyleObjective`
    content_weight * feature loss + style_weight * style loss + tv_weight * TV
with the same loss network and `PerceptualLoss` the feed-forward networks are trained with.
`run` is a generator of `Progress` events so a UI can stream intermediate images and stop early.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch

from .controls import keep_color
from .errors import ConfigError
from .image_io import cap_pixels, resize_longer_side, rgb_to_ycbcr
from .inference import synchronize
from .losses import PAPER_STYLE_LAYERS, StyleObjective
from .vgg import LossNetwork, check_layers

OPTIMIZERS = ("lbfgs", "adam")
OVERSHOOT = 10.0  # a loss this many times the best so far means L-BFGS's last step overshot: go back
# The networks' objective with a 6x stronger style term, kept from before the objective had one
# home so the app's optimizations look as they did: the optimisation starts from the content image
# (content loss zero), and this weight sets how far it moves toward the painting in a few hundred
# L-BFGS steps (the networks start from nothing). Compare the two with `train.compare_gatys`,
# which scores both on the network's own objective.
GATYS_OBJECTIVE = StyleObjective(style_weight=3e-4)


def network_objective(config: dict) -> tuple[StyleObjective, int]:
    """The objective a style network was trained on and the longer side its painting had: what the
    optimization beside it minimises, so that both sides of the paper's Figure 5 answer to one objective."""
    task = config["task"]
    return StyleObjective.from_dict(task), int(task["style_size"])


@dataclass
class GatysSettings:
    """Defaults give recognisable content with the painting's strokes and palette at 256-512 px."""

    iterations: int = 300
    optimizer: str = "lbfgs"
    objective: StyleObjective = GATYS_OBJECTIVE
    init: str = "content"
    seed: int = 0
    preserve_color: bool = False
    adam_lr: float = 0.02
    report_every: int = 10
    max_pixels: int = 1024 * 1024

    def validate(self, arch: str = "vgg16") -> None:
        """Raise ConfigError with a clear message for settings that cannot work."""
        if self.iterations < 1:
            raise ConfigError(f"iterations must be at least 1, got {self.iterations}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.init not in ("content", "noise"):
            raise ConfigError(f"init must be 'content' or 'noise', got {self.init!r}.")
        if self.report_every < 1:
            raise ConfigError("report_every must be at least 1.")
        self.objective.validate(arch)

    @property
    def layers(self) -> tuple[str, ...]:
        return self.objective.layers

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Progress:
    iteration: int
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    losses: dict[str, float]  # total, content, style, tv (unweighted terms, weighted total)
    elapsed: float  # seconds since the optimisation started (GPU synchronised)
    done: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def _luminance_as_rgb(image: torch.Tensor) -> torch.Tensor:
    return rgb_to_ycbcr(image)[:, :1].expand(-1, 3, -1, -1)


def _match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style luminance shifted/scaled to the content's mean and std (Gatys et al. 2016, colour)."""
    style_y, content_y = rgb_to_ycbcr(style)[:, :1], rgb_to_ycbcr(content)[:, :1]
    matched = (style_y - style_y.mean()) / (style_y.std() + 1e-6) * content_y.std() + content_y.mean()
    return matched.expand(-1, 3, -1, -1)


def run(
    content: torch.Tensor,
    style: torch.Tensor,
    network: LossNetwork,
    settings: GatysSettings | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Progress]:
    """Optimise an image; yields a `Progress` every `report_every` iterations and a final one.

    `content` and `style` are (1, 3, H, W) RGB in [0, 1]; the output has the content's size
    (after the pixel cap). `should_stop` is polled before every iteration.
    """
    settings = settings or GatysSettings()
    settings.validate(network.arch)
    check_layers(settings.layers, network.arch, network)
    device = next(network.parameters()).device
    content, _ = cap_pixels(content, settings.max_pixels)
    style, _ = cap_pixels(style, settings.max_pixels)
    content, style = content.to(device), style.to(device)
    photo = content  # whose colours the output takes with preserve_color
    if settings.preserve_color:
        style = _match_luminance(style, content)
        content = _luminance_as_rgb(content)

    loss_fn = settings.objective.make_loss(network)
    loss_fn.set_style(style)
    targets = loss_fn.targets(content)

    generator = torch.Generator().manual_seed(settings.seed)
    if settings.init == "content":
        start = content.clone()
    else:
        start = torch.rand(content.shape, generator=generator).to(device)
    # torch's L-BFGS makes its first step -g/|g|_1: a total change of 1 spread over every pixel,
    # too small to measure curvature in float32, so the second step overshoots by orders of
    # magnitude. Optimising x / k instead makes that first step move each pixel by ~0.01.
    k = 0.01 * start.numel() if settings.optimizer == "lbfgs" else 1.0
    # Contiguous: a decoded photo is an HWC array seen as NCHW, and L-BFGS flattens the gradient with view().
    variable = (start / k).contiguous().requires_grad_(True)
    if settings.optimizer == "lbfgs":
        # One function evaluation per step() call, so progress and cancellation are per iteration.
        optimizer = torch.optim.LBFGS([variable], lr=1.0, max_iter=1, history_size=100)
    else:
        optimizer = torch.optim.Adam([variable], lr=settings.adam_lr)

    def to_output(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().clamp(0, 1)
        return (keep_color(x, photo) if settings.preserve_color else x).cpu()

    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        losses = loss_fn(variable * k, targets)
        losses["total"].backward()
        last.update(losses)
        return losses["total"]

    history: list[dict[str, float]] = []
    synchronize(device)
    started = time.perf_counter()
    iteration = 0
    best_total, best, best_values = math.inf, variable.detach().clone(), {}
    for iteration in range(1, settings.iterations + 1):
        if should_stop is not None and should_stop():
            iteration -= 1
            break
        point = variable.detach().clone()  # where this iteration's loss is taken; the step moves on from it
        optimizer.step(closure)
        values = {name: float(last[name].detach()) for name in ("total", "content", "style", "tv")}
        if settings.optimizer == "adam":
            with torch.no_grad():
                variable.clamp_(0, 1)
        elif not values["total"] < OVERSHOOT * best_total:  # also inf and NaN
            # The previous step overshot: L-BFGS's curvature estimate can be far off (a grey photo at 256 px went
            # to inf by its third step). Back to the best point, with the quasi-Newton memory started afresh.
            with torch.no_grad():
                variable.copy_(best)
            optimizer.state.clear()
            values = best_values
        if values["total"] < best_total:
            best_total, best, best_values = values["total"], point, values
        history.append({"iteration": iteration, **values})
        if iteration % settings.report_every == 0 and iteration < settings.iterations:
            synchronize(device)
            yield Progress(iteration, to_output(variable * k), values, time.perf_counter() - started, False, history)
    synchronize(device)
    elapsed = time.perf_counter() - started
    values = history[-1] if history else {}
    yield Progress(iteration, to_output(variable * k), {name: v for name, v in values.items() if name != "iteration"},
                   elapsed, True, history)


def transfer(
    content: torch.Tensor, style: torch.Tensor, network: LossNetwork, settings: GatysSettings | None = None
) -> Progress:
    """Run to the end and return the final `Progress` (image, losses, time, history)."""
    *_, final = run(content, style, network, settings)
    return final


def reconstruct(
    image: torch.Tensor, layer: str, mode: str, network: LossNetwork, size: int, iterations: int,
) -> Iterator[Progress]:
    """The paper's Figure 3: from noise, an image whose `layer` features (`mode` "feature") or Gram
    matrices up to `layer` (`mode` "style") match those of `image` at `size` px (longer side)."""
    if mode == "feature":
        objective = StyleObjective(content_layers=(layer,), style_weight=0.0, tv_weight=0.0)
    elif mode == "style":
        if layer not in PAPER_STYLE_LAYERS:
            raise ConfigError(f"Style reconstruction takes one of {', '.join(PAPER_STYLE_LAYERS)}, not {layer!r}.")
        layers = PAPER_STYLE_LAYERS[: PAPER_STYLE_LAYERS.index(layer) + 1]
        objective = StyleObjective(style_layers=layers, content_weight=0.0, style_weight=1.0, tv_weight=0.0)
    else:
        raise ConfigError(f"mode must be 'feature' or 'style', got {mode!r}.")
    settings = GatysSettings(iterations=iterations, objective=objective, init="noise",
                             report_every=max(1, iterations // 40))
    target = resize_longer_side(image, size)
    yield from run(target, target, network, settings)
