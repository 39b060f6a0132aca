"""Train the paper's networks.

    python -m train style --style path/to/starry_night.jpg --run-dir runs/starry_night
    python -m train sr --scale 4 --loss feat --run-dir runs/x4_feat
    python -m train srcnn --scale 4 --run-dir runs/srcnn_x4
    torchrun --nproc_per_node 2 -m train style ...      (DistributedDataParallel)
    python -m train run path/to/spec.json                (a run spec as the app writes it: train.run.RunSpec)

Training photos default to $PERCEPTUAL_TRAIN_DATA (folders separated by ":"), else data/train in the shared
folder: $PERCEPTUAL_SHARED, or ../shared beside the repo.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from perceptual_models.errors import PerceptualError
from perceptual_models.hub import HubSettings, resolve
from perceptual_models.inference import SR_SCALES
from perceptual_models.losses import StyleObjective
from perceptual_models.networks import NORMS, UPSAMPLES

from .data import folder_list, shared_folder
from .loop import train
from .run import LoopSettings, RunSpec
from .tasks import STYLE_EMA_DECAY, STYLE_ITERATIONS, StyleTask, SuperResolutionTask

DEFAULT_DATA = folder_list(os.environ.get("PERCEPTUAL_TRAIN_DATA", "")) or [shared_folder() / "data" / "train"]


def _common(parser: argparse.ArgumentParser, iterations: int, batch_size: int, lr: float, ema_decay: float) -> None:
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="folder(s) of training photos")
    parser.add_argument("--run-dir", type=Path, required=True, help="where checkpoints, logs and the model go")
    parser.add_argument("--iterations", type=int, default=iterations)
    parser.add_argument("--batch-size", type=int, default=batch_size, help="per process")
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                        help="constant (the paper) or cosine decay to 0")
    parser.add_argument("--ema-decay", type=float, default=ema_decay,
                        help="save a moving average of the weights with this decay, warming up as (1 + n) / (10 + n) "
                             "(0: the last weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"],
                        help="bf16 autocast (auto: on CUDA and on CPUs with bf16 units, where it is faster)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the networks (no faster on an H200: 40 it/s after 48 s of compiling, eager 45)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--val-every", type=int, default=200, help="render the validation image every N steps (0: never)")
    parser.add_argument("--val-image", type=Path, default=None,
                        help="photo to render every --val-every steps (default: a crop of the first training photo)")
    parser.add_argument("--checkpoint-every", type=int, default=200,
                        help="save a checkpoint every N steps (0: only when the run ends or stops)")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="save and stop after this many minutes of training (a resumed run's earlier parts "
                             "count, the --init-from network's do not)")
    parser.add_argument("--stop-file", type=Path, default=None,
                        help="save and stop (like --max-minutes) as soon as this file exists")
    parser.add_argument("--resume", action="store_true", help="continue from run-dir/checkpoint.safetensors")
    parser.add_argument("--init-from", default=None,
                        help="without a checkpoint to resume, start from this trained network (a .safetensors path "
                             "or a model name such as style/wave) and count on from its iterations")
    parser.add_argument("--vgg-weights", default=None, help="VGG safetensors (default: resolution order)")
    parser.add_argument("--note", default="", help="free text stored in the model config")


def build_parser() -> argparse.ArgumentParser:
    """`python -m train`'s options: one definition, used by `main` and by the GPU job's dry run."""
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    style = commands.add_parser("style", help="feed-forward style transfer network")
    _common(style, iterations=STYLE_ITERATIONS, batch_size=4, lr=1e-3, ema_decay=STYLE_EMA_DECAY)
    style.add_argument("--style", required=True, help="style image")
    style.add_argument("--image-size", type=int, default=StyleTask.image_size, help="training crop size (paper: 256)")
    style.add_argument("--style-size", type=int, default=StyleTask.style_size, help="longer side of the style image")
    style.add_argument("--content-weight", type=float, default=StyleObjective.content_weight)
    weight = style.add_mutually_exclusive_group()
    weight.add_argument("--style-balance", type=float, default=StyleTask.style_balance,
                        help="style weight = this / the norm of the painting's Gram matrices (a like balance for any painting)")
    weight.add_argument("--style-weight", type=float, default=None,
                        help=f"a fixed style weight instead of --style-balance (the_scream, with --norm instance: {StyleObjective.style_weight:g})")
    style.add_argument("--tv-weight", type=float, default=StyleObjective.tv_weight)
    style.add_argument("--stability-weight", type=float, default=StyleTask.stability_weight,
                       help="weight of the output's change under input noise (steady video; 0: off)")
    style.add_argument("--stability-sigma", type=float, default=StyleTask.stability_sigma,
                       help="std of that input noise, pixels in [0, 1]")
    style.add_argument("--norm", default=StyleTask.norm, choices=NORMS, help="normalisation in the encoder (and, by default, the residual blocks)")
    style.add_argument("--residual-norm", default=StyleTask.residual_norm, choices=NORMS,
                       help="normalisation in the five residual blocks (default: --norm)")
    style.add_argument("--decoder-norm", default=StyleTask.decoder_norm, choices=NORMS,
                       help="normalisation in the two upsampling blocks")
    style.add_argument("--upsample", default=StyleTask.upsample, choices=UPSAMPLES)
    style.add_argument("--tanh-scale", type=float, default=StyleTask.tanh_scale,
                       help="output = 0.5 + s * tanh(x) (paper: 150/255, beyond [0, 1]; 0.5 stays inside)")

    for name, help_text in (("sr", "super-resolution network (l_pixel or l_feat)"),
                            ("srcnn", "SRCNN-style baseline (per-pixel loss)")):
        sr = commands.add_parser(name, help=help_text)
        _common(sr, iterations=20000, batch_size=4, lr=1e-3, ema_decay=0.0)  # SR: not measured with averaging
        sr.add_argument("--scale", type=int, default=SuperResolutionTask.scale, choices=SR_SCALES)
        sr.add_argument("--patch-size", type=int, default=SuperResolutionTask.patch_size, help="high-resolution patch (paper: 288)")
        sr.add_argument("--blur-sigma", type=float, default=SuperResolutionTask.blur_sigma,
                        help="Gaussian blur before downsampling (0: none)")
        sr.add_argument("--tv-weight", type=float, default=SuperResolutionTask.tv_weight)
        if name == "sr":
            sr.add_argument("--loss", default=SuperResolutionTask.loss, choices=["pixel", "feat"])
            sr.add_argument("--feature-weight", type=float, default=SuperResolutionTask.feature_weight)
            sr.add_argument("--feature-layer", default=SuperResolutionTask.feature_layer)
            sr.add_argument("--norm", default=SuperResolutionTask.norm, choices=NORMS,
                            help="normalisation in the SR network (paper: batch)")

    run = commands.add_parser("run", help="a run spec written as JSON (what the app's training tab does)")
    run.add_argument("spec", type=Path, help="spec.json (train.run.RunSpec)")
    run.add_argument("--vgg-weights", default=None, help="VGG safetensors (default: resolution order)")
    return parser


def make_spec(args: argparse.Namespace) -> RunSpec:
    """The run the parsed options describe, for this process (under torchrun: one rank of it)."""
    process = {"world_size": int(os.environ.get("WORLD_SIZE", "1")), "rank": int(os.environ.get("RANK", "0")),
               "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}
    if args.command == "run":
        return RunSpec.read(args.spec, lookup(args), **process)
    return RunSpec(make_task(args), LoopSettings(
        data=args.data, run_dir=args.run_dir, iterations=args.iterations, batch_size=args.batch_size,
        lr=args.lr, lr_schedule=args.lr_schedule, ema_decay=args.ema_decay, seed=args.seed,
        device=args.device, amp=args.amp, compile=args.compile, threads=args.threads,
        log_every=args.log_every, val_every=args.val_every, val_image=args.val_image,
        checkpoint_every=args.checkpoint_every, max_minutes=args.max_minutes, stop_file=args.stop_file,
        resume=args.resume, init_from=init_weights(args), extra={"note": args.note} if args.note else {},
        **process))


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # a setting the task or the loop refuses is a usage error, not a traceback
        train(make_spec(args))
    except PerceptualError as exc:  # also an unreadable --style image or --val-image
        parser.error(str(exc))


def lookup(args: argparse.Namespace) -> HubSettings:
    """The environment's settings, with `--vgg-weights` (if given) as the loss network's file."""
    settings = HubSettings.from_env()
    return dataclasses.replace(settings, vgg_weights=Path(args.vgg_weights)) if args.vgg_weights else settings


def init_weights(args: argparse.Namespace) -> Path | None:
    """The weights file `--init-from` names: a path as given, a model name looked up like the app does."""
    if args.init_from is None:
        return None
    if args.init_from.endswith(".safetensors"):
        return Path(args.init_from)
    return resolve(args.init_from, lookup(args)).weights


def make_task(args: argparse.Namespace) -> StyleTask | SuperResolutionTask:
    if args.command == "style":
        return StyleTask(
            style_image=args.style, image_size=args.image_size, style_size=args.style_size,
            objective=StyleObjective(
                content_weight=args.content_weight, tv_weight=args.tv_weight,
                style_weight=StyleObjective.style_weight if args.style_weight is None else args.style_weight),
            style_balance=args.style_balance if args.style_weight is None else None,
            norm=args.norm, decoder_norm=args.decoder_norm, residual_norm=args.residual_norm,
            upsample=args.upsample, tanh_scale=args.tanh_scale,
            stability_weight=args.stability_weight, stability_sigma=args.stability_sigma,
            lookup=lookup(args),
        )
    loss_options = {name: getattr(args, name) for name in ("loss", "feature_weight", "feature_layer", "norm")
                    if hasattr(args, name)}  # `srcnn` has none of them: the task's defaults
    return SuperResolutionTask(
        scale=args.scale, arch="srcnn" if args.command == "srcnn" else "srnet", patch_size=args.patch_size,
        blur_sigma=args.blur_sigma, tv_weight=args.tv_weight, lookup=lookup(args), **loss_options,
    )


if __name__ == "__main__":
    main()
