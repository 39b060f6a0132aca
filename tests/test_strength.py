"""The painting-or-filter measures (train.strength): their end points are known."""

import subprocess
import sys

import pytest
import torch

from perceptual_models.image_io import resize
from perceptual_models.losses import StyleObjective
from train.strength import Painting, flicker, measures

from conftest import REPO


@pytest.fixture(scope="module")
def painting(starry_night):
    return Painting("starry_night", StyleObjective(), resize(starry_night, (64, 64)))


def test_the_photo_itself_keeps_all_its_style_loss_and_does_not_move(loss_network, photo, painting):
    result = measures(loss_network, photo, photo, painting)
    assert result["coarse_style_ratio"] == pytest.approx(1.0)
    assert result["coarse_content_distance"] == 0 and result["full_content_distance"] == 0


def test_the_painting_itself_moves_the_whole_way_and_keeps_less_style_loss(loss_network, photo, painting):
    result = measures(loss_network, resize(painting.image, tuple(photo.shape[-2:])), photo, painting)
    assert result["full_content_distance"] == pytest.approx(1.0, rel=1e-5)
    assert result["coarse_style_ratio"] < 0.5


def test_flicker_is_the_noise_passed_on():
    still = torch.rand(1, 3, 32, 32) * 0.5 + 0.25  # away from the clamp at 0 and 1
    assert flicker(lambda x: x, still) == pytest.approx(1.0)
    assert flicker(lambda x: 2 * x, still) == pytest.approx(2.0)
    assert flicker(lambda x: torch.zeros_like(x), still) == 0


def test_command_line_refuses_a_network_that_is_not_a_style_network(tmp_path):
    done = subprocess.run([sys.executable, "-m", "train.strength", "--model", "sr/x4_pixel", "--out", str(tmp_path)],
                          check=False, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "not a style network" in done.stderr
