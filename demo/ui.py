"""The Gradio interface: one module per tab over `demo.services.Services`, assembled here.

    style_tab.py    Style transfer: feed-forward network vs Gatys      /stylize, /gatys
    live_tab.py     Live camera and video files                        /stylize_video
    sr_tab.py       Super-resolution                                   /upscale
    train_tab.py    Train your own style (background jobs)             /train_style, /train_progress
    gallery_tab.py  precomputed results and the paper's tables
    explain_tab.py  How it works, Figure 3                             /reconstruct

Every action has an `api_name`, so the same calls work from `gradio_client`; `widgets.py` holds
what the callbacks share (how errors reach the page, output files).
"""

from __future__ import annotations

import gradio as gr

from .explain_tab import build_explain_tab
from .gallery_tab import build_gallery_tab
from .live_tab import build_live_tab
from .services import Services
from .sr_tab import build_sr_tab
from .style_tab import build_style_tab, style_thumbnails
from .train_tab import build_train_tab
from .training import TrainingJobs
from .widgets import HERE

# CSS and the page script go to launch() (Gradio 6 takes them there, not in Blocks).
PAGE_ASSETS = {"css_paths": [HERE / "style.css"], "js": (HERE / "page.js").read_text()}


def launch_options(jobs: TrainingJobs | None) -> dict:
    """What `launch()` needs besides host and port: the page's CSS and script, and the folder of the
    styles trained here (Gradio serves files only from the working and temporary folders and these)."""
    return {**PAGE_ASSETS, "allowed_paths": [str(jobs.models_dir)] if jobs is not None else []}


def build_demo(services: Services, jobs: TrainingJobs | None = None) -> gr.Blocks:
    """The whole page. Without `jobs` there is no training tab (e.g. on ZeroGPU, where no job can run)."""
    with gr.Blocks(title="Perceptual Losses (Johnson et al. 2016)", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# Perceptual losses for real-time style transfer and super-resolution\n"
            "A hands-on reproduction of Johnson, Alahi & Fei-Fei (ECCV 2016, "
            "[arXiv 1603.08155](https://arxiv.org/abs/1603.08155)): image transformation networks trained "
            "with losses computed by a fixed VGG-16, compared with the methods they replace.",
            elem_id="intro",
        )
        style = build_style_tab(services)
        live_style = build_live_tab(services)
        build_sr_tab(services)
        # Every list of styles on the page: a newly trained style joins them all.
        style_lists = [style.style, style.style_gallery, live_style]

        def refresh_styles():
            names = services.style_names()
            return gr.update(choices=names), gr.update(value=style_thumbnails(services)), gr.update(choices=names)

        if jobs is not None:
            build_train_tab(demo, services, jobs, style_lists, refresh_styles)
        build_gallery_tab()
        build_explain_tab(services)

        # Below the tabs: a student needs the buttons first; a teacher finds the models here.
        status = gr.Markdown(services.status_line(), elem_id="status-line")
        with gr.Accordion("Models: where each came from, or why it is unavailable", open=False):
            models = gr.Dataframe(services.model_table(), headers=["model", "status", "source / reason"],
                                  interactive=False, wrap=True, elem_id="model-status")

        def on_load():
            """What may have changed since the page was built: the status, styles trained meanwhile."""
            return services.status_line(), services.model_table(), *refresh_styles()

        demo.load(on_load, None, [status, models, *style_lists], api_visibility="private")
    # The tabs' container exists once the Blocks are closed. On a phone, Gradio's default ("menu")
    # hides every tab that does not fit behind "..."; wrapped, they all stay in sight.
    style.tab.parent.overflow_behavior = "wrap"
    return demo

