import math
from dataclasses import replace

import pytest
import torch

from perceptual_models.errors import ConfigError
from perceptual_models.losses import (
    PerceptualLoss,
    StyleObjective,
    feature_loss,
    gram_matrix,
    pixel_loss,
    stability_loss,
    style_loss,
    tv_loss,
)

from conftest import PAPER_LAYERS


def test_gram_matrix_of_a_known_tensor():
    # Two channels over a 1x2 image: phi = [[1, 2], [3, 4]]; G = phi phi^T / (C*H*W) = / 4.
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.equal(gram_matrix(features), expected)


def test_elementary_losses_by_hand():
    a, b = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    b[0, 0, 0, 0] = 2.0
    assert feature_loss(a, b).item() == pytest.approx(4 / 8)  # squared distance / (C*H*W)
    assert pixel_loss(a, b).item() == pytest.approx(4 / 8)
    g1, g2 = torch.eye(2)[None], torch.zeros(1, 2, 2)
    assert style_loss(g1, g2).item() == pytest.approx(2.0)  # squared Frobenius norm
    stripes = torch.tensor([[[[0.0, 1.0, 0.0, 1.0]] * 4]])
    assert tv_loss(stripes).item() == pytest.approx(1.0)  # every horizontal step is 1, vertical 0
    assert tv_loss(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


def test_perceptual_loss_is_zero_for_identical_images_and_positive_otherwise(loss_network, photo):
    loss = PerceptualLoss(loss_network, ["relu2_2"], PAPER_LAYERS, content_weight=1.0, style_weight=1e-4,
                          pixel_weight=1.0)
    loss.set_style(photo)
    same = loss(photo, loss.targets(photo))
    for name in ("content", "style", "pixel"):
        assert same[name].item() == pytest.approx(0.0, abs=1e-3)
    other = loss(photo.flip(-1), loss.targets(photo))
    for name in ("content", "style", "pixel", "total"):
        assert other[name].item() > 0


def test_gradients_reach_the_image_not_the_network(loss_network, photo, starry_night):
    loss = PerceptualLoss(loss_network, ["relu2_2"], PAPER_LAYERS, content_weight=1.0, style_weight=1e-4,
                          tv_weight=10.0)
    loss.set_style(starry_night)
    image = torch.rand_like(photo, requires_grad=True)
    loss(image, loss.targets(photo))["total"].backward()
    assert image.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_network.parameters())


def test_style_loss_is_the_sum_over_its_layers(loss_network, photo, starry_night):
    losses = [PerceptualLoss(loss_network, [], layers, content_weight=0, style_weight=1)
              for layers in (["relu1_2", "relu2_2"], ["relu1_2"], ["relu2_2"])]
    for loss in losses:
        loss.set_style(starry_night)
    both, first, second = (loss(photo, losses[0].targets(photo))["style"].item() for loss in losses)
    assert first > 0 and second > 0 and both == pytest.approx(first + second, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"content_weight": -1.0}, "negative content"),
        ({"content_weight": 0.0}, "All loss weights are zero"),
        ({"content_layers": ["relu5_3"]}, "does not compute"),
    ],
)
def test_invalid_settings_are_clear_errors(loss_network, kwargs, message):
    with pytest.raises(ValueError, match=message):
        PerceptualLoss(loss_network, **kwargs)


def test_style_target_must_be_set_first(loss_network, photo):
    loss = PerceptualLoss(loss_network, [], PAPER_LAYERS, content_weight=0, style_weight=1)
    with pytest.raises(RuntimeError, match="set_style"):
        loss(photo, loss.targets(photo))


def test_the_balanced_style_weight_is_the_balance_over_the_gram_norm(loss_network, starry_night):
    objective = StyleObjective()
    balanced = objective.balanced(loss_network, starry_night, 3.8)
    with torch.no_grad():
        features = loss_network(starry_night)
    norm = math.sqrt(sum(float(gram_matrix(features[layer]).pow(2).sum()) for layer in objective.style_layers))
    assert balanced.style_weight == pytest.approx(3.8 / norm)
    assert replace(balanced, style_weight=objective.style_weight) == objective  # nothing else changes
    # A soft painting (a quarter of the contrast) is pulled towards harder than a bold one.
    soft = 0.5 + 0.25 * (starry_night - 0.5)
    assert objective.balanced(loss_network, soft, 3.8).style_weight > 1.5 * balanced.style_weight
    with pytest.raises(ConfigError, match="balance must be > 0"):
        objective.balanced(loss_network, starry_night, 0.0)


def test_stability_loss_measures_how_input_noise_reaches_the_output():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 64, 64)
    # The identity passes the noise on whole: its mean square is sigma^2. A constant output ignores it.
    assert stability_loss(torch.nn.Identity(), image, image, 0.1).item() == pytest.approx(0.01, rel=0.05)
    assert stability_loss(lambda x: torch.zeros_like(x), image, torch.zeros_like(image), 0.1).item() == 0
    # A blur averages the noise away: far less of it reaches the output, and the gradient reaches the weights.
    blur = torch.nn.Conv2d(3, 3, 5, padding=2, bias=False)
    torch.nn.init.constant_(blur.weight, 1 / 75)
    loss = stability_loss(blur, image, blur(image), 0.1)
    assert loss.item() < 0.01 / 10
    loss.backward()
    assert blur.weight.grad.abs().sum() > 0
