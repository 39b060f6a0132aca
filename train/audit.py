"""Audit style networks as a visitor sees them: held-out photos, several sizes, blotches and the objective.

    python -m train.audit --model style/starry_night style/udnie --json audit.json --sheet-dir audit/

For every model: stylise each held-out photo (Set5, Set14 and the app's examples: no style network
trains on them) at each size with the app's fast path, and measure the share of the image covered by
blotches (`perceptual_models.blotches`). Then score one pass of the network against Gatys et al.'s
optimisation on the same objective (`train.compare_gatys`, the paper's Figure 5) and say how many
L-BFGS iterations the network's one pass is worth. A contact sheet per model shows the outputs with
blotches painted red.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import torch
from PIL import Image

from perceptual_models.blotches import find_blotches
from perceptual_models.cli import positive_int, positive_ints
from perceptual_models.errors import PerceptualError
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import load_image, resize_longer_side, to_pil
from perceptual_models.inference import Runner

from .compare_gatys import compare, require_style_network
from .data import find_photos, shared_folder

REPO = Path(__file__).resolve().parents[1]
BLOTCH_LIMIT = 0.001  # the bar: under 0.1% of the image


def equivalent_iterations(network_total: float, gatys_totals: dict[int, float]) -> float | None:
    """The L-BFGS iteration count at which Gatys reaches the network's objective (log-linear between
    the measured counts); None if Gatys is still worse at the last count, 0 if it is already better
    at the first."""
    points = sorted(gatys_totals.items())
    if network_total >= points[0][1]:
        return float(points[0][0]) if network_total == points[0][1] else 0.0
    for (i0, t0), (i1, t1) in itertools.pairwise(points):
        if t1 <= network_total <= t0:
            fraction = (math.log(t0) - math.log(network_total)) / (math.log(t0) - math.log(t1))
            return i0 + fraction * (i1 - i0)
    return None


def _red(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    marked = image.clone()
    marked[0, 0][mask], marked[0, 1][mask], marked[0, 2][mask] = 1.0, 0.0, 0.0
    return marked


def _sheet(tiles: list[Image.Image], columns: int = 6, tile: int = 256) -> Image.Image:
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), "white")
    for index, image in enumerate(tiles):
        image = image.copy()
        image.thumbnail((tile, tile))
        sheet.paste(image, ((index % columns) * tile, (index // columns) * tile))
    return sheet


def audit_blotches(runner: Runner, photos: list[Path], sizes: list[int], sheet_size: int | None = None
                   ) -> tuple[list[dict], Image.Image | None]:
    rows, tiles = [], []
    for path in photos:
        photo = load_image(path)
        for size in sizes:
            content = resize_longer_side(photo, size)
            output = runner(content)
            blotches = find_blotches(output, content)
            rows.append({"photo": path.name, "size": size, "share": blotches.share, "regions": blotches.regions,
                         "largest_pixels": blotches.largest})
            if size == sheet_size:
                tiles.append(to_pil(_red(output, torch.from_numpy(blotches.mask))))
    return rows, (_sheet(tiles) if tiles else None)


def summarize(rows: list[dict]) -> dict:
    worst = max(rows, key=lambda r: r["share"])
    return {"max_share": worst["share"], "worst": f"{worst['photo']} at {worst['size']} px",
            "mean_share": sum(r["share"] for r in rows) / len(rows),
            "over_limit": sum(r["share"] >= BLOTCH_LIMIT for r in rows), "cases": len(rows)}


def default_folders(shared: Path) -> dict[str, list[Path] | Path]:
    """The command's default photo and painting folders, in the shared data folder `shared`."""
    benchmark = shared / "data" / "sr_benchmark"
    return {"photos": [benchmark / "Set5", benchmark / "Set14", REPO / "demo" / "examples"],  # held out
            "gatys_photos": [benchmark / "Set5"],
            "style_dir": shared / "data" / "styles"}  # full size, as trained on (the bundled ones are 384 px)


def load_style_network(model: str, settings: HubSettings) -> Runner:
    """The app's fast path for `model`; a usage error if it is missing or not a style network."""
    runner = Runner.load(model, torch.device("cpu"), "fast", settings)
    require_style_network(runner, model)
    return runner


def audit(model: str, photos: list[Path], sizes: list[int], gatys_photos: list[Path], gatys_size: int,
          gatys_iters: list[int], sheet_dir: Path | None, settings: HubSettings,
          style_dir: Path | None = None, runner: Runner | None = None) -> dict:
    """`style_dir`: the full-size style images (None or missing: the bundled 384 px copies);
    `runner`: `model` already loaded by `load_style_network`."""
    runner = runner or load_style_network(model, settings)
    sheet_size = 512 if 512 in sizes else sizes[0]
    rows, sheet = audit_blotches(runner, photos, sizes, sheet_size if sheet_dir else None)
    result = {"model": model, "blotches": summarize(rows), "per_photo": rows}
    if sheet is not None:
        sheet_dir.mkdir(parents=True, exist_ok=True)
        sheet_path = sheet_dir / f"{model.replace('/', '_')}_{sheet_size}.jpg"
        sheet.save(sheet_path, quality=88)
        result["sheet"] = str(sheet_path)
    if gatys_photos:
        style = style_dir / runner.config["task"]["style_image"] if style_dir else None
        scores = compare(model, gatys_photos, gatys_size, gatys_iters, "noise", settings,
                         style_path=style if style and style.is_file() else None)
        gatys = {n: scores["mean"][f"gatys_{n}"]["total"] for n in gatys_iters}
        result["objective"] = {**scores, "equivalent_gatys_iterations":
                               equivalent_iterations(scores["mean"]["network"]["total"], gatys)}
    return result


def main() -> None:
    defaults = default_folders(shared_folder())  # $PERCEPTUAL_SHARED, else ../shared
    parser = argparse.ArgumentParser(prog="python -m train.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", required=True, help="style/<name> or a model.safetensors path")
    parser.add_argument("--photos", nargs="+", type=Path, default=defaults["photos"], help="folders of held-out photos")
    parser.add_argument("--sizes", type=positive_ints, default="256,512,1024")
    parser.add_argument("--gatys-photos", nargs="*", type=Path, default=defaults["gatys_photos"],
                        help="folders for the objective comparison (none: skip it)")
    parser.add_argument("--gatys-count", type=positive_int, default=5, help="use the first N of those photos")
    parser.add_argument("--gatys-size", type=positive_int, default=256)
    parser.add_argument("--gatys-iters", type=positive_ints, default="10,25,50,100")
    parser.add_argument("--style-dir", type=Path, default=defaults["style_dir"],
                        help="the style images trained on (default: bundled 384 px copies if absent)")
    parser.add_argument("--sheet-dir", type=Path, default=None, help="write a contact sheet per model here")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:  # a model, folder or photo we cannot use is a usage error, not a traceback
        run_audits(args)
    except PerceptualError as exc:
        parser.error(str(exc))


def run_audits(args: argparse.Namespace) -> None:
    settings = HubSettings.from_env()
    # The models first: a wrong model name is the likelier mistake, and is reported even where the
    # default photo folders (the shared data) are missing.
    runners = [(model, load_style_network(model, settings)) for model in args.model]
    photos = find_photos(args.photos)
    gatys_photos = find_photos(args.gatys_photos)[:args.gatys_count] if args.gatys_photos else []
    results = []
    for model, runner in runners:
        result = audit(model, photos, args.sizes, gatys_photos, args.gatys_size, args.gatys_iters, args.sheet_dir,
                       settings, args.style_dir, runner=runner)
        results.append(result)
        summary = result["blotches"]
        line = (f"{model}: blotches max {100 * summary['max_share']:.2f}% ({summary['worst']}), "
                f"mean {100 * summary['mean_share']:.3f}%, {summary['over_limit']}/{summary['cases']} over 0.1%")
        if "objective" in result:
            equivalent, counts = result["objective"]["equivalent_gatys_iterations"], args.gatys_iters
            line += "; one pass = " + (f"more than {counts[-1]}" if equivalent is None
                                       else f"fewer than {counts[0]}" if equivalent == 0
                                       else f"{equivalent:.0f}") + " L-BFGS iterations"
        print(line, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
