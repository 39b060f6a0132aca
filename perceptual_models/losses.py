"""The paper's losses, shared by Gatys optimisation and by network training.

- feature reconstruction: ||phi_j(y) - phi_j(y_c)||^2 / (C_j H_j W_j)
- style reconstruction: sum_j w_j ||G_j(y) - G_j(y_s)||_F^2, with G_j = phi phi^T / (C_j H_j W_j)
- pixel: ||y - y_c||^2 / (C H W)
- total variation: mean squared difference of neighbouring pixels (a smoothness prior)
All are averaged over the batch. Images are RGB in [0, 1] throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from .errors import ConfigError
from .vgg import LossNetwork, check_layers

PAPER_CONTENT_LAYERS = ("relu2_2",)
PAPER_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C*H*W (paper eq. 3)."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)  # fp32 even under autocast: sums of H*W products
    return flat @ flat.transpose(1, 2) / (c * h * w)


def feature_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distance normalised by C*H*W, averaged over the batch."""
    return (output - target).pow(2).mean()


def style_loss(output_gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance between Gram matrices, averaged over the batch."""
    return (output_gram - target_gram).pow(2).sum(dim=(1, 2)).mean()


def pixel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's l_pixel: the feature loss taken on the pixels themselves (normalised by C*H*W)."""
    return feature_loss(output, target)


def stability_loss(network: nn.Module, inputs: torch.Tensor, output: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean squared change of the output when the input gets Gaussian noise of std `sigma` (Gupta et al.
    2017, "Characterizing and improving stability in neural style transfer"): a still scene through a
    noisy camera then stays still. Costs a second pass of the network; needs no optical flow."""
    noisy = inputs + sigma * torch.randn_like(inputs)
    return (network(noisy).float() - output).pow(2).mean()


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation regulariser: mean squared difference of horizontal and vertical neighbours."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


@dataclass(frozen=True)
class StyleObjective:
    """The style-transfer objective (paper eq. 5-6): what Gatys et al. optimise, what the style
    networks are trained on and what their model configs record (the "task" dict's keys).

    The defaults are the style networks' (for our loss scales: caffe VGG features, Gram / CHW, TV as
    a mean): faces and buildings stay recognisable, with the painting's strokes and palette.
    """

    content_layers: tuple[str, ...] = PAPER_CONTENT_LAYERS
    style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS
    content_weight: float = 1.0
    style_weight: float = 5e-5
    tv_weight: float = 1e5

    @property
    def layers(self) -> tuple[str, ...]:
        """Every loss-network layer the objective reads (load the network with these)."""
        return (*self.content_layers, *self.style_layers)

    def validate(self, arch: str = "vgg16") -> None:
        """Raise ConfigError for weights or layers that cannot work."""
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}.")
        check_layers(self.layers, arch)

    def balanced(self, network: LossNetwork, style_image: torch.Tensor, balance: float) -> StyleObjective:
        """This objective with style weight = balance / ||G(style image)||, the norm of the painting's
        Gram matrices over the style layers (sqrt of sum_j ||G_j||_F^2).

        One fixed weight pulls far harder towards a high-contrast painting (mosaic: ||G|| = 2.5e5)
        than towards a soft one (udnie: 6.7e4). Dividing by ||G|| gives paintings a like balance of
        photo and style; dividing by ||G||^2, the loss's own scale, over-corrects (udnie posterised the
        photos). Measured in docs/training-notes.md: the recipe.
        """
        if balance <= 0:
            raise ConfigError(f"The style balance must be > 0, got {balance}.")
        with torch.no_grad():
            features = network(style_image)
            energy = sum(float(gram_matrix(features[layer]).pow(2).sum()) for layer in self.style_layers)
        return replace(self, style_weight=balance / math.sqrt(energy))

    def make_loss(self, network: LossNetwork) -> PerceptualLoss:
        return PerceptualLoss(network, self.content_layers, self.style_layers, content_weight=self.content_weight,
                              style_weight=self.style_weight, tv_weight=self.tv_weight)

    def to_dict(self) -> dict:
        """The keys and order model configs have always had in their "task" dict."""
        return {"content_weight": self.content_weight, "style_weight": self.style_weight,
                "tv_weight": self.tv_weight, "content_layers": list(self.content_layers),
                "style_layers": list(self.style_layers)}

    @classmethod
    def from_dict(cls, values: dict) -> StyleObjective:
        """From a model config's "task" dict (other keys ignored; a missing one takes the default)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})


@dataclass
class Targets:
    """What an output is compared against: the content (or high-res) image and its features."""

    image: torch.Tensor | None
    features: dict[str, torch.Tensor]


class PerceptualLoss(nn.Module):
    """Weighted sum of feature, style, pixel and TV losses, with per-term values for logging.

    The style target is set once (`set_style`); content targets come with each call, so the
    same object serves Gatys (fixed content) and training (a new batch each step).
    """

    def __init__(
        self,
        network: LossNetwork | None,
        content_layers: Sequence[str] = PAPER_CONTENT_LAYERS,
        style_layers: Sequence[str] = PAPER_STYLE_LAYERS,
        content_weight: float = 1.0,
        style_weight: float = 0.0,
        tv_weight: float = 0.0,
        pixel_weight: float = 0.0,
    ) -> None:
        super().__init__()
        weights = {"content": content_weight, "style": style_weight, "tv": tv_weight, "pixel": pixel_weight}
        negative = [name for name, value in weights.items() if value < 0]
        if negative:
            raise ConfigError(f"Loss weights must be >= 0; got negative {', '.join(negative)} weight.")
        if not any(weights.values()):
            raise ConfigError("All loss weights are zero: nothing to optimise.")
        self.content_layers = tuple(content_layers) if content_weight else ()
        self.style_layers = tuple(style_layers) if style_weight else ()
        if (self.content_layers or self.style_layers) and network is None:
            raise ConfigError("Feature and style losses need a loss network.")
        if network is not None and (self.content_layers or self.style_layers):
            check_layers((*self.content_layers, *self.style_layers), network.arch, network)
        self.network = network
        self.weights = weights
        self.style_grams: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_style(self, style_image: torch.Tensor) -> None:
        """Compute and keep the Gram matrices of the style image (once per style)."""
        if not self.style_layers:
            return
        features = self.network(style_image)
        self.style_grams = {layer: gram_matrix(features[layer]) for layer in self.style_layers}

    @torch.no_grad()
    def targets(self, image: torch.Tensor) -> Targets:
        """Content features of `image` (no gradient), plus the image itself for the pixel loss."""
        features = {}
        if self.content_layers:
            features = self.network(image, self.content_layers)
        return Targets(image if self.weights["pixel"] else None, features)

    def forward(self, output: torch.Tensor, targets: Targets) -> dict[str, torch.Tensor]:
        """{'total', 'content', 'style', 'tv', 'pixel'}: weighted total and unweighted terms."""
        zero = output.new_zeros(())
        terms = {"content": zero, "style": zero, "tv": zero, "pixel": zero}
        if self.content_layers or self.style_layers:
            features = self.network(output)
            for layer in self.content_layers:
                terms["content"] = terms["content"] + feature_loss(features[layer], targets.features[layer])
            if self.style_layers:
                if not self.style_grams:
                    raise RuntimeError("Call set_style(style_image) before computing the style loss.")
                for layer in self.style_layers:  # the paper's sum over layers, each weighted 1
                    terms["style"] = terms["style"] + style_loss(gram_matrix(features[layer]), self.style_grams[layer])
        if self.weights["tv"]:
            terms["tv"] = tv_loss(output)
        if self.weights["pixel"]:
            terms["pixel"] = pixel_loss(output, targets.image)
        terms["total"] = sum(self.weights[name] * terms[name] for name in self.weights)
        return terms
