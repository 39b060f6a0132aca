"""The Gallery tab: precomputed results and the paper's tables reproduced (demo/tools/build_gallery.py)."""

from __future__ import annotations

import json

import gradio as gr

from .widgets import HERE

GALLERY = HERE / "gallery"
SERVICE_CHECK = GALLERY / "gpu_service_check.json"  # `python -m demo.tools.service_check` on a lent GPU, when one was


def build_gallery_tab() -> None:
    with gr.Tab("Gallery", id="gallery"):
        _sections()
        if SERVICE_CHECK.is_file():
            gr.Markdown("### The app itself on a GPU\n" + service_check_markdown(json.loads(SERVICE_CHECK.read_text())),
                        elem_classes="gallery-tables", elem_id="gpu-service-check")


def _sections() -> None:
    """Precomputed results and our reproduction of the paper's tables (built by demo/tools/build_gallery.py)."""
    index = GALLERY / "index.json"
    if not index.is_file():
        gr.Markdown("The gallery has not been built yet: run `python -m demo.tools.build_gallery`.")
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


def service_check_markdown(report: dict) -> str:
    """The report of `python -m demo.tools.service_check` as the Gallery shows it."""
    networks = "compiled" if report["compiled"] else "eager"
    intro = (f"On {report['device']} (torch {report['torch']}, {networks} networks), {report['date']}, through the "
             "app's own service layer (`python -m demo.tools.service_check`).")
    lines = [intro, "", "| action | seconds |", "| --- | --- |"]
    lines += [f"| stylise {row['size']} px | {row['median_s']:.4f} (first {row['first_s']:.3f}) |" for row in report["stylize"]]
    gatys = report["gatys"]
    lines.append(f"| Gatys {gatys['size']} px, {gatys['iterations']} iterations | {gatys['seconds']:.2f} "
                 f"({gatys['per_iteration_s']:.4f} per iteration) |")
    for row in report["super_resolution"]:
        methods = ", ".join(f"{m['method']} {m['seconds']:.3f} s, {m['psnr']:.2f} dB" for m in row["methods"])
        lines.append(f"| super-resolution x{row['scale']} of {row['input']}, with PSNR/SSIM | {row['seconds']:.2f} ({methods}) |")
    recon = report["reconstruction"]
    lines.append(f"| reconstruction {recon['layer']} at {recon['size']} px, {recon['iterations']} iterations | "
                 f"{recon['seconds']:.2f} |")
    live = report["live"]
    lines.append(f"| live frame at {live['size']} px (JPEG in and out) | {live['median_ms'] / 1000:.4f} "
                 f"({live['frames_per_s']:.0f} frames/s) |")
    return "\n".join(lines)
