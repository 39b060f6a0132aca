"""The blotch measure behind `train.audit`: what it counts and what it must not."""

import os
import subprocess
import sys

import pytest
import torch

from perceptual_models.blotches import find_blotches
from train.audit import equivalent_iterations

from conftest import REPO


def _texture(size: int = 128, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(1, 3, size, size, generator=generator)


def _disc(size: int, centre: tuple[int, int], radius: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def test_a_flat_white_disc_is_one_blotch_of_its_area():
    content, output = _texture(seed=1), _texture(seed=2)
    disc = _disc(128, (40, 70), 12)
    output[0, :, disc] = 1.0
    found = find_blotches(output, content)
    assert found.regions == 1
    assert found.share == pytest.approx(disc.float().mean().item(), rel=0.15)
    assert found.mask[40, 70] and not found.mask[100, 10]


def test_flat_black_counts_but_dark_texture_and_specks_do_not():
    content, output = _texture(seed=1), _texture(seed=2)
    output[0, :, _disc(128, (90, 90), 10)] = 0.0
    output[0, :, 5:7, 5:7] = 1.0  # a 4-pixel speck
    output[0, :, 60:80, 10:30] = 0.02 + 0.1 * torch.rand(3, 20, 20)  # dark but textured
    found = find_blotches(output, content)
    assert found.regions == 1 and found.mask[90, 90] and not found.mask[6, 6] and not found.mask[70, 20]


def test_white_that_the_photo_already_has_is_not_a_blotch():
    content, output = _texture(seed=1), _texture(seed=2)
    content[0, :, 20:60, 20:60] = 1.0  # an overexposed window in the photo
    output[0, :, 20:60, 20:60] = 1.0
    assert find_blotches(output, content).share == 0.0
    assert find_blotches(output, _texture(seed=3)).share > 0.05


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in size"):
        find_blotches(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_equivalent_gatys_iterations():
    gatys = {25: 4.0e5, 50: 3.0e5, 100: 2.0e5}
    assert equivalent_iterations(3.0e5, gatys) == pytest.approx(50)
    assert 50 < equivalent_iterations(2.5e5, gatys) < 100
    assert equivalent_iterations(5.0e5, gatys) == 0.0  # worse than 25 iterations
    assert equivalent_iterations(1.0e5, gatys) is None  # better than the last one measured


@pytest.mark.parametrize("args, message", [
    (["--model", "style/no_such_style", "--gatys-photos"], "No weights named 'style/no_such_style'"),
    (["--model", "sr/x4_pixel", "--gatys-photos"], "sr/x4_pixel is not a style network"),
    (["--model", "style/wave", "--photos", "MISSING"], "Photo folder not found"),
    (["--model", "style/wave", "--sizes", "256,x"], "expected comma-separated whole numbers"),
])
def test_audit_command_turns_bad_input_into_one_line(tmp_path, args, message):
    command = [sys.executable, "-m", "train.audit", *[str(tmp_path / "missing") if a == "MISSING" else a for a in args]]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
