"""PSNR and SSIM with the super-resolution papers' protocol.

Both are computed on the BT.601 luma (Y in [16, 235] on the 0-255 scale) after cropping `border`
pixels (the scale factor) from each side. SSIM is Wang et al. (2004): 11x11 Gaussian window with
sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, statistics over the "valid" region only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .image_io import rgb_to_y


def _luma_255(image: torch.Tensor, border: int) -> torch.Tensor:
    """(1, 3, H, W) RGB in [0, 1] -> (1, 1, H-2b, W-2b) float64 luma on the 0-255 scale."""
    y = rgb_to_y(image.double()) * 255.0
    if border:
        y = y[..., border:-border, border:-border]
    return y


def _check(output: torch.Tensor, reference: torch.Tensor) -> None:
    if output.shape != reference.shape:
        raise ValueError(f"Images differ in size: {tuple(output.shape)} vs {tuple(reference.shape)}.")


def psnr(output: torch.Tensor, reference: torch.Tensor, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB on Y (peak 255); inf for identical images."""
    _check(output, reference)
    mse = (_luma_255(output, border) - _luma_255(reference, border)).pow(2).mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


def ssim(output: torch.Tensor, reference: torch.Tensor, border: int = 0) -> float:
    """Structural similarity (mean SSIM map) on Y, as Wang et al.'s reference implementation."""
    _check(output, reference)
    x, y = _luma_255(output, border), _luma_255(reference, border)
    window = _gaussian_window().to(x.device)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean().item()
