import itertools
import json
import math
import subprocess
import sys

import pytest
import torch

from perceptual_models.gatys import GatysSettings, run, transfer
from perceptual_models.image_io import load_image, resize_longer_side, rgb_to_ycbcr
from perceptual_models.losses import PAPER_STYLE_LAYERS, PerceptualLoss, StyleObjective

from conftest import REPO, SET5, STYLES, TRAIN_DATA


def test_lbfgs_loss_falls_fast(loss_network, photo, starry_night):
    result = transfer(photo, starry_night, loss_network, GatysSettings(iterations=20))
    totals = [h["total"] for h in result.history]
    assert len(totals) == 20 and result.iteration == 20 and result.done
    assert totals[-1] < 0.5 * totals[0]
    assert sum(b <= a for a, b in itertools.pairwise(totals)) >= 15  # mostly monotone
    assert result.image.shape == photo.shape and 0 <= result.image.min() and result.image.max() <= 1
    assert result.elapsed > 0


def test_result_has_the_style_of_the_painting(loss_network, photo, starry_night):
    settings = GatysSettings(iterations=30)
    result = transfer(photo, starry_night, loss_network, settings)
    measure = PerceptualLoss(loss_network, [], PAPER_STYLE_LAYERS, content_weight=0.0, style_weight=1.0)
    measure.set_style(starry_night)
    style_of = lambda image: measure(image, measure.targets(image))["style"].item()
    assert style_of(result.image) < 0.2 * style_of(photo)


def test_adam_and_noise_init_are_reproducible(loss_network, photo, starry_night):
    settings = GatysSettings(iterations=8, optimizer="adam", init="noise", seed=3)
    first = transfer(photo, starry_night, loss_network, settings)
    second = transfer(photo, starry_night, loss_network, settings)
    assert torch.equal(first.image, second.image)
    assert first.history[-1]["total"] < first.history[0]["total"]


def test_colour_preservation_keeps_the_content_chroma(loss_network, photo, starry_night):
    result = transfer(photo, starry_night, loss_network, GatysSettings(iterations=10, preserve_color=True))
    chroma_out, chroma_in = rgb_to_ycbcr(result.image)[:, 1:], rgb_to_ycbcr(photo)[:, 1:]
    assert (chroma_out - chroma_in).abs().mean() < 0.01
    plain = transfer(photo, starry_night, loss_network, GatysSettings(iterations=10))
    assert (rgb_to_ycbcr(plain.image)[:, 1:] - chroma_in).abs().mean() > 0.02  # Starry Night's blue


def test_progress_streams_and_cancellation_stops_within_one_step(loss_network, photo, starry_night):
    seen = []
    stop = {"now": False}
    for event in run(photo, starry_night, loss_network, GatysSettings(iterations=50, report_every=2),
                     should_stop=lambda: stop["now"]):
        seen.append(event)
        if event.iteration >= 4:
            stop["now"] = True
    assert [e.iteration for e in seen[:-1]] == [2, 4]
    assert seen[-1].done and seen[-1].iteration == 4  # not one iteration more
    assert seen[0].image.shape == photo.shape and set(seen[0].losses) == {"total", "content", "style", "tv"}


@pytest.mark.parametrize(
    "settings, message",
    [
        (GatysSettings(objective=StyleObjective(style_weight=-1)), "style_weight must be >= 0"),
        (GatysSettings(iterations=0), "iterations must be at least 1"),
        (GatysSettings(objective=StyleObjective(style_layers=("relu4_4",))), "Unknown VGG layer"),
        (GatysSettings(optimizer="sgd"), "optimizer must be one of"),
        (GatysSettings(objective=StyleObjective(content_layers=("relu5_3",))), "does not compute"),
    ],
)
def test_invalid_settings_are_clear_errors(loss_network, photo, starry_night, settings, message):
    with pytest.raises(ValueError, match=message):
        next(run(photo, starry_night, loss_network, settings))


def test_gatys_command_line(tmp_path):
    content = sorted((TRAIN_DATA / "urban100").glob("*.jpg"))[11]
    out, report = tmp_path / "out.png", tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "perceptual_models", "gatys", "--content", str(content), "--style",
         str(STYLES / "starry_night.jpg"), "-o", str(out), "--size", "48", "--iters", "5", "--report", str(report)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "5 iterations in" in result.stdout
    assert max(load_image(out).shape[-2:]) == 48
    data = json.loads(report.read_text())
    assert data["iterations"] == 5 and len(data["history"]) == 5 and data["seconds"] > 0
    assert data["settings"]["optimizer"] == "lbfgs" and "CPU" in data["device"]
    assert set(data["history"][0]) == {"iteration", "total", "content", "style", "tv"}


def test_gatys_command_line_rejects_bad_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "perceptual_models", "gatys", "--content", "x.jpg", "--style", "y.jpg",
         "-o", str(tmp_path / "o.png"), "--style-weight", "-3"],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 2 and "style_weight must be >= 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_feature_reconstruction_from_a_shallow_layer_recovers_the_photo(loss_network, photo):
    """Figure 3's left column: relu1_2 keeps nearly everything, relu4_3 much less (from noise, same budget)."""
    from perceptual_models.gatys import reconstruct
    from perceptual_models.metrics import psnr

    quality = {}
    for layer in ("relu1_2", "relu4_3"):
        *_, final = reconstruct(photo, layer, "feature", loss_network, 64, 60)
        assert final.image.shape == photo.shape
        quality[layer] = psnr(final.image, photo)
    assert quality["relu1_2"] > 20 and quality["relu1_2"] > quality["relu4_3"] + 5


@pytest.mark.parametrize(("layer", "mode", "message"), [("relu2_2", "pixels", "'feature' or 'style'"),
                                                       ("relu5_3", "style", "one of relu1_2")])
def test_reconstruction_rejects_unknown_modes_and_layers(loss_network, photo, layer, mode, message):
    from perceptual_models.errors import ConfigError
    from perceptual_models.gatys import reconstruct

    with pytest.raises(ConfigError, match=message):
        next(reconstruct(photo, layer, mode, loss_network, 64, 10))


def test_a_photo_as_decoded_at_its_own_size_is_optimised(loss_network, starry_night):
    """A decoded photo is an HWC array seen as NCHW (not contiguous); at the size asked it is not resized, and
    L-BFGS used to fail on its gradient's layout (a 512 px square upload optimised at 512 px)."""
    photo = torch.rand(1, 40, 48, 3).permute(0, 3, 1, 2)
    assert not photo.is_contiguous()
    result = transfer(photo, starry_night, loss_network, GatysSettings(iterations=2))
    assert result.iteration == 2 and result.image.shape == photo.shape


def test_an_overshooting_step_is_taken_back(loss_network):
    """L-BFGS's second step can overshoot by orders of magnitude (Set14's grey bridge at 256 px went to inf,
    then NaN, a black image): the optimization goes back to its best point and carries on."""
    grey = resize_longer_side(load_image(SET5.parent / "Set14" / "bridge.png"), 256)
    painting = resize_longer_side(load_image(STYLES / "starry_night.jpg"), 512)
    result = transfer(grey, painting, loss_network, GatysSettings(iterations=12, objective=StyleObjective(
        style_weight=9.8e-5)))
    totals = [h["total"] for h in result.history]
    assert all(math.isfinite(t) for t in totals) and totals[-1] < 0.5 * totals[0]
    assert torch.isfinite(result.image).all() and result.image.std() > 0.05
