"""One trained network as an entry of a weights folder in the Hub layout that hub.py reads: fp16
safetensors, its JSON config and a Markdown model card. The app's "Train your own style" tab saves its
models so, and `hub export` the Hub folder's (whose repo card and manifest tools/publish.py writes).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .networks import load_from_files, save_pretrained

PAPER = "https://arxiv.org/abs/1603.08155"

# The works behind the bundled style images (all public domain); others are not redistributed.
STYLE_SOURCES = {
    "starry_night": "The Starry Night, Vincent van Gogh, 1889 (public domain)",
    "the_scream": "The Scream, Edvard Munch, 1893 (public domain)",
    "wave": "The Great Wave off Kanagawa, Katsushika Hokusai, c. 1831 (public domain)",
    "composition_vii": "Composition VII, Wassily Kandinsky, 1913 (public domain)",
    "udnie": "Udnie (Young American Girl, The Dance), Francis Picabia, 1913 (public domain in most countries)",
}


def _describe(config: dict) -> list[str]:
    task, training = config.get("task", {}), config.get("training", {})
    lines = [
        f"- **Architecture**: `{config['architecture']}` {json.dumps(config.get('params', {}))}",
        f"- **Task**: {json.dumps(task)}",
        (f"- **Training**: {training.get('iterations')} iterations, batch {training.get('batch_size_per_process')} "
         f"x {training.get('processes', 1)} process(es), {training.get('optimizer')}, on {training.get('device')}"
         f"{' (bf16)' if training.get('bf16') else ''}, {training.get('seconds')} s; "
         f"data: {training.get('photos')} photos ({', '.join(Path(d).name for d in training.get('data', []))})"),
    ]
    if task.get("task") == "style":
        lines.append(f"- **Objective**: content {task['content_weight']:g} x feature loss + style {task['style_weight']:.3g} "
                     f"x style loss + TV {task['tv_weight']:g} x TV; the app's optimization (Gatys et al.) minimises "
                     "this same objective for this style, so the comparison is one objective on both sides")
        if task.get("stability_weight"):
            lines.append(f"- **Stability**: trained with {task['stability_weight']:g} x the output's mean squared change "
                         f"under input noise of std {task['stability_sigma']:g} (steady on video)")
    if training.get("started_from"):  # --init-from: a path, named here as the model it is
        start = training["started_from"]
        lines.append(f"- **Started from**: `{Path(start['weights']).parent.name}/{Path(start['weights']).stem}` after its "
                     f"{start['iterations']} iterations (counted above)")
    if training.get("weights"):
        lines.append(f"- **Weights saved**: {training['weights']}")
    if training.get("note"):
        lines.append(f"- **Note**: {training['note']}")
    if config.get("loss_network"):
        net = config["loss_network"]
        lines.append(f"- **Loss network**: {net['arch']} ({net['format']} weights), layers {', '.join(net['layers'])}")
    losses = {k: float(f"{v:.4g}") for k, v in config.get("final_losses", {}).items() if v}
    lines.append(f"- **Final training losses** (mean of the last logged steps): {json.dumps(losses)}")
    for key, value in config.get("evaluation", {}).items():
        lines.append(f"- **{key}**: {value}")
    style = task.get("style_image", "")
    if style:
        stem = Path(style).stem
        lines.append(f"- **Style image**: {STYLE_SOURCES.get(stem, stem + ' (licence unknown: research/teaching use only)')}")
    return lines


def model_card(name: str, config: dict) -> str:
    """A short Markdown card for one model, generated from its JSON config."""
    title = f"Johnson et al., *Perceptual Losses for Real-Time Style Transfer and Super-Resolution* ({PAPER}), reproduced."
    return "\n".join([f"# {name}", "", title, "", *_describe(config), ""])


def export_model(trained: Path, name: str, folder: Path, evaluation: dict | None = None) -> Path:
    """Copy a trained `model.safetensors` into a Hub-layout folder as fp16, with config and card."""
    model, config = load_from_files(trained)
    if evaluation:
        config["evaluation"] = {**config.get("evaluation", {}), **evaluation}
    path = save_pretrained(model, config, folder / name, dtype=torch.float16)
    path.with_suffix(".md").write_text(model_card(name, json.loads(path.with_suffix(".json").read_text())))
    return path
