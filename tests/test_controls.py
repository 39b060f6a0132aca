"""The style controls (perceptual_models/controls.py) through `Services`, the live path and the CLI:
each control's defining property on the bundled networks."""

import itertools

import pytest
import torch

from demo.services import Services
from perceptual_models import cli
from perceptual_models.controls import SteadyState, StyleControls, blend, video_network
from perceptual_models.errors import PerceptualError
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import load_image, quantize, resize_longer_side, rgb_to_ycbcr

from conftest import REPO

PHOTO = REPO / "demo" / "examples" / "chelsea.jpg"
SIZE = 96


@pytest.fixture(scope="module")
def services():
    services = Services("cpu", HubSettings(offline=True))
    for style in ("starry_night", "wave"):
        assert services.load_model(f"style/{style}")
    return services


@pytest.fixture(scope="module")
def photo():
    return load_image(PHOTO)


def _stylize(services, photo, style="starry_night", **settings):
    return services.stylize(photo, style, SIZE, StyleControls(**settings)).image


def test_defaults_and_strength_ends_are_exact(services, photo):
    network = services.style_runner("starry_night")(resize_longer_side(photo, SIZE))
    assert torch.equal(_stylize(services, photo), network)
    assert torch.equal(_stylize(services, photo, strength=1.0), network)
    assert torch.equal(_stylize(services, photo, strength=0.0), resize_longer_side(photo, SIZE))
    half = _stylize(services, photo, strength=0.5)
    assert (half - network).abs().mean() > 0.02 and (half - resize_longer_side(photo, SIZE)).abs().mean() > 0.02


def test_mixing_weight_ends_are_the_two_styles(services, photo):
    starry, wave = _stylize(services, photo), _stylize(services, photo, "wave")
    assert torch.equal(_stylize(services, photo, mix_style="wave", mix=0.0), starry)
    assert torch.equal(_stylize(services, photo, mix_style="wave", mix=1.0), wave)
    half = _stylize(services, photo, mix_style="wave", mix=0.5)
    assert (half - starry).abs().mean() > 0.02 and (half - wave).abs().mean() > 0.02


def test_kept_colours_are_the_photos_and_the_strokes_the_networks(services, photo):
    output = quantize(_stylize(services, photo, preserve_color=True))  # as the PNG the app sends
    reference = rgb_to_ycbcr(resize_longer_side(photo, SIZE))
    ycbcr, plain = rgb_to_ycbcr(output), rgb_to_ycbcr(_stylize(services, photo))
    assert (ycbcr[:, 1:] - reference[:, 1:]).abs().mean() < 1.5 / 255  # 8-bit rounding and clipping
    assert (plain[:, 1:] - reference[:, 1:]).abs().mean() > 5 / 255  # Starry Night's blues, without it
    assert (ycbcr[:, :1] - reference[:, :1]).abs().mean() > 5 / 255  # the strokes are in the luminance
    assert torch.allclose(ycbcr[:, :1], plain[:, :1], atol=0.1)


@pytest.mark.parametrize("stroke", [0.5, 0.75, 2.0])
def test_stroke_size_keeps_the_asked_size_and_changes_the_strokes(services, photo, stroke):
    output = _stylize(services, photo, stroke=stroke)
    plain = _stylize(services, photo)
    assert output.shape == plain.shape == (1, 3, 64, SIZE)
    assert (output - plain).abs().mean() > 0.02


@pytest.mark.parametrize("settings, message", [
    ({"strength": 1.5}, "strength goes from 0"), ({"stroke": 3.0}, "stroke size goes from 0.5 to 2"),
    ({"mix": 0.5}, "Pick a second style"), ({"mix_style": "cubism", "mix": 0.5}, "Style 'cubism' is unavailable"),
    ({"mix": -0.1, "mix_style": "wave"}, "mix goes from 0"),
])
def test_bad_settings_are_refused_in_words(services, photo, settings, message):
    with pytest.raises(PerceptualError, match=message):
        _stylize(services, photo, **settings)


def test_blend_keeps_contrast_where_a_pixel_blend_loses_it(services, photo):
    image = resize_longer_side(photo, SIZE)
    styled = services.style_runner("starry_night")(image)
    ends = (image.std((-2, -1)) + styled.std((-2, -1))) / 2
    assert torch.allclose(blend(image, styled, 0.5).std((-2, -1)), ends, rtol=0.02)
    assert (torch.lerp(image, styled, 0.5).std((-2, -1)) < ends).all()


def test_steady_mode_reduces_flicker_on_a_noisy_still_camera(services, photo):
    runner = services.style_runner("starry_night")
    still = resize_longer_side(photo, 64)
    noise = torch.Generator().manual_seed(0)
    frames = [quantize(still + 3 / 255 * torch.randn(still.shape, generator=noise)) for _ in range(8)]

    def flicker(network):
        outputs = [network(frame) for frame in frames]
        return sum(float((b - a).abs().mean()) for a, b in itertools.pairwise(outputs))

    state = SteadyState()
    steady = flicker(video_network(runner, StyleControls(steady=True), state=state))
    assert steady < 0.5 * flicker(video_network(runner, StyleControls()))
    assert state.following(("wave", 64)) is not state  # another style starts afresh
    # A changed frame (here: another photo) takes the new output, nearly everywhere.
    other = resize_longer_side(load_image(REPO / "demo" / "examples" / "coffee.jpg"), 64)[..., : still.shape[-2], :]
    previous = state.output
    moved = video_network(runner, StyleControls(steady=True), state=state)(other)
    assert (moved - runner(other)).abs().mean() < 0.1 * (previous - runner(other)).abs().mean()


def test_cli_stylize_with_controls(tmp_path, capsys):
    out = tmp_path / "out.png"
    assert cli.main(["stylize", "--model", "style/starry_night", str(PHOTO), "-o", str(out), "--size", "64",
                     "--preserve-color", "--strength", "0.5", "--stroke", "2", "--mix-model", "style/wave",
                     "--mix", "0.5", "--device", "cpu"]) == 0
    assert "(50% style/wave, strength 0.5, stroke 2x, photo's colours)" in capsys.readouterr().out
    assert load_image(out).shape[-2:] == (43, 64)
    assert cli.main(["stylize", "--model", "style/wave", str(PHOTO), "-o", str(out), "--strength", "2"]) == 2
    assert "strength goes from 0 (the photo) to 1" in capsys.readouterr().err
