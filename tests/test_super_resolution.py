"""The app's super-resolution comparison without the server: its steps, the methods it shows, its notes."""

import io
import math
import re

import pytest
import torch
from PIL import Image

from demo.services import Services, SRComparison, SRStep
from demo.sr_tab import SR_HEADERS, sr_outputs
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import load_image, resize_longer_side
from perceptual_models.inference import SR_LABELS, SR_METHODS, sr_model_name
from perceptual_models.metrics import psnr, ssim

from conftest import TRAIN_DATA


@pytest.fixture(scope="module")
def services():
    services = Services("cpu", HubSettings(offline=True))  # module-scoped: the bundled models, not the environment's
    services.load_models()
    return services


@pytest.fixture(scope="module")
def photo():
    return resize_longer_side(load_image(TRAIN_DATA / "urban100" / "img_020.jpg"), 160)  # 160x120


def test_steps_count_each_method_and_its_metrics(services, photo):
    *steps, comparison = services.upscale(photo, 4, True, "bicubic")
    methods = services.sr_methods(4)
    assert methods == list(SR_METHODS)  # every x4 model is bundled
    assert all(isinstance(step, SRStep) for step in steps) and isinstance(comparison, SRComparison)
    assert [(s.done, s.total) for s in steps] == [(i, 2 * len(methods)) for i in range(2 * len(methods))]
    assert steps[0].text == "Bicubic (method 1 of 4)" and steps[-1].text == "PSNR and SSIM of Ours, l_feat (method 4 of 4)"
    assert [r.method for r in comparison.results] == methods and comparison.note == ""
    for result in comparison.results:
        assert result.image.shape == comparison.original.shape == (1, 3, 120, 160)
        assert result.psnr == pytest.approx(psnr(result.image, comparison.original, 4), abs=1e-9)
        assert result.ssim == pytest.approx(ssim(result.image, comparison.original, 4), abs=1e-9)
        assert result.seconds > 0 and result.metrics_seconds > 0
    assert comparison.metrics_seconds > sum(r.metrics_seconds for r in comparison.results)  # + the original's share
    *steps, comparison = services.upscale(photo, 4, False, "bicubic")  # no original: no metric steps
    assert [s.total for s in steps] == [4] * 4 and comparison.original is None
    assert all(r.psnr is None and r.metrics_seconds is None for r in comparison.results)


def test_methods_without_a_model_are_left_out_with_a_note(services, photo, monkeypatch):
    available = [m for m in SR_METHODS if m == "bicubic" or sr_model_name(m, 8) in services.runners]
    *_, comparison = services.upscale(photo, 8, True, "bicubic")
    assert [r.method for r in comparison.results] == available == services.sr_methods(8)
    missing = [SR_LABELS[m] for m in SR_METHODS if m not in available]
    assert all(label in comparison.note for label in missing) and ("leaves" in comparison.note) == bool(missing)
    monkeypatch.delitem(services.runners, "srcnn/x4")  # as if its weights had not resolved
    *steps, comparison = services.upscale(photo, 4, True, "bicubic")
    assert [r.method for r in comparison.results] == ["bicubic", "pixel", "feat"] and len(steps) == 6
    assert comparison.note == "No “SRCNN-style” model is available for x4, so the comparison leaves it out."


def test_outputs_say_identical_instead_of_infinite_psnr(services):
    flat = torch.full((1, 3, 64, 64), 0.4)  # every method reproduces a flat image exactly
    *_, comparison = services.upscale(flat, 4, True, "bicubic")
    assert comparison.results[0].psnr == math.inf
    gallery, crops, table, note = sr_outputs(comparison, 4, None, "")
    assert list(table.columns) == SR_HEADERS and not re.search(r"\binf\b", table.to_string() + note)
    bicubic = table.iloc[0]
    assert bicubic["PSNR (dB)"] == "identical" and bicubic["SSIM"] == "1.0000"
    assert gallery[0][1] == "Bicubic: identical" and "PSNR is infinite" in note
    assert len(gallery) == len(comparison.results) + 1 and len(crops) == len(comparison.results) + 2
    assert {Image.open(path).size for path, _ in crops} == {(64, 64)}  # 32 px regions, enlarged twice


def test_an_animation_says_which_frame_was_used():
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    image, note = Services.read_image(buffer.getvalue())
    assert image.shape == (1, 3, 32, 32) and note == "The upload is an animation: the first frame of 3 was used."
    assert Services.read_image(frames[0])[1] == ""
