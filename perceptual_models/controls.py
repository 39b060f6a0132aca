"""What a trained style network never had: controls applied around its one pass.

A network bakes its style in (the paper trains one network per style, with batch or instance
normalisation and no style input), so each control here works on the network's input or output:

    preserve_color  the output's luminance with the photo's chroma (Gatys et al. 2016, "Preserving
                     color in neural artistic style transfer"), the same transform Gatys uses here
    strength         from the photo (0) to the network's output (1), a contrast-keeping blend
    stroke           the network runs on a copy scaled by 1/stroke, brought back to the asked size:
                     2 paints strokes twice as large, 0.5 half as large (and costs 4x)
    mix_style, mix   a second network's output, blended by the same blend as strength (0: the
                     first style, 1: the second); mixing inside the network would need conditional
                     normalisation, which our networks do not have
    steady           (video only) each output blended with the previous one where the input did not
                     change, so static parts stop flickering

Defaults change nothing: `stylize` then returns the network's output itself. docs/controls.md has
the measurements behind the choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .image_io import check_side, resize, rgb_to_ycbcr, ycbcr_to_rgb

Network = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [0, 1] -> the same shape, stylised

STROKE_RANGE = (0.5, 2.0)  # beyond 2 the network sees too few pixels; below 0.5 it costs over 4x
# Steady video: a still pixel keeps this much of the previous output (the rest is the new one), and
# a pixel whose input changed by STEADY_CHANGE or more (3x3 mean of the signed frame difference,
# averaged over RGB) takes the new output alone. Chosen with `python -m demo.tools.bench_live --steady`.
STEADY_KEEP = 0.8
STEADY_CHANGE = 6 / 255


@dataclass(frozen=True)
class StyleControls:
    """The controls as one value; the defaults give the network's output unchanged."""

    preserve_color: bool = False
    strength: float = 1.0
    stroke: float = 1.0
    mix_style: str | None = None  # a style name or model path: the caller loads its network
    mix: float = 0.0
    steady: bool = False  # video and live streams only: a photo has no previous frame

    def validate(self) -> None:
        """ConfigError in words for values that cannot work (an API caller can send anything)."""
        if not 0 <= self.strength <= 1:
            raise ConfigError(f"The strength goes from 0 (the photo) to 1 (the full style), not {self.strength:g}.")
        if not STROKE_RANGE[0] <= self.stroke <= STROKE_RANGE[1]:
            raise ConfigError(f"The stroke size goes from {STROKE_RANGE[0]:g} to {STROKE_RANGE[1]:g}, "
                              f"not {self.stroke:g}.")
        if not 0 <= self.mix <= 1:
            raise ConfigError(f"The mix goes from 0 (the first style) to 1 (the second), not {self.mix:g}.")
        if self.mix > 0 and not self.mix_style:
            raise ConfigError("Pick a second style to mix with, or set the mix to 0.")

    @property
    def mixes(self) -> bool:
        """Whether the second style's network runs at all."""
        return self.mix > 0

    def without_steady(self) -> StyleControls:
        """The settings a still image sees (what a steady stream starts afresh on)."""
        return dataclasses.replace(self, steady=False)

    def describe(self) -> str:
        """The settings that differ from the defaults, in words for a timing table ('' for none)."""
        parts = []
        if self.mixes:
            parts.append(f"{self.mix:.0%} {self.mix_style}")
        if self.strength != 1:
            parts.append(f"strength {self.strength:g}")
        if self.stroke != 1:
            parts.append(f"stroke {self.stroke:g}x")
        if self.preserve_color:
            parts.append("photo's colours")
        if self.steady:
            parts.append("steady")
        return ", ".join(parts)


def keep_color(output: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The output's luminance (its strokes) with the photo's chroma (BT.601 YCbCr), at the output's size."""
    chroma = rgb_to_ycbcr(resize(photo, tuple(output.shape[-2:])))[:, 1:]
    return ycbcr_to_rgb(torch.cat([rgb_to_ycbcr(output)[:, :1], chroma], dim=1)).clamp(0, 1)


def blend(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """`a` at 0, `b` at 1 (exactly: the tensors themselves), in between a linear blend whose per-channel
    contrast is put back to the blend of the two images' contrasts.

    A plain blend of two unrelated images has less contrast than either (their strokes and edges do
    not line up, so they partly cancel): at 0.5 the photo and a painting looked washed out, measured
    in docs/controls.md."""
    if weight == 0:
        return a
    if weight == 1:
        return b
    mixed = torch.lerp(a, b, weight)
    dims = (-2, -1)
    mean = mixed.mean(dims, keepdim=True)
    target = torch.lerp(a.std(dims, keepdim=True), b.std(dims, keepdim=True), weight)
    return (mean + (mixed - mean) * (target / mixed.std(dims, keepdim=True).clamp(min=1e-4))).clamp(0, 1)


def stroke_size(height: int, width: int, stroke: float) -> tuple[int, int]:
    """The (height, width) the network runs at for an output of `height` x `width`."""
    return max(1, round(height / stroke)), max(1, round(width / stroke))


def at_stroke(network: Network, photo: torch.Tensor, stroke: float) -> torch.Tensor:
    """The network run on `photo` scaled by 1/stroke and resized back (bicubic, our best upsampler for
    any factor: the SR networks do x4 and x8 only): larger strokes above 1."""
    if stroke == 1:
        return network(photo)
    height, width = photo.shape[-2:]
    scaled = stroke_size(height, width, stroke)
    check_side(*scaled, f"At stroke size {stroke:g}x the network's input")
    return resize(network(resize(photo, scaled)), (height, width)).clamp(0, 1)


def stylize(photo: torch.Tensor, network: Network, controls: StyleControls,
            mix_network: Network | None = None) -> torch.Tensor:
    """The output at `photo`'s size with the controls applied; `mix_network` is `controls.mix_style`'s.

    The second network runs only when the mix is above 0, the first only below 1, neither at
    strength 0 (the photo itself)."""
    controls.validate()
    if controls.mixes and mix_network is None:
        raise ConfigError(f"Mixing needs the network of {controls.mix_style!r}.")
    if controls.strength == 0:
        return photo
    styled = at_stroke(network, photo, controls.stroke) if controls.mix < 1 else None
    if controls.mixes:
        other = at_stroke(mix_network, photo, controls.stroke)
        styled = other if styled is None else blend(styled, other, controls.mix)
    styled = blend(photo, styled, controls.strength)
    return keep_color(styled, photo) if controls.preserve_color else styled


@dataclass
class SteadyState:
    """One stream's previous input frame and output; `setting` says what they were made with."""

    setting: object = None
    frame: torch.Tensor | None = None
    output: torch.Tensor | None = None

    def following(self, setting: object) -> SteadyState:
        """This state, or a fresh one when the setting (style, size, controls) changed."""
        return self if setting == self.setting else SteadyState(setting)


def steady(frames: torch.Tensor, outputs: torch.Tensor, state: SteadyState, keep: float = STEADY_KEEP,
           change: float = STEADY_CHANGE) -> torch.Tensor:
    """Each output blended with the previous one where its input frame did not change, in order.

    The frame difference is averaged over RGB and a 3x3 neighbourhood before its size is taken, so
    camera noise (which averages out) reads as still and motion (which does not) as change; `state`
    is updated in place."""
    steadied = []
    for frame, output in zip(frames.split(1), outputs.split(1), strict=True):
        if state.frame is not None and state.frame.shape == frame.shape:
            moved = F.avg_pool2d((frame - state.frame).mean(1, keepdim=True), 3, 1, 1, count_include_pad=False)
            output = torch.lerp(output, state.output, keep * (1 - moved.abs() / change).clamp(min=0))
        state.frame, state.output = frame, output
        steadied.append(output)
    return torch.cat(steadied)


def video_network(network: Network, controls: StyleControls, mix_network: Network | None = None,
                  state: SteadyState | None = None) -> Network:
    """A batch of frames -> their outputs with the controls, steadied in order when asked (`state`
    carries the previous frame from one call to the next: a stream's, a video file's)."""
    if controls.steady and state is None:
        state = SteadyState()

    def run(frames: torch.Tensor) -> torch.Tensor:
        outputs = stylize(frames, network, controls.without_steady(), mix_network)
        return steady(frames, outputs, state) if controls.steady else outputs

    return run
