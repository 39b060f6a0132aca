"""The loss network: ImageNet VGG-16 (the paper's) or VGG-19, frozen, returning named activations.

Callers always pass RGB in [0, 1]; the network applies the input convention its weights were
trained with:
- ``caffe`` (the paper's, from the original Caffe model): BGR, 0-255, minus the BGR mean;
- ``torchvision`` (``torchvision.models.vgg16(weights="IMAGENET1K_V1")``): RGB, ImageNet mean/std.

Weights are looked up in this order: an explicit path, the `HubSettings`' ``vgg_weights`` file
(``$PERCEPTUAL_VGG_WEIGHTS`` at the entry points), ``loss_network/<arch>_caffe`` in the project's
Hub repository and then in the bundled copy (VGG-16 through relu4_3 in fp16, all the paper's losses
need, so a fresh offline install works), and last torchvision's download.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from . import hub
from .errors import ConfigError, LossNetworkUnavailable, refuse_pickle

FORMATS = ("caffe", "torchvision")

# Convolutions per block; the layer names follow the paper (relu2_2 = block 2, second ReLU).
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_BLOCK_CHANNELS = (64, 128, 256, 512, 512)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of torchvision's `vgg*.features` modules, in order: conv1_1, relu1_1, ..., pool5."""
    if arch not in _BLOCKS:
        raise ConfigError(f"Unknown loss network {arch!r}; choose from {sorted(_BLOCKS)}.")
    names = []
    for block, convs in enumerate(_BLOCKS[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def _features(arch: str, depth: int) -> nn.Sequential:
    """torchvision's VGG `features` layout, built only up to `depth` modules."""
    modules: list[nn.Module] = []
    in_channels = 3
    for name in layer_names(arch)[:depth]:
        if name.startswith("conv"):
            out_channels = _BLOCK_CHANNELS[int(name[4]) - 1]
            modules.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
            in_channels = out_channels
        elif name.startswith("relu"):
            modules.append(nn.ReLU())
        else:
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*modules)


class LossNetwork(nn.Module):
    """Frozen VGG truncated at the deepest requested layer; `forward` returns {layer: activation}."""

    def __init__(
        self,
        layers: Iterable[str],
        state_dict: dict[str, torch.Tensor],
        weight_format: str,
        arch: str = "vgg16",
        source: str = "",
    ) -> None:
        super().__init__()
        layers, names = list(layers), layer_names(arch)
        check_layers(layers, arch)
        self.layers = sorted(set(layers), key=names.index)
        self.arch, self.weight_format, self.source = arch, weight_format, source
        self.names = names[: names.index(self.layers[-1]) + 1]
        self.features = _features(arch, len(self.names))
        wanted = {
            k.removeprefix("features."): v.float()
            for k, v in state_dict.items()
            if k.startswith("features.") and int(k.split(".")[1]) < len(self.names)
        }
        missing = self.features.load_state_dict(wanted, strict=False).missing_keys
        if missing:
            raise LossNetworkUnavailable(
                f"The VGG weights ({source or 'given'}) stop before {self.layers[-1]}: missing {missing[:2]}..."
            )
        self.requires_grad_(False)
        self.eval()

        if weight_format == "caffe":
            # x_bgr * 255 - mean_bgr, written as scale and shift on the flipped channels.
            self.register_buffer("channel_order", torch.tensor([2, 1, 0]))
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0))
            self.register_buffer("shift", -torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
        elif weight_format == "torchvision":
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("channel_order", torch.tensor([0, 1, 2]))
            self.register_buffer("scale", 1.0 / std)
            self.register_buffer("shift", -torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / std)
        else:
            raise ConfigError(f"Unknown weight format {weight_format!r}; choose from {FORMATS}.")

    def train(self, mode: bool = True) -> LossNetwork:
        """Always eval: the loss network is fixed (no dropout/batch-norm here, but be explicit)."""
        return super().train(False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] to the input convention of these weights (what the first conv sees)."""
        return image[:, self.channel_order] * self.scale + self.shift

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """{layer: activation} for `layers` (default: all this network was built for), computed only as
        deep as the deepest of them: a style loss's content targets need relu2_2, not relu4_3."""
        if layers is None:
            layers = self.layers  # checked when the network was built
        else:
            layers = list(layers)
            check_layers(layers, self.arch, self)
        x = self.normalize(image)
        out = {}
        for name, module in zip(self.names, self.features):
            x = module(x)
            if name in layers:
                out[name] = x
                if len(out) == len(layers):
                    break
        return out


def check_layers(layers: Iterable[str], arch: str = "vgg16", network: LossNetwork | None = None) -> None:
    """The one check of loss-network layer names: VGG names, and computed by `network` when given."""
    layers, names = list(layers), layer_names(arch)
    if not layers:
        raise ConfigError("At least one loss-network layer is needed.")
    unknown = [layer for layer in layers if layer not in names]
    if unknown:
        relus = [n for n in names if n.startswith("relu")]
        raise ConfigError(f"Unknown VGG layer(s) {unknown}; available: {', '.join(relus)}.")
    missing = [layer for layer in layers if network is not None and layer not in network.layers]
    if missing:
        raise ConfigError(f"The loss network does not compute {missing} (only {network.layers}); "
                          "load it with these layers.")


def read_vgg_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str, str]:
    """A safetensors file of `features.N.*` weights -> (state dict, format, arch) from its metadata."""
    path = Path(path)
    refuse_pickle(path)
    if not path.is_file():
        raise LossNetworkUnavailable(f"VGG weights not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state_dict = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except SafetensorError as exc:
        raise LossNetworkUnavailable(f"{path} is not a readable safetensors file ({exc}).") from exc
    weight_format = metadata.get("format", "caffe")
    if weight_format not in FORMATS:
        raise LossNetworkUnavailable(f"{path}: unknown weight format {weight_format!r} in metadata.")
    return state_dict, weight_format, metadata.get("arch", "vgg16")


def _from_torchvision(arch: str, offline: bool) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights (downloaded once into $TORCH_HOME), `features.*` only."""
    import torchvision.models as tvm

    weights = {"vgg16": tvm.VGG16_Weights.IMAGENET1K_V1, "vgg19": tvm.VGG19_Weights.IMAGENET1K_V1}[arch]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if offline and not cached.is_file():
        raise OSError("offline mode (HF_HUB_OFFLINE) and no cached torchvision download")
    state_dict = weights.get_state_dict(progress=True, weights_only=True)
    return {k: v for k, v in state_dict.items() if k.startswith("features.")}


def loss_network_name(arch: str) -> str:
    """The loss network's name in the weights repository: the paper's Caffe VGG, through relu4_3."""
    return f"loss_network/{arch}_caffe"


def resolve_weights(
    arch: str = "vgg16", path: str | os.PathLike | None = None, download: bool = True,
    settings: hub.HubSettings | None = None,
) -> tuple[dict[str, torch.Tensor], str, str]:
    """Find VGG weights: (state dict, weight format, where they came from), or a clear error.

    Without `settings` only `path` is tried (a caller that names its file needs no lookup).
    `download=False` skips torchvision's 500 MB download (for `info`, which only reports).
    """
    layer_names(arch)  # validates arch
    path = path or (settings.vgg_weights if settings else None)
    if path:
        state_dict, weight_format, file_arch = read_vgg_file(path)
        if file_arch != arch:
            raise LossNetworkUnavailable(f"{path} holds {file_arch} weights, but {arch} was asked for.")
        return state_dict, weight_format, f"file {path}"

    if settings is None:
        raise LossNetworkUnavailable(f"No {arch} weights file given, and no HubSettings to look one up.")
    tried = []
    try:
        resolved = hub.resolve(loss_network_name(arch), settings)
        state_dict, weight_format, _ = read_vgg_file(resolved.weights)
        return state_dict, weight_format, resolved.origin
    except hub.WeightsUnavailable as exc:
        tried.append(f"the Hub: {exc}")
    if download:
        try:
            return _from_torchvision(arch, settings.offline), "torchvision", f"torchvision {arch} IMAGENET1K_V1"
        except Exception as exc:  # noqa: BLE001 - any download failure means "not available offline"
            tried.append(f"torchvision download: {type(exc).__name__}: {exc}")
    else:
        tried.append("torchvision download: not attempted")
    raise LossNetworkUnavailable(
        f"No {arch} loss-network weights available. Set {hub.VGG_WEIGHTS_ENV} to a VGG safetensors file "
        f"(e.g. vgg16_caffe_features.safetensors), or connect to the internet. Tried: "
        + "; ".join(tried)
    )


def load_loss_network(
    layers: Iterable[str],
    arch: str = "vgg16",
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    settings: hub.HubSettings | None = None,
) -> LossNetwork:
    """The frozen loss network for `layers`, on `device`, from the first weights that resolve
    (`weights`, else the lookup of `settings`: see `resolve_weights`)."""
    layers = list(layers)
    check_layers(layers, arch)
    state_dict, weight_format, source = resolve_weights(arch, weights, settings=settings)
    return LossNetwork(layers, state_dict, weight_format, arch, source).to(device)
