"""The running app, driven through gradio_client as an API user would."""

import shutil

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from demo.app_process import REPO, running_app
from perceptual_models import hub

from bad_inputs import write_bad_inputs

EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"
HIGH_RES = "High-resolution: make the low-res input, show PSNR/SSIM"
STYLES = [name.split("/", 1)[1] for name in hub.model_names() if name.startswith("style/")]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # A fresh offline install: no PERCEPTUAL_VGG_WEIGHTS, an empty HF cache (conftest), no network;
    # Gatys and the reconstructions run on the bundled loss network.
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_VGG_WEIGHTS": ""}
    with running_app(tmp_path_factory.mktemp("app"), **env) as (url, _):
        yield Client(url, verbose=False)


def _table(value: dict) -> list[dict]:
    return [dict(zip(value["headers"], row)) for row in value["data"]]


def test_bundled_models_exist():
    assert "starry_night" in STYLES and len(STYLES) >= 5
    for name in ("sr/x4_pixel", "sr/x4_feat", "srcnn/x4"):
        assert name in hub.model_names()


def test_stylize_returns_the_image_and_its_timing(client):
    image, timing, _note = client.predict(handle_file(str(EXAMPLE)), STYLES[0], 256, api_name="/stylize")
    assert Image.open(image).size == (256, 256)  # the example is square; longer side = size
    row = _table(timing)[0]
    assert row["method"].startswith("Feed-forward") and row["size (px)"] == "256x256"
    assert float(row["seconds"]) > 0 and "CPU" in row["device"]


def test_gatys_streams_progress_and_reports_the_speedup(client):
    job = client.submit(handle_file(str(EXAMPLE)), STYLES[0], None, 128, 10, api_name="/gatys")
    updates = list(job)
    assert len(updates) >= 3  # intermediate images arrive before the end
    image, status, _, timing = updates[-1]
    assert Image.open(image).size == (128, 128) and "Done" in status and "10 / 10" in status
    rows = _table(timing)
    assert rows[-1]["method"].startswith("Optimization") and float(rows[-1]["seconds"]) > 0


def test_upscale_compares_every_method_with_metrics(client):
    results, crops, metrics, note = client.predict(handle_file(str(EXAMPLE)), HIGH_RES, "x4", "bicubic", 0.5, 0.5,
                                                   True, api_name="/upscale")
    captions = [item["caption"] for item in results]
    assert len(results) == 5 and captions[-1] == "Original (ground truth)"
    assert {Image.open(item["image"]).size for item in results} == {(512, 512)}
    rows = _table(metrics)
    assert [r["method"] for r in rows] == ["Bicubic", "SRCNN-style", "Ours, l_pixel", "Ours, l_feat"]
    assert all(20 < float(r["PSNR (dB)"]) < 50 and 0 < float(r["SSIM"]) <= 1 for r in rows)
    assert len(crops) == 6 and "128x128" in note


def test_upscale_a_low_resolution_image_without_metrics(client):
    results, _, metrics, note = client.predict(handle_file(str(EXAMPLE)), "Low-resolution: just upscale it", "x8",
                                               "bicubic", 0.5, 0.5, False, api_name="/upscale")
    assert Image.open(results[0]["image"]).size == (2048, 2048)  # 512 px capped to 256 px first
    assert "downscaled to 256x256" in note
    assert all(r["PSNR (dB)"] in ("-", "") for r in _table(metrics))
    assert len(results) == 1 + sum(r["PSNR (dB)"] == "-" for r in _table(metrics)) - 1  # no ground truth shown


def test_reconstruct_from_one_layer(client):
    image, status = client.predict(handle_file(str(EXAMPLE)), "relu2_2", "Feature reconstruction", 20,
                                   api_name="/reconstruct")
    assert Image.open(image).size == (192, 192) and status.startswith("iteration 20 / 20")


@pytest.mark.parametrize("case", ["text_renamed", "truncated", "zero_bytes", "one_pixel", "bomb_20000", "sixteen_bit",
                                  "cmyk", "animated_gif", "exif_rotated", "rgba"])
def test_bad_uploads_give_a_result_or_a_clear_message(client, tmp_path, case):
    path, expected = write_bad_inputs(tmp_path)[case]
    if expected == "ok":
        image, _, _ = client.predict(handle_file(str(path)), STYLES[0], 128, api_name="/stylize")
        width, height = Image.open(image).size
        assert (width, height) == ((85, 128) if case == "exif_rotated" else (128, 85))
    else:
        with pytest.raises(AppError, match=expected):
            client.predict(handle_file(str(path)), STYLES[0], 128, api_name="/stylize")
    image, _, _ = client.predict(handle_file(str(EXAMPLE)), STYLES[0], 128, api_name="/stylize")  # still serving
    assert Image.open(image).size == (128, 128)


def test_missing_and_corrupt_weights_leave_the_rest_working(tmp_path):
    broken = tmp_path / "weights"
    (broken / "style").mkdir(parents=True)
    (broken / "style" / f"{STYLES[0]}.safetensors").write_bytes(b"\x00" * 100)  # corrupt
    shutil.copy(hub.BUNDLED_DIR / "style" / f"{STYLES[0]}.json", broken / "style" / f"{STYLES[0]}.json")
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_WEIGHTS_DIR": str(broken), "PERCEPTUAL_VGG_WEIGHTS": str(tmp_path / "none.safetensors")}
    with running_app(tmp_path / "app", **env) as (url, _):
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match=f"Style '{STYLES[0]}' is unavailable"):
            client.predict(handle_file(str(EXAMPLE)), STYLES[0], 128, api_name="/stylize")
        image, _, _ = client.predict(handle_file(str(EXAMPLE)), STYLES[1], 128, api_name="/stylize")
        assert Image.open(image).size == (128, 128)
        with pytest.raises(AppError, match="Optimization is unavailable.*VGG weights not found"):
            client.submit(handle_file(str(EXAMPLE)), STYLES[1], None, 128, 10, api_name="/gatys").result()
