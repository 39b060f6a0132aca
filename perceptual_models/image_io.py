"""Every image in and out of the project: decoding, checks, colour modes, resizing, saving.

Inside the project an image is a float32 tensor of shape (1, 3, H, W), RGB, values in [0, 1].
All the odd cases of real uploads (EXIF rotation, palette/alpha/CMYK/16-bit modes, truncated or
fake files, decompression bombs) are handled here once, and turned into `ImageError` with a
message that can be shown to the person who uploaded the file.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

# 40 megapixels: a 6000x6000 photo passes, a 20000x20000 PNG "bomb" does not.
DEFAULT_MAX_PIXELS = 40_000_000
# The networks need a few pixels to pad and downsample; smaller inputs are refused.
MIN_SIDE = 8

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray


def _open(source: ImageSource) -> Image.Image:
    """Open without decoding pixels, so the size can be checked before memory is spent."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageError("The file is empty (0 bytes).")
        return Image.open(io.BytesIO(source))
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"No such image file: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"The file is empty (0 bytes): {path.name}")
    return Image.open(path)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """HxW or HxWxC (C = 1, 3, 4) arrays; floats are taken as [0, 1], integers by their dtype's range."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(f"Expected an HxW or HxWxC image array, got shape {array.shape}.")
    if np.issubdtype(array.dtype, np.floating):
        values = np.clip(array.astype(np.float32), 0.0, 1.0)
    elif np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float32) / np.iinfo(array.dtype).max
    else:
        raise ImageError(f"Unsupported image array dtype {array.dtype}.")
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[2] == 4:  # alpha over white, as for files
        alpha = values[..., 3:]
        values = values[..., :3] * alpha + (1.0 - alpha)
    return np.broadcast_to(values, values.shape[:2] + (3,)).copy()


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode to an HxWx3 float32 array in [0, 1], keeping 16-bit precision."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale PNGs open as I;16 or I (32-bit container, 16-bit values).
        gray = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if gray.max() > 255 or img.mode.startswith("I;16") else 255.0
        return np.repeat((np.clip(gray, 0, peak) / peak)[..., None], 3, axis=2).astype(np.float32)
    if img.mode == "F":
        gray = np.asarray(img, dtype=np.float32)
        gray = gray / 255.0 if gray.max() > 1.0 else gray
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        # Transparent pixels become white, as they look in an image viewer.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _too_large_message(width: int, height: int, max_pixels: int) -> str:
    return (
        f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
        f"the limit is {max_pixels / 1e6:.0f} MP. Please use a smaller image."
    )


def open_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode, check and upright any image source into an HxWx3 float32 RGB array in [0, 1]."""
    if isinstance(source, np.ndarray):
        height, width = source.shape[:2]
        if height * width > max_pixels:
            raise ImageError(_too_large_message(width, height, max_pixels))
        return _array_to_rgb(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(source)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(_too_large_message(width, height, max_pixels))
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animated GIF/WebP/APNG: the first frame
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb_array(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"The image is too large to decode safely (over {max_pixels / 1e6:.0f} MP)."
        ) from None
    except UnidentifiedImageError:
        raise ImageError("This file is not an image we can read (unknown or corrupt format).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"The image file is damaged or truncated ({exc}).") from None


def frame_count(source: ImageSource) -> int:
    """How many frames an image holds: an animated GIF, WebP or APNG has several, of which the
    project uses the first. 1 for arrays, and for files PIL cannot open (`load_image` says why)."""
    if isinstance(source, np.ndarray):
        return 1
    if isinstance(source, Image.Image):
        return getattr(source, "n_frames", 1)
    try:
        with _open(source) as img:
            return getattr(img, "n_frames", 1)
    except (ImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError):
        return 1


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """HxWx3 float array in [0, 1] to the project's (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[None]


def load_image(
    source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = MIN_SIDE
) -> torch.Tensor:
    """Load any supported image as a (1, 3, H, W) RGB tensor in [0, 1], refusing unusable ones."""
    array = open_rgb(source, max_pixels)
    check_side(*array.shape[:2], "The image", min_side)
    return to_tensor(array)


def check_side(height: int, width: int, what: str = "The image", min_side: int = MIN_SIDE) -> None:
    """Refuse an image the networks cannot pad and downsample (also one made small by a resize)."""
    if min(height, width) < min_side:
        raise ImageError(f"{what} is only {width}x{height} pixels; at least {min_side} pixels per side are needed.")


def to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] to an 8-bit RGB PIL image (rounded, clamped)."""
    return Image.fromarray(to_uint8(image))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Quantise like saving to an 8-bit file would: HxWx3 uint8."""
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu()
    return array.numpy()


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels an 8-bit image has, keeping the tensor layout."""
    return image.clamp(0, 1).mul(255).round().div(255)


def save_image(image: torch.Tensor, path: str | os.PathLike, quality: int = 92) -> Path:
    """Save as PNG or JPEG (by extension); parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = to_pil(image)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        pil.save(path, quality=quality)
    else:
        pil.save(path)
    return path


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize to (height, width), matching PIL's BICUBIC (a=-0.5, antialiased when shrinking).

    Matching PIL matters: the paper's SR protocol (bicubic x4 on Set5 = 28.43 dB) is defined by it.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)


def fit_size(height: int, width: int, longer_side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is `longer_side`, aspect ratio kept."""
    scale = longer_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_longer_side(image: torch.Tensor, longer_side: int) -> torch.Tensor:
    """Resize so that the longer side is `longer_side` pixels (the CLI's and app's `--size`)."""
    return resize(image, fit_size(*image.shape[-2:], longer_side))


def cap_pixels(image: torch.Tensor, max_pixels: int) -> tuple[torch.Tensor, bool]:
    """Downscale (aspect kept) to at most `max_pixels`; returns the image and whether it shrank."""
    height, width = image.shape[-2:]
    if height * width <= max_pixels:
        return image, False
    scale = math.sqrt(max_pixels / (height * width))
    return resize(image, (max(1, int(height * scale)), max(1, int(width * scale)))), True


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius 3 sigma) with reflected borders."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = F.pad(image, (radius, radius, radius, radius), mode="reflect")
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(padded, horizontal, groups=channels), vertical, groups=channels)


def degrade(hr: torch.Tensor, scale: int, blur_sigma: float = 1.0) -> torch.Tensor:
    """The paper's SR degradation: Gaussian blur (sigma 1.0), bicubic downsampling, 8-bit rounding.

    `blur_sigma=0` gives the plain bicubic degradation of the standard benchmark protocol.
    The size must be a multiple of `scale` (see `crop_to_multiple`).
    """
    height, width = hr.shape[-2:]
    if height % scale or width % scale:
        raise ImageError(f"Image size {width}x{height} is not a multiple of the scale {scale}.")
    blurred = gaussian_blur(hr, blur_sigma) if blur_sigma > 0 else hr
    return quantize(resize(blurred, (height // scale, width // scale)))


def crop_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop bottom/right so both sides are multiples of `multiple` (the "modcrop" of SR papers)."""
    height, width = image.shape[-2:]
    return image[..., : height - height % multiple, : width - width % multiple]


# ITU-R BT.601 "studio swing" YCbCr, as MATLAB's rgb2ycbcr: Y in [16, 235] for RGB in [0, 1].
_YCBCR = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]
) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0]) / 255.0
_RGB_FROM_YCBCR = torch.linalg.inv(_YCBCR)


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """BT.601 YCbCr in [0, 1] scale (Y in [16/255, 235/255]); channels stay on dim 1."""
    matrix = _YCBCR.to(image)
    return torch.einsum("ij,bjhw->bihw", matrix, image) + _YCBCR_OFFSET.to(image).view(1, 3, 1, 1)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_ycbcr`."""
    inverse = _RGB_FROM_YCBCR.to(image)
    return torch.einsum("ij,bjhw->bihw", inverse, image - _YCBCR_OFFSET.to(image).view(1, 3, 1, 1))


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """The BT.601 luma channel the SR metrics are computed on, shape (B, 1, H, W)."""
    return rgb_to_ycbcr(image)[:, :1]
