"""The Gallery tab: precomputed results and our reproduction of the paper's tables (demo/build_gallery.py)."""

from __future__ import annotations

import json

import gradio as gr

from .service_check import markdown as service_check_markdown
from .widgets import HERE

GALLERY = HERE / "gallery"
SERVICE_CHECK = GALLERY / "gpu_service_check.json"  # `python -m demo.service_check` on a lent GPU, when one was


def build_gallery_tab() -> None:
    with gr.Tab("Gallery", id="gallery"):
        _sections()
        if SERVICE_CHECK.is_file():
            gr.Markdown("### The app itself on a GPU\n" + service_check_markdown(json.loads(SERVICE_CHECK.read_text())),
                        elem_classes="gallery-tables", elem_id="gpu-service-check")


def _sections() -> None:
    """Precomputed results and our reproduction of the paper's tables (built by demo/build_gallery.py)."""
    index = GALLERY / "index.json"
    if not index.is_file():
        gr.Markdown("The gallery has not been built yet: run `python -m demo.build_gallery`.")
        return
    data = json.loads(index.read_text())
    gr.Markdown(data.get("intro", ""))
    for section in data.get("sections", []):
        gr.Markdown(f"### {section['title']}\n{section.get('text', '')}")
        if section.get("columns") == 1:  # wide comparison strips: a gallery grid would squash them
            for item in section.get("images", []):
                gr.Image(str(GALLERY / item["file"]), label=item["caption"], interactive=False)
        elif section.get("images"):
            gr.Gallery([(str(GALLERY / item["file"]), item["caption"]) for item in section["images"]],
                       columns=section.get("columns", 4), height="auto", object_fit="contain",
                       allow_preview=True, show_label=False, elem_classes="full-grid")
        if section.get("markdown"):
            gr.Markdown(section["markdown"], elem_classes="gallery-tables")
