"""The project's own errors: what a caller can fix or report in words.

Entry points (the CLI, the app) turn these, and only these, into a plain message; anything else
is a bug and keeps its traceback. The second bases (ValueError, RuntimeError) keep older
`except ValueError` callers working.
"""

from __future__ import annotations

from pathlib import Path


class PerceptualError(Exception):
    """Base of every error this project raises on purpose; the message is for a person."""


class ConfigError(PerceptualError, ValueError):
    """A setting that cannot work: an unknown layer, norm, architecture, precision, a negative weight."""


class ImageError(PerceptualError, ValueError):
    """An input image we cannot use; the message is meant for the end user."""


class VideoError(PerceptualError, ValueError):
    """A video file or camera frame we cannot use; the message is meant for the person who sent it."""


class WeightsUnavailable(PerceptualError, RuntimeError):
    """A model name resolved nowhere; the message lists where we looked."""


class UnreadableWeights(WeightsUnavailable):
    """A weights file that is there but is not a readable safetensors file (damaged, or not one)."""


class IntegrityError(WeightsUnavailable):
    """A downloaded file does not match the repository's manifest."""


class PickleRefused(WeightsUnavailable):
    """A weights file that is not safetensors (a pickle, typically): never loaded."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(
            f"{path}: only .safetensors weights are loaded (pickle-based files such as .pt, .pth or .bin "
            "can run arbitrary code). Convert it with safetensors.torch.save_file."
        )


class LossNetworkUnavailable(PerceptualError, RuntimeError):
    """No VGG weights could be found; the message says how to provide them."""


class RemoteError(PerceptualError, RuntimeError):
    """The Hugging Face Hub refused a request or could not be reached (uploads, Space hardware)."""


def refuse_pickle(path: str | Path) -> None:
    """The one check before any weights file is opened: safetensors only."""
    if Path(path).suffix != ".safetensors":
        raise PickleRefused(path)
