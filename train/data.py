"""Training photos as deterministic batches of random crops.

Batch k depends only on (seed, rank, k): a resumed run replays exactly the batches an
uninterrupted run would have seen. Image order comes from a DistributedSampler, so under
torchrun every process sees a different share of the photos each epoch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from perceptual_models.errors import ConfigError, ImageError
from perceptual_models.image_io import load_image, resize

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
REPO = Path(__file__).resolve().parents[1]


def shared_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """The shared data folder (photos, benchmarks, paintings, the caffe VGG): $PERCEPTUAL_SHARED, else
    ../shared beside the repository, as for the tests. Command lines read it once, for their defaults."""
    return Path(environ.get("PERCEPTUAL_SHARED") or REPO.parent / "shared")


def folder_list(value: str) -> list[Path]:
    """PERCEPTUAL_TRAIN_DATA's form, for the trainer and the app alike: folders separated by os.pathsep."""
    return [Path(part) for part in value.split(os.pathsep) if part]


def find_photos(folders: Sequence[str | Path]) -> list[Path]:
    """All image files under the given folders (recursively), sorted for reproducibility."""
    photos = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"Photo folder not found: {folder}")
        photos += [p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES]
    if not photos:
        raise ConfigError(f"No photos found in {', '.join(map(str, folders))}")
    return sorted(photos)


class PhotoBatches:
    """Random crops of in-memory photos.

    `rescale=True` (style): a random square of 50-100% of the shorter side, resized to `crop`.
    `rescale=False` (super-resolution): exact `crop` x `crop` pixel patches, random flips.
    """

    def __init__(
        self,
        folders: Sequence[str | Path],
        crop: int,
        batch_size: int,
        rescale: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.crop, self.batch_size, self.rescale = crop, batch_size, rescale
        self.seed, self.rank = seed, rank
        self.images = []
        for path in find_photos(folders):
            try:
                image = load_image(path)
            except ImageError:
                continue  # a broken file in a user's folder should not stop training
            if min(image.shape[-2:]) >= crop or rescale:
                self.images.append((image[0] * 255).round().to(torch.uint8))
        if len(self.images) < batch_size * world_size:
            raise ConfigError(f"Need at least {batch_size * world_size} usable photos, found {len(self.images)}.")
        self.sampler = DistributedSampler(
            range(len(self.images)), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.batches_per_epoch = len(self.sampler) // batch_size

    def batch(self, step: int) -> torch.Tensor:
        """The (batch, 3, crop, crop) float batch for training step `step`."""
        epoch, position = divmod(step, self.batches_per_epoch)
        self.sampler.set_epoch(epoch)
        indices = list(self.sampler)[position * self.batch_size : (position + 1) * self.batch_size]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7919 + step)
        return torch.stack([self._crop(self.images[i], generator) for i in indices])

    def _crop(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _, height, width = image.shape
        if self.rescale:
            fraction = 0.5 + 0.5 * torch.rand((), generator=generator).item()
            side = max(1, int(min(height, width) * fraction))
        else:
            side = self.crop
        top = int(torch.randint(0, height - side + 1, (), generator=generator))
        left = int(torch.randint(0, width - side + 1, (), generator=generator))
        patch = image[:, top : top + side, left : left + side].float() / 255
        if self.rescale:
            return resize(patch[None], (self.crop, self.crop))[0].clamp(0, 1)
        if torch.rand((), generator=generator) < 0.5:
            patch = patch.flip(-1)
        return patch

    def validation_image(self) -> torch.Tensor:
        """A fixed centre crop of the first photo, to render while training."""
        image = self.images[0].float()[None] / 255
        height, width = image.shape[-2:]
        side = min(height, width) if self.rescale else self.crop
        top, left = (height - side) // 2, (width - side) // 2
        square = image[..., top : top + side, left : left + side]
        return square if not self.rescale else resize(square, (self.crop, self.crop)).clamp(0, 1)
