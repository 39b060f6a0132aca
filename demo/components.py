"""Gradio components of our own (Gradio writes a .pyi type stub beside this file when imported)."""

from __future__ import annotations

import base64
from typing import Any

import gradio as gr
from gradio.data_classes import ImageData


class UploadedImage(gr.Image):
    """An image input whose upload reaches `perceptual_models.image_io` untouched.

    `gr.Image` opens every upload with PIL before the app sees it, so a fake, truncated or
    decompression-bomb file would fail inside Gradio with a generic error; our decoder gives the
    clear message instead. `is_template` keeps Gradio's own image widget in the browser.
    """

    is_template = True

    def preprocess(self, payload: Any) -> str | bytes | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[1])
        return payload.path


class LiveCamera(gr.Image):
    """The streaming camera: hands the browser's JPEG to `perceptual_models.video` as bytes.

    `gr.Image` would decode every frame to a full-size array first; the library decodes it already
    shrunk to the output size (JPEG draft mode).
    """

    is_template = True

    def preprocess(self, payload: Any) -> bytes | None:
        if payload is None or not payload.url or not payload.url.startswith("data:"):
            return None
        return base64.b64decode(payload.url.split(",", 1)[1])


class LiveFrame(gr.Image):
    """A stream output shown from JPEG bytes as a data URL, with no file written per frame.

    `gr.Image` writes every returned frame into Gradio's cache and the browser fetches it back.
    """

    is_template = True

    def postprocess(self, value: tuple[bytes, int] | None) -> ImageData | None:
        """(JPEG, size in bytes of the camera frame it was made from): the size tags the data URL, so
        the page can tell which grabbed frame came back (Gradio sends a new one before the last returns)."""
        if value is None:
            return None
        jpeg, source_bytes = value
        url = f"data:image/jpeg;source-bytes={source_bytes};base64," + base64.b64encode(jpeg).decode("ascii")
        return ImageData(url=url, mime_type="image/jpeg")


class ControlSlider(gr.Slider):
    """A slider whose value reaches `StyleControls.validate` as sent, so an API caller's out-of-range
    value gets the project's message (what the control means and its range), not Gradio's range
    error with a traceback in the server log."""

    is_template = True

    def preprocess(self, payload: float) -> float:
        return payload
