"""The image transformation networks: style transfer, super-resolution, and the SRCNN baseline.

Architectures follow the paper's supplementary material (and the layout of pytorch/examples'
fast_neural_style). All take and return RGB images in [0, 1] of shape (B, 3, H, W).
A model is described by a JSON config {"architecture": ..., "params": {...}, ...training facts};
`build` makes the module from it and `from_pretrained` loads weights saved with `save_pretrained`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ConfigError, UnreadableWeights, WeightsUnavailable, refuse_pickle
from .hub import HubSettings, resolve
from .image_io import resize, rgb_to_ycbcr, ycbcr_to_rgb


class FilterResponseNorm(nn.Module):
    """Filter Response Normalisation + thresholded linear unit (Singh & Krishnan 2020).

    Divides by the per-channel mean square without subtracting a mean, so one bright spot cannot
    redefine a whole channel's statistics the way instance norm lets it ("droplet" artefacts).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nu2 = x.float().pow(2).mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(nu2 + self.eps).to(x.dtype)
        return torch.maximum(self.gamma * x + self.beta, self.tau)


NORMS = ("instance", "batch", "frn", "none")
UPSAMPLES = ("nearest-conv", "transposed")  # see Upsample


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "frn":
        return FilterResponseNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"Unknown norm {kind!r}; choose from {', '.join(NORMS)}.")


class ConvLayer(nn.Sequential):
    """Reflection padding + convolution: no dark borders from zero padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReflectionPad2d(kernel_size // 2),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride),
        )


class ConvNormReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, norm: str) -> None:
        super().__init__(
            ConvLayer(in_channels, out_channels, kernel_size, stride),
            _norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm plus identity (Gross & Wilber's block, as in the paper)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormReLU(channels, channels, 3, 1, norm),
            ConvLayer(channels, channels, 3),
            _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Sequential):
    """x2 upsampling + norm + ReLU.

    "transposed" is the paper's fractionally-strided convolution; "nearest-conv" (nearest-neighbour
    upsampling then a convolution) is what the official code later adopted: no checkerboard artefacts.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str, norm: str) -> None:
        if mode == "nearest-conv":
            layers = [nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(in_channels, out_channels, 3)]
        elif mode == "transposed":
            layers = [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)]
        else:
            raise ConfigError(f"Unknown upsample mode {mode!r}; choose {' or '.join(UPSAMPLES)}.")
        super().__init__(*layers, _norm(norm, out_channels), nn.ReLU(inplace=True))


# The authors' code outputs 150 * tanh around mid-grey on the 0-255 scale: headroom beyond [0, 255].
PAPER_TANH_SCALE = 150 / 255


def scaled_tanh(x: torch.Tensor, scale: float = PAPER_TANH_SCALE) -> torch.Tensor:
    """The paper's output layer on the [0, 1] scale: 0.5 + scale * tanh(x), clamped later for display.

    With scale 0.5 the output only reaches white or black as x -> +-inf, so bright regions push x
    deep into saturation where the gradient vanishes, which locks in white blotches (we measured
    pre-activations of 45-73 in them). With the authors' 150/255, white needs x = 1.26.
    """
    return 0.5 + scale * torch.tanh(x)


class TransformerNet(nn.Module):
    """Style transfer network: 2 downsampling convs, 5 residual blocks, 2 upsampling convs.

    `norm` is the encoder's normalisation; `residual_norm` and `decoder_norm` those of the residual
    and the two upsampling blocks (default: `norm`). Instance norm in the later blocks lets the
    network plant one strong spike that dominates a channel's statistics and comes out as a flat
    white or black blotch; "none" there removes the mechanism (docs/results.md: where the blotches
    came from).
    """

    def __init__(self, norm: str = "instance", upsample: str = "nearest-conv",
                 tanh_scale: float = PAPER_TANH_SCALE, decoder_norm: str | None = None,
                 residual_norm: str | None = None) -> None:
        super().__init__()
        decoder_norm = norm if decoder_norm is None else decoder_norm
        residual_norm = norm if residual_norm is None else residual_norm
        self.tanh_scale = tanh_scale
        self.encoder = nn.Sequential(
            ConvNormReLU(3, 32, 9, 1, norm),
            ConvNormReLU(32, 64, 3, 2, norm),
            ConvNormReLU(64, 128, 3, 2, norm),
        )
        self.residuals = nn.Sequential(*[ResidualBlock(128, residual_norm) for _ in range(5)])
        self.decoder = nn.Sequential(
            Upsample(128, 64, upsample, decoder_norm),
            Upsample(64, 32, upsample, decoder_norm),
            ConvLayer(32, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        # Two stride-2 convolutions: pad to a multiple of 4 so the output has the input's size.
        # Always padding (often by 0) and floor division instead of % keep one graph for every
        # size when compiled or exported with dynamic shapes.
        pad_h, pad_w = (height + 3) // 4 * 4 - height, (width + 3) // 4 * 4 - width
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return scaled_tanh(y[..., :height, :width], self.tanh_scale)


class SRNet(nn.Module):
    """Super-resolution network: 9x9 conv, residual blocks, log2(scale) x2 upsamplings, 9x9 conv.

    With `bicubic_skip` the network predicts a correction to the bicubic upsampling (a global
    residual, not in the paper) which trains far faster; without it the output is the paper's
    scaled tanh.
    """

    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        blocks: int = 4,
        norm: str = "none",
        upsample: str = "nearest-conv",
        bicubic_skip: bool = True,
    ) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ConfigError(f"Scale must be 2, 4 or 8, got {scale}.")
        self.scale, self.bicubic_skip = scale, bicubic_skip
        self.head = ConvNormReLU(3, channels, 9, 1, norm)
        self.residuals = nn.Sequential(*[ResidualBlock(channels, norm) for _ in range(blocks)])
        self.upsample = nn.Sequential(
            *[Upsample(channels, channels, upsample, norm) for _ in range(scale.bit_length() - 1)]
        )
        self.tail = ConvLayer(channels, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tail(self.upsample(self.residuals(self.head(x))))
        if self.bicubic_skip:
            return resize(x, (x.shape[-2] * self.scale, x.shape[-1] * self.scale)) + y
        return scaled_tanh(y)


class SRCNN(nn.Module):
    """SRCNN-style baseline (Dong et al. 2014): 9-1-5 convs with 64/32 filters on the luma channel
    of the bicubic-upsampled image; chroma is taken from bicubic, as in the original.

    It predicts the luma residual over bicubic (as VDSR later did) so it trains in a CPU budget.
    """

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            ConvLayer(1, 64, 9),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 32, 1),
            nn.ReLU(inplace=True),
            ConvLayer(32, 1, 5),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upsampled = resize(x, (x.shape[-2] * self.scale, x.shape[-1] * self.scale))
        ycbcr = rgb_to_ycbcr(upsampled)
        luma = ycbcr[:, :1] + self.body(ycbcr[:, :1])
        return ycbcr_to_rgb(torch.cat([luma, ycbcr[:, 1:]], dim=1))


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "transformer": TransformerNet,
    "srnet": SRNet,
    "srcnn": SRCNN,
}


def build(config: dict[str, Any]) -> nn.Module:
    """The (untrained) network a config describes."""
    name = config.get("architecture")
    if name not in ARCHITECTURES:
        raise ConfigError(f"Unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}.")
    return ARCHITECTURES[name](**config.get("params", {}))


def save_pretrained(
    model: nn.Module, config: dict[str, Any], path: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> Path:
    """Write `<path>.safetensors` and `<path>.json` (the config, with the weights' dtype)."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
                  for k, v in model.state_dict().items()}
    save_file(state_dict, str(path), metadata={"architecture": config["architecture"]})
    config = {**config, "dtype": str(dtype).removeprefix("torch.")}
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def load_from_files(weights: str | os.PathLike, config_path: str | os.PathLike | None = None) -> tuple[nn.Module, dict]:
    """Build a model from its JSON config and load its safetensors weights (kept in float32)."""
    weights = Path(weights)
    refuse_pickle(weights)
    config_path = Path(config_path) if config_path else weights.with_suffix(".json")
    if not weights.is_file():
        raise WeightsUnavailable(f"Weights not found: {weights}")
    if not config_path.is_file():
        raise WeightsUnavailable(f"Config not found next to the weights: {config_path}")
    config = json.loads(config_path.read_text())
    model = build(config)
    try:
        tensors = load_file(str(weights))
    except SafetensorError as exc:
        raise UnreadableWeights(f"{weights} is not a readable safetensors file ({exc}).") from exc
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    model.load_state_dict(state_dict)
    return model.eval(), config


def from_pretrained(name_or_path: str | os.PathLike, settings: HubSettings | None = None) -> tuple[nn.Module, dict]:
    """A trained model by file path (`x.safetensors` + `x.json`) or by name (`style/starry_night`,
    looked up with `settings`)."""
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.is_file():
        return load_from_files(path)
    if settings is None:
        raise ConfigError(f"{name_or_path!r} is not a file; looking up a model name needs HubSettings.")
    resolved = resolve(str(name_or_path), settings)
    model, config = load_from_files(resolved.weights, resolved.config)
    config["origin"] = resolved.origin
    return model, config
