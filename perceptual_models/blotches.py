"""The style networks' worst artefact, measured: flat white or black blotches that are not in the photo.

A blotch is a connected region of the output that is saturated (every channel near white, or every
channel near black), flat (almost no local variation) and not already flat and saturated in the
content photo (a white wall may stay white), covering more than a few pixels. Its share of the
image is what `python -m train.audit` reports and what the issue's "under 0.1%" is judged by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

SATURATED = 0.06  # every channel within this of 1 (white) or of 0 (black)
FLAT_STD = 0.02  # local standard deviation (5x5 window, worst channel) below this is flat
MIN_AREA_FRACTION = 1e-4  # smaller regions are specks, not blotches (6 px at 256 x 256)
MIN_AREA_PIXELS = 6


@dataclass(frozen=True)
class Blotches:
    mask: np.ndarray  # (H, W) bool: pixels inside a blotch
    share: float  # fraction of the image covered
    regions: int
    largest: int  # pixels in the largest region


def _saturated_and_flat(image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(1, 3, H, W) in [0, 1] -> (saturated, saturated and flat), both (H, W) bool."""
    image = image.float().clamp(0, 1)
    mean = F.avg_pool2d(image, 5, stride=1, padding=2, count_include_pad=False)
    square = F.avg_pool2d(image * image, 5, stride=1, padding=2, count_include_pad=False)
    local_std = (square - mean * mean).clamp(min=0).sqrt().amax(dim=1)[0]
    saturated = (image >= 1 - SATURATED).all(dim=1)[0] | (image <= SATURATED).all(dim=1)[0]
    return saturated.numpy(), (saturated & (local_std < FLAT_STD)).numpy()


def find_blotches(output: torch.Tensor, content: torch.Tensor) -> Blotches:
    """Blotches of a stylised `output` (1, 3, H, W) that its `content` photo (same size) does not have."""
    if output.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"output {tuple(output.shape[-2:])} and content {tuple(content.shape[-2:])} differ in size")
    saturated, flat = _saturated_and_flat(output)
    # Flat white sky or black background in the photo itself: allowed to stay, with a margin.
    allowed = ~ndimage.binary_dilation(_saturated_and_flat(content)[1], iterations=3)
    # The 5x5 window misses a blotch's 2-pixel rim: grow the flat core back into saturated pixels.
    candidate = ndimage.binary_dilation(flat & allowed, iterations=2, mask=saturated & allowed)
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3), dtype=bool))
    height, width = candidate.shape
    min_area = max(MIN_AREA_PIXELS, MIN_AREA_FRACTION * height * width)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    kept = np.flatnonzero(areas >= min_area) + 1
    mask = np.isin(labels, kept)
    return Blotches(mask, float(mask.mean()), len(kept), int(areas[kept - 1].max(initial=0)))
