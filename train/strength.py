"""Paintings or filters? How much of its painting one pass of a style network paints, against Gatys et al.
on the same objective, and how steady it stays under camera noise: the measures of issue 30.

    python -m train.strength --model style/starry_night runs/starry/model.safetensors --out strength/

On held-out photos at --size (512 px), for the network and for Gatys after --gatys-iterations L-BFGS
iterations from the photo (the app's optimization) on the network's own objective:
- coarse style ratio: the style loss left when output, photo and painting are looked at shrunk 2x (where
  swirls and waves live, not fine hatching), over the photo's own style loss: 1 is the photo, 0 the painting;
- content distance: how far the output moved from the photo in relu3_3, over how far the painting is from it
  (the squared distances' ratio), at coarse scale and at full size (faces and text stay readable below 1);
- flicker: a still photo at 256 px through a noisy camera (30 frames, independent Gaussian noise of std 3/255):
  the mean frame-to-frame change of the output over that of the input.
Gatys images are cached in --out by objective, so rerunning for a new network costs only the network.
Writes strength.json and, per model, a contact sheet: photo | network | Gatys.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from perceptual_models.cli import positive_int
from perceptual_models.errors import ConfigError, PerceptualError
from perceptual_models.gatys import GatysSettings, network_objective, transfer
from perceptual_models.hub import HubSettings, resolve_style_image
from perceptual_models.image_io import load_image, resize, resize_longer_side, save_image, to_pil
from perceptual_models.inference import Runner
from perceptual_models.losses import StyleObjective, feature_loss, gram_matrix, style_loss
from perceptual_models.vgg import LossNetwork, load_loss_network

from .compare_gatys import require_style_network

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = [REPO / "demo" / "examples" / "astronaut.jpg", REPO / "demo" / "examples" / "rocket.jpg"]
DISTANCE_LAYER = "relu3_3"
FLICKER_FRAMES, FLICKER_SIGMA, FLICKER_SIZE = 30, 3 / 255, 256


@dataclass(frozen=True)
class Painting:
    """A network's style side: its objective and its painting at the size it was trained with."""

    name: str
    objective: StyleObjective
    image: torch.Tensor


def painting_of(runner: Runner, settings: HubSettings) -> Painting:
    name = Path(runner.config["task"]["style_image"]).stem
    found = resolve_style_image(name, settings)
    if found is None:
        raise ConfigError(f"No style image found for {name!r}.")
    objective, style_size = network_objective(runner.config)
    return Painting(name, objective, resize_longer_side(load_image(found[0]), style_size))


def half(image: torch.Tensor) -> torch.Tensor:
    return resize(image, (image.shape[-2] // 2, image.shape[-1] // 2))


@torch.no_grad()
def measures(network: LossNetwork, image: torch.Tensor, photo: torch.Tensor, painting: Painting) -> dict[str, float]:
    """Coarse style ratio, coarse and full-size content distance of `image`, a rendering of `photo`."""
    layers = painting.objective.style_layers

    def features(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return network(x, sorted({*layers, DISTANCE_LAYER}))

    def distance(x: dict, y: dict) -> float:
        return float(feature_loss(x[DISTANCE_LAYER], y[DISTANCE_LAYER]))

    result = {}
    for scale, (x, p) in {"coarse": (half(image), half(photo)), "full": (image, photo)}.items():
        fx, fp = features(x), features(p)
        fs = features(resize(painting.image if scale == "full" else half(painting.image), tuple(p.shape[-2:])))
        result[f"{scale}_content_distance"] = distance(fx, fp) / distance(fs, fp)
        if scale == "coarse":
            target = {layer: gram_matrix(f) for layer, f in features(half(painting.image)).items()}
            left = sum(float(style_loss(gram_matrix(fx[layer]), target[layer])) for layer in layers)
            own = sum(float(style_loss(gram_matrix(fp[layer]), target[layer])) for layer in layers)
            result["coarse_style_ratio"] = left / own
    return result


def flicker(render, photo: torch.Tensor, frames: int = FLICKER_FRAMES, sigma: float = FLICKER_SIGMA,
            seed: int = 0) -> float:
    """Mean frame-to-frame change of `render`'s outputs over that of its noisy inputs (a still scene)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = [(photo + sigma * torch.randn(photo.shape, generator=generator)).clamp(0, 1) for _ in range(frames)]
    outputs = [render(x) for x in inputs]

    def change(images: list[torch.Tensor]) -> float:
        return sum(float((b - a).abs().mean()) for a, b in itertools.pairwise(images)) / (len(images) - 1)

    return change(outputs) / change(inputs)


def gatys_image(network: LossNetwork, photo_path: Path, photo: torch.Tensor, painting: Painting, iterations: int,
                cache: Path) -> torch.Tensor:
    """Gatys from the photo on the network's objective, cached by painting, weight, photo, size and iterations."""
    weight = painting.objective.style_weight
    path = cache / f"{painting.name}_{weight:.4g}_{photo_path.stem}_{max(photo.shape[-2:])}_{iterations}.png"
    if not path.is_file():
        settings = GatysSettings(iterations=iterations, objective=painting.objective, report_every=iterations)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(transfer(photo, painting.image, network, settings).image, path)
    return load_image(path)


def sheet(rows: list[list[torch.Tensor]], tile: int = 320) -> Image.Image:
    """A contact sheet: one row per photo (photo | network | Gatys), each image fitted into a tile."""
    grid = Image.new("RGB", (len(rows[0]) * tile, len(rows) * tile), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            pil = to_pil(image)
            pil.thumbnail((tile, tile))
            grid.paste(pil, (c * tile + (tile - pil.width) // 2, r * tile + (tile - pil.height) // 2))
    return grid


def measure_model(model: str, photos: list[Path], size: int, iterations: int, out: Path,
                  settings: HubSettings) -> dict:
    runner = Runner.load(model, torch.device("cpu"), "fast", settings)
    require_style_network(runner, model)
    painting = painting_of(runner, settings)
    network = load_loss_network(sorted({*painting.objective.layers, DISTANCE_LAYER}), settings=settings)
    per_photo, rows = [], []
    for path in photos:
        photo = resize_longer_side(load_image(path), size)
        ours = runner(photo)
        gatys = gatys_image(network, path, photo, painting, iterations, out / "gatys")
        small = resize_longer_side(photo, FLICKER_SIZE)
        per_photo.append({"photo": path.name, "network": measures(network, ours, photo, painting),
                          "gatys": measures(network, gatys, photo, painting), "flicker": flicker(runner, small)})
        rows.append([photo, ours, gatys])
    names = ("coarse_style_ratio", "coarse_content_distance", "full_content_distance")
    mean = {side: {name: sum(p[side][name] for p in per_photo) / len(per_photo) for name in names}
            for side in ("network", "gatys")}
    result = {"model": model, "style": painting.name, "style_weight": painting.objective.style_weight,
              "size": size, "gatys_iterations": iterations, "mean": mean,
              "flicker": max(p["flicker"] for p in per_photo), "per_photo": per_photo}
    sheet_path = out / f"{painting.name}_{Path(model).stem if model.endswith('.safetensors') else 'bundled'}.jpg"
    sheet(rows).save(sheet_path, quality=88)
    result["sheet"] = str(sheet_path)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m train.strength", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="style/<name> or a model.safetensors path")
    parser.add_argument("--photos", nargs="+", type=Path, default=DEFAULT_PHOTOS, help="held-out photos")
    parser.add_argument("--size", type=positive_int, default=512, help="longer side the photos are rendered at")
    parser.add_argument("--gatys-iterations", type=positive_int, default=100)
    parser.add_argument("--out", type=Path, required=True, help="strength.json, contact sheets, cached Gatys images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    try:  # a model or photo we cannot use is a usage error, not a traceback
        for model in args.model:
            result = measure_model(model, args.photos, args.size, args.gatys_iterations, args.out,
                                   HubSettings.from_env())
            ours, gatys = result["mean"]["network"], result["mean"]["gatys"]
            print(f"{model}: coarse style ratio {ours['coarse_style_ratio']:.2f} (Gatys {args.gatys_iterations} it. "
                  f"{gatys['coarse_style_ratio']:.2f}), content distance coarse {ours['coarse_content_distance']:.2f} "
                  f"(Gatys {gatys['coarse_content_distance']:.2f}), full {ours['full_content_distance']:.2f}, "
                  f"flicker {result['flicker']:.2f}", flush=True)
            results.append(result)
    except PerceptualError as exc:
        parser.error(str(exc))
    (args.out / "strength.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
