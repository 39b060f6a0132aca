"""The odd uploads a classroom produces, written to disk, with what the app must do with each.

`expected` is either "ok" (a correct result) or a phrase the clear error message must contain.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "demo" / "examples" / "astronaut.jpg"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims another size (how a decompression bomb starts)."""
    data = png_bytes(Image.new("L", (8, 8)))
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[33:]


def write_bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """{case: (file, expected)} for every case the issue lists."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.open(PHOTO).convert("RGB").resize((96, 64))
    cases: dict[str, tuple[bytes, str, str]] = {}
    cases["text_renamed"] = (b"Dear class, this is not a picture.\n", "png", "not an image")
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    cases["truncated"] = (png_bytes(noisy)[:2000], "png", "damaged or truncated")
    cases["zero_bytes"] = (b"", "png", "empty")
    cases["one_pixel"] = (png_bytes(Image.new("RGB", (1, 1), (200, 10, 10))), "png", "at least 8 pixels")
    cases["bomb_20000"] = (png_claiming_size(20000, 20000), "png", "too large")
    gray16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    cases["sixteen_bit"] = (png_bytes(Image.fromarray(gray16)), "png", "ok")
    buffer = io.BytesIO()
    photo.convert("CMYK").save(buffer, format="JPEG", quality=95)
    cases["cmyk"] = (buffer.getvalue(), "jpg", "ok")
    buffer = io.BytesIO()
    photo.save(buffer, format="GIF", save_all=True, append_images=[photo.rotate(180)], duration=200, loop=0)
    cases["animated_gif"] = (buffer.getvalue(), "gif", "ok")
    buffer = io.BytesIO()
    exif = photo.getexif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees: 64x96
    photo.save(buffer, format="JPEG", exif=exif, quality=95)
    cases["exif_rotated"] = (buffer.getvalue(), "jpg", "ok")
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    cases["rgba"] = (png_bytes(rgba), "png", "ok")

    written = {}
    for name, (data, suffix, expected) in cases.items():
        path = folder / f"{name}.{suffix}"
        path.write_bytes(data)
        written[name] = (path, expected)
    return written
