"""The running app, driven through gradio_client as an API user would."""

import json
import re
import shutil
import urllib.request

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from demo.services import origin_in_words
from demo.tools.app_process import REPO, running_app
from perceptual_models import hub
from perceptual_models.image_io import load_image, quantize, resize_longer_side, rgb_to_ycbcr
from perceptual_models.inference import SR_LABELS, SR_METHODS, sr_model_name
from perceptual_models.networks import from_pretrained

from bad_inputs import write_bad_inputs
from conftest import VGG_FILE

EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"
STYLES = [name.split("/", 1)[1] for name in hub.model_names() if name.startswith("style/")]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, server log) of the app as on a fresh offline install: no PERCEPTUAL_VGG_WEIGHTS, an empty
    HF cache (conftest), no network; Gatys and the reconstructions run on the bundled loss network."""
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_VGG_WEIGHTS": ""}
    folder = tmp_path_factory.mktemp("app")
    with running_app(folder, **env) as (url, _):
        yield url, folder / "app.log"


@pytest.fixture(scope="module")
def client(app):
    return Client(app[0], verbose=False)


def _table(value: dict) -> list[dict]:
    return [dict(zip(value["headers"], row)) for row in value["data"]]


def _page_value(url: str, elem_id: str):
    """What the page shows in a component when it opens (from Gradio's /config)."""
    config = json.loads(urllib.request.urlopen(f"{url}config", timeout=10).read())
    return next(c["props"]["value"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)


ABSOLUTE_PATH = re.compile(r"(^|[\s(=:'\"])/[\w.-]")  # "/tmp/x", "(/work": a server path; "repo/name" is not


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


def test_stylize_controls_through_the_api(client):
    """The controls are parameters appended after the older ones (whose calls above still work): each
    one's defining property, and bad values refused in words (the log check below: no traceback)."""
    photo = handle_file(str(EXAMPLE))

    def run(style=STYLES[0], **controls):
        image, timing, _ = client.predict(photo, style, 128, api_name="/stylize", **controls)
        return load_image(image), _table(timing)[0]["method"]

    plain, method = run()
    assert method == f"Feed-forward, {STYLES[0]}"
    assert torch.equal(run(strength=1.0)[0], plain)
    assert torch.equal(run(strength=0.0)[0], quantize(resize_longer_side(load_image(EXAMPLE), 128)))
    assert torch.equal(run(mix_style=STYLES[1], mix=0.0)[0], plain)
    assert torch.equal(run(mix_style=STYLES[1], mix=1.0)[0], run(STYLES[1])[0])
    kept, method = run(preserve_color=True)
    photo_chroma = rgb_to_ycbcr(resize_longer_side(load_image(EXAMPLE), 128))[:, 1:]
    assert (rgb_to_ycbcr(kept)[:, 1:] - photo_chroma).abs().mean() < 1.5 / 255 and "photo's colours" in method
    larger, method = run(stroke=2.0)
    assert larger.shape[-2:] == (128, 128) and re.search(r"stroke 2x \(network \d\.\d{3} s at 64x64, controls", method)
    with pytest.raises(AppError, match="strength goes from 0 \\(the photo\\) to 1"):
        run(strength=1.5)
    with pytest.raises(AppError, match="Style 'cubism' is unavailable"):
        run(mix_style="cubism", mix=0.5)


def test_gatys_streams_progress_and_reports_the_speedup(client):
    job = client.submit(handle_file(str(EXAMPLE)), STYLES[0], None, 128, 10, api_name="/gatys")
    updates = list(job)
    assert len(updates) >= 3  # intermediate images arrive before the end
    image, status, _, timing = updates[-1]
    assert Image.open(image).size == (128, 128) and "Done" in status and "10 / 10" in status
    gatys = _table(timing)[-1]
    assert gatys["method"].startswith("Gatys") and float(gatys["seconds"]) > 0
    # One objective on both sides: the optimization minimises what the style's network was trained on.
    trained_on = from_pretrained(f"style/{STYLES[0]}", hub.HubSettings(offline=True))[1]["task"]["style_weight"]
    assert f"style weight {trained_on:.3g}" in gatys["method"]
    # Against a network pass at the same size, timed warm after the run (not whichever run came last).
    speedup, network_seconds = re.fullmatch(r"(\d+)x vs\. (\d+\.\d{3}) s", gatys["speed-up"]).groups()
    assert float(gatys["seconds"]) / float(network_seconds) == pytest.approx(int(speedup), rel=0.1, abs=1)


def test_a_typed_style_name_cannot_reach_other_files(client):
    """The style box takes typed values, and names are joined to folders: a path is refused in words."""
    with pytest.raises(AppError, match="is not a model or style name"):
        client.submit(handle_file(str(EXAMPLE)), "../../../demo/examples/chelsea", None, 128, 10,
                      api_name="/gatys").result()


def test_upscale_compares_every_method_with_metrics(client):
    results, crops, metrics, note = client.predict(handle_file(str(EXAMPLE)), "hr", "x4", "bicubic", 0.5, 0.5,
                                                   True, api_name="/upscale")
    captions = [item["caption"] for item in results]
    assert len(results) == 5 and captions[-1] == "Original" and re.fullmatch(r"Bicubic: \d+\.\d\d dB", captions[0])
    assert {Image.open(item["image"]).size for item in results} == {(512, 512)}
    rows = _table(metrics)
    assert [r["method"] for r in rows] == ["Bicubic", "SRCNN-style", "Ours, l_pixel", "Ours, l_feat"]
    assert all(20 < float(r["PSNR (dB)"]) < 50 and 0 < float(r["SSIM"]) <= 1 for r in rows)
    assert all(float(r["seconds"]) > 0 and float(r["PSNR/SSIM seconds"]) > 0 for r in rows)
    assert len(crops) == 6 and "input 128x128 px" in note and re.search(r"PSNR/SSIM \d+\.\d s", note)


def test_upscale_a_low_resolution_image_without_metrics(client):
    results, crops, metrics, note = client.predict(handle_file(str(EXAMPLE)), "lr", "x8",
                                                   "bicubic", 0.5, 0.5, False, api_name="/upscale")
    assert Image.open(results[0]["image"]).size == (2048, 2048)  # 512 px capped to 256 px first
    assert "downscaled to 256x256" in note
    rows = _table(metrics)
    assert all(r["PSNR (dB)"] == r["SSIM"] == r["PSNR/SSIM seconds"] == "-" for r in rows)
    # Only the methods that have an x8 model, no error rows; no ground truth shown.
    expected = [SR_LABELS[m] for m in SR_METHODS if m == "bicubic" or sr_model_name(m, 8) in hub.model_names()]
    assert [r["method"] for r in rows] == [item["caption"] for item in results] == expected
    assert len(crops) == len(expected) + 1 and "unavailable" not in note


def test_upscale_of_an_animation_or_a_bad_file_says_what_happened(client, tmp_path):
    cases = write_bad_inputs(tmp_path)
    *_, note = client.predict(handle_file(str(cases["animated_gif"][0])), "hr", "x4", "bicubic", 0.5, 0.5, True,
                              api_name="/upscale")
    assert "the first frame of 2 was used" in note
    path, expected = cases["text_renamed"]
    with pytest.raises(AppError, match=expected):
        client.predict(handle_file(str(path)), "hr", "x4", "bicubic", 0.5, 0.5, True, api_name="/upscale")
    four = tmp_path / "four.png"  # a low-res input too small for the networks' padding (it crashed them)
    Image.new("RGB", (4, 4), "gray").save(four)
    with pytest.raises(AppError, match="only 4x4 pixels; at least 8"):
        client.predict(handle_file(str(four)), "lr", "x4", "bicubic", 0.5, 0.5, True, api_name="/upscale")


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


def test_a_user_error_logs_one_line_without_a_traceback(app, client, tmp_path):
    path, expected = write_bad_inputs(tmp_path)["text_renamed"]
    log = app[1].read_text()
    with pytest.raises(AppError, match=expected):
        client.predict(handle_file(str(path)), STYLES[0], 128, api_name="/stylize")
    lines = [line for line in app[1].read_text()[len(log):].splitlines() if expected in line]
    assert len(lines) == 1 and "on_stylize" in lines[0]
    assert "Traceback" not in app[1].read_text()  # nor for any earlier bad upload of this module


def test_origins_are_said_in_words_without_paths():
    assert origin_in_words("bundled") == "bundled"
    assert origin_in_words("hub org/models@v1") == "Hub org/models@v1"
    assert origin_in_words("hub cache org/models@v1") == "Hub org/models@v1 (cached)"
    assert origin_in_words("local dir /srv/weights") == "folder set by PERCEPTUAL_WEIGHTS_DIR"
    assert origin_in_words(f"file {VGG_FILE}") == "file set by PERCEPTUAL_VGG_WEIGHTS"
    assert not ABSOLUTE_PATH.search(origin_in_words("something new /srv/x"))


def test_missing_and_corrupt_weights_leave_the_rest_working(tmp_path):
    broken = tmp_path / "weights"
    (broken / "style").mkdir(parents=True)
    (broken / "style" / f"{STYLES[0]}.safetensors").write_bytes(b"\x00" * 100)  # corrupt
    shutil.copy(hub.BUNDLED_DIR / "style" / f"{STYLES[0]}.json", broken / "style" / f"{STYLES[0]}.json")
    for suffix in (".safetensors", ".json"):  # and a good one, served from this folder
        shutil.copy(hub.BUNDLED_DIR / "style" / f"{STYLES[1]}{suffix}", broken / "style" / f"{STYLES[1]}{suffix}")
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_WEIGHTS_DIR": str(broken), "PERCEPTUAL_VGG_WEIGHTS": str(tmp_path / "none.safetensors")}
    with running_app(tmp_path / "app", **env) as (url, _):
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match=f"Style '{STYLES[0]}' is unavailable: its weights file could not be read"):
            client.predict(handle_file(str(EXAMPLE)), STYLES[0], 128, api_name="/stylize")
        image, _, _ = client.predict(handle_file(str(EXAMPLE)), STYLES[1], 128, api_name="/stylize")
        assert Image.open(image).size == (128, 128)
        with pytest.raises(AppError, match="Optimization is unavailable: the VGG-16 loss network could not be loaded"):
            client.submit(handle_file(str(EXAMPLE)), STYLES[1], None, 128, 10, api_name="/gatys").result()

        # Where each model came from, and why one is broken, in words: the paths stay in the log.
        status, models = _page_value(url, "status-line"), _table(_page_value(url, "model-status"))
        assert "folder set by PERCEPTUAL_WEIGHTS_DIR" in status and "VGG-16 unavailable" in status
        assert re.search(r"Runtime:\W+\d+ threads", status)  # app.py's runtime.configure, once
        reasons = {row["model"]: row["source / reason"] for row in models}
        assert reasons[f"style/{STYLES[1]}"] == "folder set by PERCEPTUAL_WEIGHTS_DIR"
        assert reasons[f"style/{STYLES[0]}"].startswith("its weights file could not be read")
        for text in (status, *reasons.values()):
            assert not ABSOLUTE_PATH.search(text) and str(tmp_path) not in text, text
        assert str(broken) in (tmp_path / "app" / "app.log").read_text()


def test_only_the_projects_errors_become_user_messages(caplog):
    """A `PerceptualError` is shown as it is; any other exception is a bug: logged with its
    traceback, and the page gets a short generic message (no internals)."""
    import gradio as gr

    from demo.widgets import SERVER_FAULT, user_errors
    from perceptual_models.errors import ImageError

    @user_errors
    def fixable():
        raise ImageError("This file is not an image we can read.")

    @user_errors
    def buggy(steps):
        yield from steps
        raise ValueError("list index 7 out of range")

    with pytest.raises(gr.Error, match="not an image we can read"):
        fixable()
    steps = buggy([1, 2])
    assert [next(steps), next(steps)] == [1, 2]  # what came before the bug still arrives
    with caplog.at_level("INFO", logger="perceptual_losses.app"), pytest.raises(gr.Error) as error:
        next(steps)
    assert error.value.message == SERVER_FAULT
    assert "list index 7 out of range" in caplog.text and "Traceback" in caplog.text


def test_upscale_takes_values_not_labels(client):
    """The API takes the short values ("hr"/"lr"); a label, free to change on the page, is refused.
    Last in the module: Gradio logs a traceback for a refused value, which the log check above forbids."""
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(handle_file(str(EXAMPLE)), "High-resolution", "x4", "bicubic", 0.5, 0.5, True,
                       api_name="/upscale")
