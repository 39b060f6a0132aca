"""Gradio components of our own (Gradio writes a .pyi type stub beside this file when imported)."""

from __future__ import annotations

import base64
from typing import Any

import gradio as gr


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
