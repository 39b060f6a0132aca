"""Train every bundled style at the paper's settings on one lent GPU, inside one device call.

    # here: the photos and styles travel in an ignored folder (the VGG copy is in the repository)
    mkdir -p .gpu && cp -r ../shared/gpu_bundle/train ../shared/gpu_bundle/styles .gpu/
    # on the GPU machine (device tool: carry [".gpu"], timeout_s 600):
    python -m train.gpu_styles --data .gpu/train --style-dir .gpu/styles --out "$OUT" --minutes 8
    # back here: into the bundled copy (manifest and repo card rewritten)
    python -m train.gpu_styles --unpack /path/to/files/style_*.tar --to perceptual_models/weights

Each style goes on from its bundled network (`--from-scratch`: from random weights) with the recipe that
network records (normalisation, style weight or balance, TV weight: `bundled_recipe`; the_scream's is
instance norm, the others' batch norm), so a GPU run replaces a network with a longer-trained one of the
same kind; options after `--` go after it and win. The styles train one after another at the paper's
256 px crops in bf16, for `--iterations` more steps or the style's share of `--minutes` (an
equal share of what is left when it starts, so time one style does not use passes to the next),
whichever comes first. Measured on
a lent H200 (torch 2.11, udnie, 256 px, batch 4): one process alone runs about 45 it/s eager and 40 it/s
compiled (after 48 s of compiling), while five processes side by side ran 1.1 it/s each; so one at a
time, eager (the trainer's default). At batch 4 that is 180 crops/s, so the job trains at batch 16 with
Adam's rate at 1e-3, as Dumoulin et al. did: the paper's 160k crops are 10k steps. Batch 16 is not yet
measured on a GPU. Each finished network is exported like `hub export` does (fp16, JSON config, model
card) and packed with its loss log into `$OUT/style_<name>.tar`: the device tool returns at most 8 files
of 16 MiB each.

`--dry-run STEPS` times the job's own step for the first style on `--device` and counts its work per crop
(docs/training-notes.md has the numbers and what they mean for a lent GPU):

    python -m train.gpu_styles --dry-run 2 --device cpu --data ../shared/gpu_bundle/train \
        --style-dir ../shared/gpu_bundle/styles --styles starry_night
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from torch.utils.flop_counter import FlopCounterMode

from perceptual_models.cards import STYLE_SOURCES, export_model
from perceptual_models.hub import BUNDLED_DIR
from perceptual_models.inference import style_model_name
from perceptual_models.tools.publish import prepare_repo

from .cli import build_parser, make_spec
from .loop import Trainer
from .run import RunFolder, trained_iterations
from .tasks import STYLE_ITERATIONS, StyleTask

REPO = Path(__file__).resolve().parents[1]
PAPER_CROPS = 40_000 * 4  # per style: 40k iterations of batch 4


def bundled_recipe(name: str, overrides: list[str], folder: Path = BUNDLED_DIR) -> list[str]:
    """`python -m train style` options that repeat the recipe of the bundled style/<name> (none for a style
    that is not bundled: the trainer's defaults). The crop size is the job's own; `overrides` (the options
    after `--`) come after these and win, and a weight or balance there replaces the recipe's (the
    trainer takes one or the other)."""
    path = folder / f"{style_model_name(name)}.json"
    if not path.is_file():
        return []
    config = json.loads(path.read_text())
    params, task = config["params"], config["task"]
    options = ["--norm", params["norm"], "--residual-norm", params.get("residual_norm", params["norm"]),
               "--decoder-norm", params["decoder_norm"], "--upsample", params["upsample"],
               "--tanh-scale", repr(params["tanh_scale"]), "--style-size", str(task["style_size"]),
               "--content-weight", repr(task["content_weight"]), "--tv-weight", repr(task["tv_weight"])]
    if task.get("stability_weight"):
        options += ["--stability-weight", repr(task["stability_weight"]), "--stability-sigma",
                    repr(task["stability_sigma"])]
    if {"--style-weight", "--style-balance"} & set(overrides):
        return options
    if task.get("style_balance"):  # the weight follows from the painting, as when it was trained
        return options + ["--style-balance", repr(task["style_balance"])]
    return options + ["--style-weight", repr(task["style_weight"])]


def bundled_start(name: str, folder: Path = BUNDLED_DIR) -> tuple[list[str], int]:
    """The options that start from the bundled style/<name> and its iteration count (none and 0 for a style
    that is not bundled)."""
    path = folder / f"{style_model_name(name)}.safetensors"
    if not path.is_file():
        return [], 0
    return ["--init-from", str(path)], trained_iterations(path)


def style_options(style: Path, run: RunFolder, minutes: float, args: argparse.Namespace) -> list[str]:
    """The `python -m train` options that train one style in this job (its run and its dry run alike)."""
    budget = f"{minutes:.2f}"
    start, done = ([], 0) if args.from_scratch else bundled_start(style.stem)
    return [
        "style", "--style", str(style), "--run-dir", str(run.path), *start,
        "--data", *args.data, "--iterations", str(done + args.iterations), "--image-size", str(args.image_size),
        "--batch-size", str(args.batch_size), "--device", args.device, "--max-minutes", budget,
        "--log-every", "50", "--val-every", str(max(args.iterations // 4, 1)), "--checkpoint-every", "2000",
        "--note", (f"{args.device} run of train.gpu_styles: {args.image_size} px crops, batch {args.batch_size}, "
                   f"{budget} min budget"), *bundled_recipe(style.stem, args.train_args), *args.train_args,
    ]


def train_one(style: Path, run: RunFolder, minutes: float, args: argparse.Namespace) -> int:
    """Train one style in its own process (its output in the run's train.log); returns the exit code."""
    run.path.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "train", *style_options(style, run, minutes, args)]
    with run.output.open("w") as log:
        return subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def dry_run(args: argparse.Namespace, steps: int) -> dict:
    """The job's own training step for its first style, on `args.device`: crops per second here, and the
    floating-point work of one crop (counted by torch), from which the time on another device follows:
    the work of the whole job over what that device sustains."""
    style = Path(args.style_dir) / f"{args.styles[0]}.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(make_spec(build_parser().parse_args(style_options(style, RunFolder(Path(tmp)), 0, args))))
        with FlopCounterMode(display=False) as counter:
            trainer.train_step()  # also the warm-up
        started = time.perf_counter()
        for _ in range(steps):
            losses = trainer.train_step()
        losses["total"].item()  # waits for the device
        seconds = time.perf_counter() - started
    crops_per_second = steps * args.batch_size / seconds
    flops_per_crop = counter.get_total_flops() / args.batch_size
    job_flops = flops_per_crop * PAPER_CROPS * len(args.styles)
    report = {"style": args.styles[0], "device": args.device, "batch_size": args.batch_size,
              "image_size": args.image_size, "steps_timed": steps, "crops_per_second": round(crops_per_second, 2),
              "gflop_per_crop": round(flops_per_crop / 1e9, 1),
              "sustained_tflops_here": round(crops_per_second * flops_per_crop / 1e12, 3),
              "job_crops": PAPER_CROPS * len(args.styles),
              "tflops_needed_for_the_job_in_9_minutes": round(job_flops / (9 * 60) / 1e12, 1),
              "job_hours_at_this_rate": round(PAPER_CROPS * len(args.styles) / crops_per_second / 3600, 1)}
    print(json.dumps(report, indent=2))
    return report


def pack(name: str, run: RunFolder, out: Path) -> dict:
    """Export the run as style/<name> (fp16 + config + card) and tar it with its log and loss curve."""
    path = export_model(run.model, style_model_name(name), run.path / "export")
    config = json.loads(path.with_suffix(".json").read_text())
    with tarfile.open(out / f"style_{name}.tar", "w") as tar:
        for suffix in (".safetensors", ".json", ".md"):
            tar.add(path.with_suffix(suffix), arcname=f"{style_model_name(name)}{suffix}")
        for extra in (run.log, run.loss_plot, run.output):
            if extra.is_file():
                tar.add(extra, arcname=f"runs/{name}/{extra.name}")
    return {"iterations": config["training"]["iterations"], "seconds": config["training"]["seconds"],
            "finished": config["training"]["finished"], "final_losses": config["final_losses"]}


def train_all(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_styles_"))  # not in $OUT: only 8 files come back
    runs = {name: RunFolder(work / name) for name in args.styles}
    started = time.monotonic()
    deadline = started + args.minutes * 60  # the loops' time; each start-up and export comes on top (~20 s)
    summary = {}
    for index, name in enumerate(args.styles):
        minutes = (deadline - time.monotonic()) / (len(args.styles) - index) / 60
        code = train_one(Path(args.style_dir) / f"{name}.jpg", runs[name], minutes, args)
        if code != 0 or not runs[name].model.is_file():
            tail = runs[name].output.read_text()[-1500:]
            summary[name] = {"error": f"exit code {code}", "log_tail": tail}
            print(f"{name}: failed (exit {code})\n{tail}", file=sys.stderr)
            continue
        summary[name] = pack(name, runs[name], out)
        print(f"{name}: {summary[name]['iterations']} iterations in {summary[name]['seconds']} s", flush=True)
    summary["_wall_seconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def unpack(tars: list[Path], folder: Path) -> list[str]:
    """Extract the style/<name>.* files of each tar into a Hub-layout folder, then rewrite its manifest."""
    names = []
    for path in tars:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("style/")]
            tar.extractall(folder, members=members, filter="data")
            names += sorted({Path(m.name).stem for m in members})
    prepare_repo(folder)
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.gpu_styles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=[str(REPO / ".gpu" / "train")])
    parser.add_argument("--style-dir", default=str(REPO / ".gpu" / "styles"))
    parser.add_argument("--styles", nargs="+", default=sorted(STYLE_SOURCES))
    parser.add_argument("--out", default=None, help="where the tars and summary.json go ($OUT on the device)")
    parser.add_argument("--work", default=None, help="run folders (default: a temporary folder)")
    parser.add_argument("--iterations", type=int, default=STYLE_ITERATIONS,
                        help="more iterations per style, at most; --minutes usually ends first")
    parser.add_argument("--from-scratch", action="store_true", help="start from random weights, not the bundled networks")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time of all styles together")
    parser.add_argument("--image-size", type=int, default=StyleTask.image_size)
    parser.add_argument("--batch-size", type=int, default=16, help="crops per step (the paper: 4)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", type=int, default=0, metavar="STEPS",
                        help="time this many steps of the first style on --device and print the job's work, "
                             "instead of training")
    parser.add_argument("--unpack", nargs="+", type=Path, default=None, help="style_<name>.tar files to bundle")
    parser.add_argument("--to", type=Path, default=REPO / "perceptual_models" / "weights")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: more `python -m train style` options")
    args = parser.parse_args(argv)
    args.train_args = [a for a in args.train_args if a != "--"]
    if args.unpack:
        print("bundled:", ", ".join(unpack(args.unpack, args.to)))
        return
    if args.dry_run:
        dry_run(args, args.dry_run)
        return
    if not args.out:
        parser.error("--out is required to train")
    train_all(args)


if __name__ == "__main__":
    main()
