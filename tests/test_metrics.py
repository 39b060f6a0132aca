import math

import pytest
import torch

from perceptual_models.evaluate import evaluate_sr
from perceptual_models.inference import bicubic_upscale
from perceptual_models.metrics import psnr, ssim

from conftest import SET5


def test_psnr_of_a_known_error():
    reference = torch.full((1, 3, 16, 16), 0.5)
    assert psnr(reference, reference) == math.inf
    # Shifting R, G and B by d (in [0, 1]) moves Y by (65.481 + 128.553 + 24.966) d = 219 d on 0-255.
    shifted = reference + 10 / 219  # Y error of exactly 10 levels everywhere
    assert psnr(shifted, reference) == pytest.approx(10 * math.log10(255**2 / 10**2), abs=1e-4)


def test_border_is_cropped():
    reference = torch.zeros(1, 3, 16, 16)
    damaged = reference.clone()
    damaged[..., :4, :] = 1.0  # only the top border differs
    assert psnr(damaged, reference, border=4) == math.inf
    assert psnr(damaged, reference, border=0) < 20


def test_ssim_properties():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 48, 48)
    assert ssim(image, image) == pytest.approx(1.0)
    slightly, badly = (image + 0.02 * torch.randn_like(image)).clamp(0, 1), (image + 0.2 * torch.randn_like(image)).clamp(0, 1)
    assert 1.0 > ssim(slightly, image) > ssim(badly, image) > 0
    with pytest.raises(ValueError, match="differ in size"):
        ssim(image, image[..., :40])


def test_bicubic_x4_on_set5_matches_the_paper():
    result = evaluate_sr(SET5, 4, {"bicubic": lambda lr: bicubic_upscale(lr, 4)})
    bicubic = result["methods"]["bicubic"]
    assert bicubic["psnr"] == pytest.approx(28.43, abs=0.01)
    assert bicubic["ssim"] == pytest.approx(0.8114, abs=0.002)
    assert set(bicubic["per_image"]) == {"baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"}
