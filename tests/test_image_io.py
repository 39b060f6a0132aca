import io

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_models.image_io import (
    ImageError,
    crop_to_multiple,
    degrade,
    fit_size,
    frame_count,
    load_image,
    resize,
    resize_longer_side,
    rgb_to_y,
    rgb_to_ycbcr,
    save_image,
    to_uint8,
    ycbcr_to_rgb,
)

from bad_inputs import png_claiming_size


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _gradient(width: int = 40, height: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, 1)
    return np.stack([x, y, 255 - x], axis=2).round().astype(np.uint8)


def test_every_source_kind_gives_the_same_tensor(tmp_path):
    array = _gradient()
    path = tmp_path / "g.png"
    Image.fromarray(array).save(path)
    from_path = load_image(path)
    assert from_path.shape == (1, 3, 30, 40) and from_path.dtype == torch.float32
    for source in (str(path), path.read_bytes(), Image.open(path), array):
        assert torch.equal(load_image(source), from_path)
    assert float(from_path.min()) == 0.0 and float(from_path.max()) == 1.0


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :10] = (255, 0, 0)  # red band on the left of the stored pixels
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = load_image(path)
    assert loaded.shape[-2:] == (40, 20)  # portrait after rotation
    top = loaded[0, :, :8, :].mean(dim=(1, 2))  # the red band is now on top
    assert top[0] > 0.8 and top[1] < 0.2


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA"])
def test_colour_modes_load_as_rgb(mode):
    rgb = Image.fromarray(_gradient())
    image = rgb.convert(mode)
    loaded = load_image(_png_bytes(image))
    assert loaded.shape == (1, 3, 30, 40)
    expected = load_image(_png_bytes(image.convert("RGB")))
    assert (loaded - expected).abs().max() < 1 / 255 + 1e-6


def test_transparency_becomes_white():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:8, :, 3] = 255  # top half opaque, bottom half fully transparent
    loaded = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert torch.allclose(loaded[0, :, 0, 0], torch.tensor([10, 20, 30]) / 255)
    assert torch.allclose(loaded[0, :, -1, -1], torch.ones(3))


def test_sixteen_bit_png_keeps_its_values():
    values = np.array([[0, 16384, 32768, 65535]] * 8, dtype=np.uint16).repeat(2, axis=1)
    loaded = load_image(_png_bytes(Image.fromarray(values)))
    expected = torch.tensor([0, 16384, 32768, 65535], dtype=torch.float32) / 65535
    assert torch.allclose(loaded[0, 0, 0, ::2], expected, atol=1e-6)
    assert torch.equal(loaded[0, 0], loaded[0, 2])  # gray: all channels equal


def test_cmyk_jpeg_has_correct_colours():
    colours = {"red": (220, 30, 40), "green": (40, 180, 60), "blue": (30, 60, 200)}
    array = np.concatenate([np.full((16, 16, 3), c, np.uint8) for c in colours.values()], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(array).convert("CMYK").save(buffer, format="JPEG", quality=98)
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "CMYK"
    loaded = to_uint8(load_image(buffer.getvalue())).astype(int)
    for i, colour in enumerate(colours.values()):
        centre = loaded[8, 16 * i + 8]
        assert np.abs(centre - np.array(colour)).max() < 12, (centre, colour)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    loaded = load_image(buffer.getvalue())
    assert loaded[0, 0].mean() > 0.9 and loaded[0, 2].mean() < 0.1
    assert frame_count(buffer.getvalue()) == 2 and frame_count(Image.open(buffer)) == 2
    assert frame_count(_png_bytes(frames[0])) == 1 and frame_count(np.zeros((4, 4, 3))) == 1
    assert frame_count(b"not an image") == 1  # load_image is the one that explains


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"this is plain text, not a PNG", "not an image"),
        (b"", "empty"),
        (_png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))[:2000],
         "damaged or truncated"),
        (png_claiming_size(20000, 20000), "too large"),
        (png_claiming_size(9000, 9000), "limit is 40 MP"),
        (_png_bytes(Image.new("RGB", (1, 1))), "at least 8 pixels"),
    ],
    ids=["text", "empty", "truncated", "bomb", "over-budget", "one-pixel"],
)
def test_unusable_files_give_clear_errors(tmp_path, payload, message):
    path = tmp_path / "upload.png"
    path.write_bytes(payload)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_pixel_budget_is_configurable():
    image = _png_bytes(Image.new("RGB", (100, 100)))
    assert load_image(image, max_pixels=10_000).shape[-1] == 100
    with pytest.raises(ImageError, match="100x100"):
        load_image(image, max_pixels=9_999)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImageError, match="No such image file"):
        load_image(tmp_path / "nope.jpg")


def test_resize_matches_pil_bicubic():
    array = _gradient(97, 61)
    tensor = load_image(array)
    for size in ((30, 48), (122, 194)):  # down (antialiased) and up
        ours = to_uint8(resize(tensor, size)).astype(int)
        pil = np.asarray(Image.fromarray(array).resize(size[::-1], Image.BICUBIC)).astype(int)
        assert np.abs(ours - pil).max() <= 3
        assert np.abs(ours - pil).mean() < 0.5


def test_longer_side_keeps_aspect():
    image = torch.rand(1, 3, 300, 200)
    assert resize_longer_side(image, 150).shape[-2:] == (150, 100)
    assert fit_size(200, 300, 256) == (171, 256)


def test_luma_is_bt601_studio_range():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_y(white).item() * 255 == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(black).item() * 255 == pytest.approx(16.0, abs=1e-3)
    image = torch.rand(1, 3, 8, 8)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(image)), image, atol=1e-5)


def test_degradation_shapes_and_protocol():
    hr = crop_to_multiple(torch.rand(1, 3, 50, 43), 4)
    assert hr.shape[-2:] == (48, 40)
    lr = degrade(hr, 4)
    assert lr.shape[-2:] == (12, 10)
    assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit levels
    with pytest.raises(ValueError, match="multiple of the scale"):
        degrade(torch.rand(1, 3, 50, 43), 4)


def test_save_round_trip(tmp_path):
    image = load_image(_gradient())
    save_image(image, tmp_path / "sub" / "out.png")
    assert torch.equal(load_image(tmp_path / "sub" / "out.png"), image)
    save_image(image, tmp_path / "out.jpg")
    assert (load_image(tmp_path / "out.jpg") - image).abs().mean() < 0.02
