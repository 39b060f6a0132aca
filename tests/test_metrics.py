import math

import pytest
import torch
import torch.nn.functional as F

from perceptual_models.image_io import crop_to_multiple, degrade, load_image, quantize, rgb_to_y
from perceptual_models.inference import bicubic_upscale
from perceptual_models.metrics import Reference, psnr, ssim
from perceptual_models.tools.evaluate import evaluate_sr

from conftest import SET5, TRAIN_DATA


def straightforward_ssim(output: torch.Tensor, reference: torch.Tensor, border: int) -> float:
    """Wang et al.'s SSIM written the obvious way (a 2-D 11x11 window, float64 conv2d): what the fast one must equal."""
    x, y = [(rgb_to_y(image.double()) * 255)[..., border:-border, border:-border] for image in (output, reference)]
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2).view(1, 1, 11, 11)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x, var_y = F.conv2d(x * x, window) - mu_x**2, F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    return (((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))).mean().item()


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
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(image[..., :14, :], image[..., :14, :], border=2)


@pytest.mark.parametrize("path", [SET5 / "butterfly.png", SET5 / "baby.png", TRAIN_DATA / "urban100" / "img_020.jpg"],
                         ids=lambda p: p.name)
def test_fast_ssim_equals_the_straightforward_one_on_real_images(path):
    """Bicubic and a blurred, noisy output of real photos (one 1280x960): the same SSIM and PSNR."""
    torch.manual_seed(0)
    original = crop_to_multiple(load_image(path), 4)
    bicubic = quantize(bicubic_upscale(degrade(original, 4, 1.0), 4))
    noisy = quantize(bicubic + 0.03 * torch.randn_like(bicubic))
    reference = Reference(original, border=4)
    for output in (bicubic, noisy):
        expected = straightforward_ssim(output, original, 4)
        assert 0.3 < expected < 0.99
        assert ssim(output, original, 4) == pytest.approx(expected, abs=1e-6)
        assert reference.psnr_ssim(output) == pytest.approx((psnr(output, original, 4), expected), abs=1e-6)
    with pytest.raises(ValueError, match="differ in size"):
        reference.psnr_ssim(bicubic[..., 4:, :])


def test_bicubic_x4_on_set5_matches_the_paper():
    result = evaluate_sr(SET5, 4, {"bicubic": lambda lr: bicubic_upscale(lr, 4)})
    bicubic = result["methods"]["bicubic"]
    assert bicubic["psnr"] == pytest.approx(28.43, abs=0.01)
    assert bicubic["ssim"] == pytest.approx(0.8114, abs=0.002)
    assert set(bicubic["per_image"]) == {"baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"}
