"""The paper's Figure 5 check: does one pass of a trained style network reach the objective that
Gatys et al.'s optimisation reaches after 50-100 L-BFGS iterations?

    python -m train.compare_gatys --model style/starry_night --images demo/examples/*.jpg --size 256

Both are scored with the objective the network was trained on (its config's layers and weights),
on the same images at the same size; Gatys starts from the content image (our default) or noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from perceptual_models import hub
from perceptual_models.cli import positive_int, positive_ints
from perceptual_models.errors import ConfigError, PerceptualError
from perceptual_models.gatys import GatysSettings, network_objective, run
from perceptual_models.image_io import load_image, resize_longer_side
from perceptual_models.inference import Runner
from perceptual_models.losses import PerceptualLoss, Targets
from perceptual_models.vgg import load_loss_network


def score(objective: PerceptualLoss, image: torch.Tensor, targets: Targets) -> dict[str, float]:
    with torch.no_grad():
        return {k: float(v) for k, v in objective(image, targets).items()}


def require_style_network(runner: Runner, model: str) -> None:
    """The objective comparison and the audit score a style network against its own style image."""
    if runner.config["architecture"] != "transformer":
        raise ConfigError(f"{model} is not a style network (style/NAME or a style model file).")


def compare(model: str, images: list[Path], size: int, iterations: list[int], init: str,
            settings: hub.HubSettings, style_path: Path | None = None) -> dict:
    runner = Runner.load(model, torch.device("cpu"), "exact", settings)
    require_style_network(runner, model)
    task = runner.config["task"]
    if style_path is None:
        found = hub.resolve_style_image(Path(task['style_image']).stem, settings)
        if found is None:
            raise ConfigError(f"No style image found for {model}; pass --style.")
        style_path = found[0]
    trained_on, style_size = network_objective(runner.config)
    style = resize_longer_side(load_image(style_path), style_size)
    network = load_loss_network(trained_on.layers, settings=settings)
    objective = trained_on.make_loss(network)
    objective.set_style(style)
    settings = GatysSettings(iterations=max(iterations), objective=trained_on, init=init, report_every=1)
    rows = {"network": [], **{f"gatys_{n}": [] for n in iterations}}
    for path in images:
        content = resize_longer_side(load_image(path), size)
        targets = objective.targets(content)

        rows["network"].append(score(objective, runner(content), targets))
        for progress in run(content, style, network, settings):
            if progress.iteration in iterations:
                rows[f"gatys_{progress.iteration}"].append(score(objective, progress.image, targets))
    mean = {name: {k: sum(r[k] for r in values) / len(values) for k in ("total", "content", "style")}
            for name, values in rows.items()}
    return {"model": model, "size": size, "images": [p.name for p in images], "gatys_init": init, "mean": mean}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m train.compare_gatys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", nargs="+", type=Path, required=True)
    parser.add_argument("--size", type=positive_int, default=256)
    parser.add_argument("--iters", type=positive_ints, default="50,100,300")
    parser.add_argument("--init", default="content", choices=["content", "noise"])
    parser.add_argument("--style", type=Path, default=None, help="the style image trained on (default: bundled copy)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:  # a model or image we cannot use is a usage error, not a traceback
        result = compare(args.model, args.images, args.size, args.iters, args.init, hub.HubSettings.from_env(),
                         args.style)
    except PerceptualError as exc:
        parser.error(str(exc))
    print(f"{args.model} at {args.size} px, mean over {len(args.images)} images (Gatys init: {args.init})")
    print(f"{'':<14}{'total':>12}{'content':>12}{'style':>12}")
    for name, values in result["mean"].items():
        print(f"{name:<14}{values['total']:>12.4g}{values['content']:>12.4g}{values['style']:>12.4g}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
