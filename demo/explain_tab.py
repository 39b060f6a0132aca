"""The "How it works" tab: the explainer, and the paper's Figure 3 (what the loss network sees)."""

from __future__ import annotations

import gradio as gr

from perceptual_models.losses import PAPER_STYLE_LAYERS

from .components import UploadedImage
from .gpu import on_gpu
from .services import Services
from .widgets import EXAMPLES, HERE, as_file, in_page, user_errors


class ExplainHandlers:
    """The tab's callback, a plain method over `services`: callable without a server. `build_explain_tab`
    wraps it around the bound method, so that on ZeroGPU only a call's arguments cross to the GPU worker."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def on_reconstruct(self, upload, layer, mode, iterations):
        image, _ = self.services.read_image(upload, "an image")
        for progress in self.services.reconstruct(image, layer, "feature" if mode.startswith("Feature") else "style",
                                                  192, int(iterations)):
            yield as_file(progress.image), (f"iteration {progress.iteration} / {int(iterations)}, "
                                           f"{progress.elapsed:.1f} s")


def build_explain_tab(services: Services) -> None:
    """The tab's layout and events; call inside a `gr.Blocks` (demo/ui.py does)."""
    handlers = ExplainHandlers(services)
    with gr.Tab("How it works", id="explain"):
        gr.Markdown((HERE / "explainer.md").read_text())
        with gr.Accordion("What does the loss network see? (the paper's Figure 3)", open=True):
            gr.Markdown("Start from noise and optimise an image so that one VGG-16 layer's **features** "
                        "(or **Gram matrices**, up to that layer) match those of the photo. Deeper feature "
                        "layers keep the shapes but not the exact colours and textures; Gram matrices keep "
                        "textures and colours but lose the layout.")
            with gr.Row():
                recon_input = UploadedImage(label="Image", type="filepath", height=220)
                with gr.Column():
                    recon_layer = gr.Dropdown(list(PAPER_STYLE_LAYERS), value="relu2_2", label="Layer")
                    recon_mode = gr.Radio(["Feature reconstruction", "Style (Gram) reconstruction"],
                                          value="Feature reconstruction", label="Match")
                    recon_iters = gr.Slider(20, 300, value=100, step=10, label="Iterations")
                    run_recon = gr.Button("Reconstruct", variant="primary")
                recon_out = gr.Image(label="Reconstruction", format="png", height=220)
            recon_status = gr.Markdown()
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES[:2]], inputs=[recon_input])
    run_recon.click(in_page(on_gpu()(user_errors(handlers.on_reconstruct))),
                    [recon_input, recon_layer, recon_mode, recon_iters], [recon_out, recon_status],
                    api_name="reconstruct", concurrency_limit=1, concurrency_id="optimization")
