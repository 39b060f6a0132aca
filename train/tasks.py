"""What differs between the three trainers: the network, the loss, and how a batch becomes
(network input, target). Everything else lives in the one loop in `train.loop`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from perceptual_models.errors import ConfigError
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import degrade, load_image, resize_longer_side
from perceptual_models.losses import PerceptualLoss, StyleObjective
from perceptual_models.networks import PAPER_TANH_SCALE
from perceptual_models.vgg import load_loss_network

STYLE_ITERATIONS = 40_000  # the paper's style networks: 40k iterations of batch 4 at 256 px
# Style runs save a moving average of the weights. Measured on udnie (CPU, 128 px): the mean of the weights of
# steps 2100-2400 scored 8.1e4 on Set5 at 256 px, step 2400's 9.4e4; the last step's weights rise and fall
# (8.6e4, 7.6e4, 8.5e4 at 2800-3500).
STYLE_EMA_DECAY = 0.999


@dataclass
class StyleTask:
    """Feed-forward style transfer: content = the photo itself, style = one painting."""

    style_image: str
    image_size: int = 256
    style_size: int = 512
    objective: StyleObjective = field(default_factory=StyleObjective)
    # The trainer's default recipe, and the app's training jobs' (docs/training-notes.md: the training-recipe
    # experiments): the style weight set per painting, balance / the norm of its Gram matrices
    # (`StyleObjective.balanced`; candy gets 1.5e-5), and batch norm, the paper's, which cannot paint
    # instance norm's flat black or white blotches. None: the objective's fixed weight. The bundled networks
    # went on at balance 20 with a stability term (their configs; docs/results.md: paintings, not filters).
    style_balance: float | None = 2.8
    norm: str = "batch"
    decoder_norm: str = "none"  # instance norm here lets one spike own a channel: flat white/black blotches
    residual_norm: str | None = None  # None: `norm`
    upsample: str = "nearest-conv"
    tanh_scale: float = PAPER_TANH_SCALE  # output = 0.5 + tanh_scale * tanh(x); above 0.5 it can leave [0, 1]
    # Training-only: weight x the output's mean squared change under input noise of std stability_sigma
    # (`losses.stability_loss`). Stronger styles pass camera noise on as flicker; this keeps video steady.
    stability_weight: float = 0.0
    stability_sigma: float = 0.03
    lookup: HubSettings | None = None  # where the loss network is found (its `vgg_weights` file first)
    kind: str = field(default="style", init=False)
    rescale_crops = True  # random squares resized to image_size (SR takes exact pixel patches)

    @property
    def crop(self) -> int:
        return self.image_size

    def architecture(self) -> dict[str, Any]:
        return {"architecture": "transformer",
                "params": {"norm": self.norm, "decoder_norm": self.decoder_norm,
                           "residual_norm": self.residual_norm or self.norm, "upsample": self.upsample,
                           "tanh_scale": self.tanh_scale}}

    def make_loss(self, device: torch.device) -> tuple[PerceptualLoss, dict[str, Any]]:
        """The loss, and the settings the run records: with `style_balance`, the style weight this painting gets."""
        network = load_loss_network(self.objective.layers, device=device, settings=self.lookup)
        style = resize_longer_side(load_image(self.style_image), self.style_size).to(device)
        objective = self.objective.balanced(network, style, self.style_balance) if self.style_balance else self.objective
        loss = objective.make_loss(network)
        loss.set_style(style)
        return loss, self.settings(objective)

    def prepare(self, photos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return photos, photos

    def settings(self, objective: StyleObjective | None = None) -> dict[str, Any]:
        """What run.json and the model config record as "task" (`objective`: the one trained, default the task's)."""
        return {
            "task": self.kind, "style_image": Path(self.style_image).name, "image_size": self.image_size,
            "style_size": self.style_size, **(objective or self.objective).to_dict(),
            **({"style_balance": self.style_balance} if self.style_balance else {}),
            **({"stability_weight": self.stability_weight, "stability_sigma": self.stability_sigma}
               if self.stability_weight else {}),
        }


@dataclass
class SuperResolutionTask:
    """x4/x8 super-resolution: input = degraded patch, target = the original patch.

    loss "pixel" is the paper's l_pixel; "feat" is l_feat (relu2_2). `arch` "srcnn" gives
    the SRCNN-style baseline trained per-pixel on the same data and degradation.
    """

    scale: int = 4
    loss: str = "pixel"
    arch: str = "srnet"
    patch_size: int = 288
    blur_sigma: float = 1.0
    feature_weight: float = 1.0
    pixel_weight: float = 1.0
    tv_weight: float = 0.0  # the bundled l_feat models use 1e4
    feature_layer: str = "relu2_2"
    norm: str = "none"
    lookup: HubSettings | None = None  # where the loss network is found (its `vgg_weights` file first)
    kind: str = field(default="sr", init=False)
    rescale_crops = False
    stability_weight = 0.0  # `StyleTask.stability_weight`: not used for SR

    def __post_init__(self) -> None:
        if self.loss not in ("pixel", "feat"):
            raise ConfigError(f"SR loss must be 'pixel' or 'feat', got {self.loss!r}.")
        if self.patch_size % self.scale:
            raise ConfigError(f"--patch-size {self.patch_size} must be a multiple of the scale {self.scale}.")

    @property
    def crop(self) -> int:
        return self.patch_size

    def architecture(self) -> dict[str, Any]:
        if self.arch == "srcnn":
            return {"architecture": "srcnn", "params": {"scale": self.scale}}
        return {"architecture": "srnet", "params": {"scale": self.scale, "norm": self.norm}}

    def make_loss(self, device: torch.device) -> tuple[PerceptualLoss, dict[str, Any]]:
        """The loss, and the settings the run records."""
        if self.loss == "pixel":
            loss = PerceptualLoss(None, content_weight=0.0, pixel_weight=self.pixel_weight, tv_weight=self.tv_weight)
        else:
            network = load_loss_network([self.feature_layer], device=device, settings=self.lookup)
            loss = PerceptualLoss(network, [self.feature_layer], [], content_weight=self.feature_weight,
                                  tv_weight=self.tv_weight)
        return loss, self.settings()

    def prepare(self, photos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return degrade(photos, self.scale, self.blur_sigma), photos

    def settings(self) -> dict[str, Any]:
        settings = {
            "task": self.kind, "scale": self.scale, "loss": self.loss, "patch_size": self.patch_size,
            "degradation": (f"Gaussian blur sigma {self.blur_sigma} + " if self.blur_sigma else "")
            + f"bicubic x{self.scale} downsampling + 8-bit rounding",
            "tv_weight": self.tv_weight,
        }
        if self.loss == "feat":
            settings.update(feature_layer=self.feature_layer, feature_weight=self.feature_weight)
        else:
            settings.update(pixel_weight=self.pixel_weight)
        return settings
