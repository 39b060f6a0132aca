"""`python -m perceptual_models <command>`: the library from the command line.

Every command prints a one-line error (exit status 2) for bad input instead of a traceback.
`--size` is always the longer side in pixels, aspect ratio kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import torch
from huggingface_hub import SpaceHardware
from tqdm import tqdm

from . import __version__
from .controls import STROKE_RANGE, StyleControls
from .errors import ConfigError, PerceptualError
from .gatys import GATYS_OBJECTIVE, GatysSettings
from .hub import HubSettings
from .inference import PRECISIONS, SR_METHODS, SR_SCALES


def _versions() -> dict[str, str]:
    import gradio
    import huggingface_hub
    import PIL
    import safetensors
    import torchvision

    return {
        "perceptual_models": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "gradio": gradio.__version__,
        "huggingface_hub": huggingface_hub.__version__, "safetensors": safetensors.__version__,
        "pillow": PIL.__version__,
    }


def cmd_info(args: argparse.Namespace) -> None:
    from .inference import cpu_has_bf16, device_name, pick_device
    from .vgg import resolve_weights

    for name, version in _versions().items():
        print(f"{name:<18}{version}")
    device = pick_device(args.device)
    print(f"{'device':<18}{device_name(device)}" + ("  [bf16]" if device.type == "cpu" and cpu_has_bf16() else ""))
    print(f"{'runtime':<18}{args.runtime.summary()}")
    try:
        _, weight_format, source = resolve_weights("vgg16", download=False, settings=args.hub)
        print(f"{'loss network':<18}vgg16 ({weight_format} format) from {source}")
    except PerceptualError as exc:  # no weights, or a refused file: info still reports the rest
        print(f"{'loss network':<18}unavailable: {exc}")


def _image_and_size(path: str, size: int | None) -> torch.Tensor:
    from .image_io import check_side, load_image, resize_longer_side

    image = load_image(path)
    if not size:
        return image
    image = resize_longer_side(image, size)
    check_side(*image.shape[-2:], f"At --size {size} the image")
    return image


def _style_path(style: str, settings: HubSettings) -> str:
    """A path, or the name of a bundled/Hub style image such as `starry_night`."""
    from .hub import resolve_style_image

    if Path(style).is_file():
        return style
    found = resolve_style_image(style, settings)
    return str(found[0]) if found else style


def cmd_gatys(args: argparse.Namespace) -> None:
    from .gatys import run
    from .image_io import save_image
    from .inference import device_name, pick_device
    from .vgg import load_loss_network

    objective = dataclasses.replace(GATYS_OBJECTIVE, content_weight=args.content_weight,
                                    style_weight=args.style_weight, tv_weight=args.tv_weight)
    settings = GatysSettings(iterations=args.iters, optimizer=args.optimizer, objective=objective, init=args.init,
                             seed=args.seed, preserve_color=args.preserve_color, report_every=1)
    settings.validate()
    device = pick_device(args.device)
    content = _image_and_size(args.content, args.size)
    style = _image_and_size(_style_path(args.style, args.hub), args.style_size or args.size)
    network = load_loss_network(settings.layers, weights=args.vgg_weights, device=device, settings=args.hub)
    final = None
    with tqdm(total=settings.iterations, desc="gatys", unit="it") as bar:
        for final in run(content, style, network, settings):
            bar.update(final.iteration - bar.n)
            bar.set_postfix(total=f"{final.losses['total']:.4g}")
    save_image(final.image, args.output)
    print(f"{args.output}: {final.iteration} iterations in {final.elapsed:.2f} s on {device_name(device)}")
    if args.report:
        report = {"settings": {**settings.as_dict(), "size": list(final.image.shape[-2:]),
                               "content": args.content, "style": args.style,
                               "loss_network": network.source, "loss_network_format": network.weight_format},
                  "device": device_name(device), "seconds": final.elapsed, "iterations": final.iteration,
                  "history": final.history}
        Path(args.report).write_text(json.dumps(report, indent=2))


def _controls(args: argparse.Namespace) -> StyleControls:
    """The controls a command line asked for (`add_control_arguments`), checked."""
    settings = StyleControls(preserve_color=args.preserve_color, strength=args.strength, stroke=args.stroke,
                             mix_style=args.mix_model, mix=args.mix, steady=getattr(args, "steady", False))
    settings.validate()
    return settings


def _style_networks(args: argparse.Namespace, settings: StyleControls, device: torch.device):
    """--model's runner, and --mix-model's when the settings mix."""
    from .inference import Runner

    runner = Runner.load(args.model, device, args.precision, args.hub)
    return runner, Runner.load(settings.mix_style, device, args.precision, args.hub) if settings.mixes else None


def cmd_stylize(args: argparse.Namespace) -> None:
    from .controls import stylize
    from .image_io import save_image
    from .inference import device_name, pick_device, synchronize

    device = pick_device(args.device)
    settings = _controls(args)
    runner, mix_runner = _style_networks(args, settings, device)
    image = _image_and_size(args.input, args.size)
    stylize(image, runner, settings, mix_runner)  # warm-up: first call allocates and picks kernels
    synchronize(device)
    start = time.perf_counter()
    output = stylize(image, runner, settings, mix_runner)
    seconds = time.perf_counter() - start
    save_image(output, args.output)
    height, width = output.shape[-2:]
    controls = f" ({settings.describe()})" if settings.describe() else ""
    print(f"{args.output}: {width}x{height}{controls} in {seconds * 1000:.1f} ms on {device_name(device)}")


def cmd_stylize_video(args: argparse.Namespace) -> None:
    from .controls import video_network
    from .inference import device_name, pick_device
    from .video import probe, stylize_video

    device = pick_device(args.device)
    settings = _controls(args)
    runner, mix_runner = _style_networks(args, settings, device)
    if args.compile:
        for network in filter(None, (runner, mix_runner)):
            network.compile()
    info = probe(args.input)
    final = None
    network = video_network(runner, settings, mix_runner)
    with tqdm(total=info.frames, desc="stylize-video", unit="frame") as bar:
        for final in stylize_video(network, args.input, args.output, args.size, args.max_seconds, args.batch_size):
            bar.total = final.frames_total
            bar.update(final.frames_done - bar.n)
    trimmed = f", cut at {final.trimmed_to:g} s" if final.trimmed_to else ""
    print(f"{args.output}: {final.frames_done} frames at {info.fps} fps{trimmed}, {final.fps:.1f} frames/s "
          f"on {device_name(device)}")


def cmd_upscale(args: argparse.Namespace) -> None:
    from .image_io import load_image, save_image
    from .inference import Runner, device_name, pick_device, sr_model_name, upscale

    device = pick_device(args.device)
    image = load_image(args.input)
    runner = None
    if args.method != "bicubic":
        runner = Runner.load(args.model or sr_model_name(args.method, args.scale), device, args.precision, args.hub)
        if runner.config.get("params", {}).get("scale") != args.scale:
            raise ConfigError(f"The model upscales x{runner.config['params'].get('scale')}, not x{args.scale}.")
        upscale(image, args.method, args.scale, runner)  # warm-up
    output, seconds = upscale(image, args.method, args.scale, runner)
    save_image(output, args.output)
    height, width = output.shape[-2:]
    print(f"{args.output}: {width}x{height} ({args.method}, x{args.scale}) in "
          f"{seconds * 1000:.1f} ms on {device_name(device)}")


def cmd_evaluate_sr(args: argparse.Namespace) -> None:
    from .inference import SR_LABELS, Runner, bicubic_upscale, pick_device, sr_model_name
    from .tools.evaluate import evaluate_sr, format_table

    device = pick_device(args.device)
    methods = {}
    for method in args.methods.split(","):
        if method == "bicubic":
            methods[method] = lambda lr: bicubic_upscale(lr, args.scale)
        elif method in SR_LABELS:
            methods[method] = Runner.load(sr_model_name(method, args.scale), device, "exact", args.hub)
        else:
            raise ConfigError(f"Unknown method {method!r}; choose from {', '.join(SR_LABELS)}.")
    result = evaluate_sr(args.data, args.scale, methods, args.blur_sigma)
    print(format_table(result, SR_LABELS))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


def cmd_bench(args: argparse.Namespace) -> None:
    from .inference import pick_device
    from .tools.bench import format_tables, run_bench

    result = run_bench(
        sizes=args.sizes, iterations=args.gatys_iters,
        device=pick_device(args.device), model_name=args.model, repeats=args.repeats,
        gatys_per_iter=args.gatys_per_iter, compile_fast=not args.no_compile, onnx=not args.no_onnx,
        memory=not args.no_memory, settings=args.hub,
    )
    print(format_tables(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


def cmd_export_onnx(args: argparse.Namespace) -> None:
    from .export import check_onnx, export_onnx
    from .networks import from_pretrained

    model, _ = from_pretrained(args.model, args.hub)
    path = export_onnx(model, args.output)
    worst = check_onnx(path, model)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); ONNX Runtime vs PyTorch fp32: {worst:.1f} dB PSNR")
    if worst < 60:
        raise PerceptualError(f"The exported model differs from PyTorch ({worst:.1f} dB < 60 dB).")


def cmd_hub(args: argparse.Namespace) -> None:
    from . import cards, hub
    from .tools import publish

    overrides = {key: getattr(args, key, None) for key in ("repo", "revision")}
    settings = dataclasses.replace(args.hub, **{key: value for key, value in overrides.items() if value})
    if args.hub_command == "list":
        print(f"Hub repo {settings.repo}@{settings.revision}; local dir {settings.local_dir or '-'}; "
              f"trained here: {settings.user_dir or '-'}")
        for name in hub.available_models(settings):
            try:
                print(f"{name:<28}{hub.resolve(name, settings).origin}")
            except hub.WeightsUnavailable as exc:
                print(f"{name:<28}unavailable: {exc}")
    elif args.hub_command == "download":
        for resolved in hub.download_all(settings):
            print(f"{resolved.name:<28}{resolved.weights}")
    elif args.hub_command == "export":
        if malformed := [item for item in args.evaluation if "=" not in item]:
            raise ConfigError(f"--evaluation takes KEY=VALUE, got {', '.join(map(repr, malformed))}.")
        evaluation = dict(item.split("=", 1) for item in args.evaluation)
        path = cards.export_model(Path(args.model), args.name, Path(args.to), evaluation)
        publish.prepare_repo(Path(args.to))
        print(f"wrote {path} (+ .json, .md); updated {Path(args.to) / 'manifest.json'}")
    elif args.hub_command == "export-vgg":
        path = publish.export_loss_network(Path(args.weights), Path(args.to), through=args.through)
        publish.prepare_repo(Path(args.to))
        print(f"wrote {path} (+ .json, .md); updated {Path(args.to) / 'manifest.json'}")
    elif args.hub_command == "push":
        url = publish.push(Path(args.source), args.repo, tag=args.tag, private=args.private)
        print(f"pushed {args.source} to {url}" + (f" and tagged {args.tag}" if args.tag else ""))


def cmd_space(args: argparse.Namespace) -> None:
    from .tools.space import PROJECT, deploy

    url = deploy(args.repo, Path(args.source) if args.source else PROJECT, private=args.private,
                 hardware=args.hardware, token=args.token)
    print(f"deployed to {url}" + (f" (hardware {args.hardware} requested)" if args.hardware else "")
          + "; the Space builds and starts in a few minutes")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a size, a count), else a usage error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def positive_ints(text: str) -> list[int]:
    """An argparse type: comma-separated whole numbers of at least 1, e.g. "256,512"."""
    try:
        return [positive_int(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 256,512, got {text!r}") from None


def add_control_arguments(parser: argparse.ArgumentParser, video: bool = False) -> None:
    """The controls of `perceptual_models.controls`; the defaults change nothing."""
    parser.add_argument("--preserve-color", action="store_true",
                        help="keep the photo's colours: the output's luminance with the photo's chroma")
    parser.add_argument("--strength", type=float, default=1.0, help="0: the photo, 1: the full style (default)")
    parser.add_argument("--stroke", type=float, default=1.0,
                        help=f"stroke size, {STROKE_RANGE[0]:g} to {STROKE_RANGE[1]:g}: 2 paints strokes twice as "
                             "large (the network runs on a half-size copy)")
    parser.add_argument("--mix-model", default=None, help="a second style network to mix in (style/<name> or a path)")
    parser.add_argument("--mix", type=float, default=0.0, help="0: --model alone (default), 1: --mix-model alone")
    if video:
        parser.add_argument("--steady", action="store_true",
                            help="blend each frame with the previous output where the input did not change")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perceptual_models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
        return sub

    command("info", cmd_info, "versions, device, and where the VGG loss network resolves from")

    gatys = command("gatys", cmd_gatys, "optimisation-based style transfer (Gatys et al.)")
    gatys.add_argument("--content", required=True)
    gatys.add_argument("--style", required=True, help="style image path, or a bundled style name (starry_night)")
    gatys.add_argument("-o", "--output", required=True)
    gatys.add_argument("--size", type=positive_int, default=256, help="longer side of the output")
    gatys.add_argument("--style-size", type=positive_int, default=None, help="longer side of the style image (default: --size)")
    gatys.add_argument("--iters", type=positive_int, default=GatysSettings.iterations)
    gatys.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam"])
    gatys.add_argument("--content-weight", type=float, default=GATYS_OBJECTIVE.content_weight)
    gatys.add_argument("--style-weight", type=float, default=GATYS_OBJECTIVE.style_weight)
    gatys.add_argument("--tv-weight", type=float, default=GATYS_OBJECTIVE.tv_weight)
    gatys.add_argument("--init", default="content", choices=["content", "noise"])
    gatys.add_argument("--seed", type=int, default=0)
    gatys.add_argument("--preserve-color", action="store_true", help="luminance-only transfer")
    gatys.add_argument("--vgg-weights", default=None)
    gatys.add_argument("--report", default=None, help="write a JSON report here")

    stylize = command("stylize", cmd_stylize, "feed-forward style transfer with a trained network")
    stylize.add_argument("--model", required=True, help="style/<name> or path/to/model.safetensors")
    stylize.add_argument("input")
    stylize.add_argument("-o", "--output", required=True)
    stylize.add_argument("--size", type=positive_int, default=None, help="longer side (default: keep)")
    stylize.add_argument("--precision", default="fast", choices=PRECISIONS)
    add_control_arguments(stylize)

    video = command("stylize-video", cmd_stylize_video,
                    "stylise every frame of a video (H.264 mp4 out, the source's audio and frame rate kept)")
    video.add_argument("--model", required=True, help="style/<name> or path/to/model.safetensors")
    video.add_argument("input")
    video.add_argument("-o", "--output", required=True, help="an .mp4 file")
    video.add_argument("--size", type=positive_int, default=512, help="longer side of the output frames")
    video.add_argument("--batch-size", type=positive_int, default=4, help="frames per network call")
    video.add_argument("--max-seconds", type=float, default=None, help="cut longer inputs here")
    video.add_argument("--precision", default="fast", choices=PRECISIONS)
    video.add_argument("--compile", action="store_true", help="torch.compile first (pays off on long clips)")
    add_control_arguments(video, video=True)

    upscale = command("upscale", cmd_upscale, "super-resolve a low-resolution image")
    upscale.add_argument("--method", default="feat", choices=SR_METHODS)
    upscale.add_argument("--scale", type=int, default=SR_SCALES[0], choices=SR_SCALES)
    upscale.add_argument("--model", default=None, help="weights path (default: the bundled/Hub model)")
    upscale.add_argument("input")
    upscale.add_argument("-o", "--output", required=True)
    upscale.add_argument("--precision", default="fast", choices=PRECISIONS)

    evaluate = command("evaluate-sr", cmd_evaluate_sr, "PSNR/SSIM table on an SR benchmark folder")
    evaluate.add_argument("--data", required=True, help="folder of ground-truth images (e.g. Set5)")
    evaluate.add_argument("--scale", type=int, default=SR_SCALES[0], choices=SR_SCALES)
    evaluate.add_argument("--methods", default=",".join(SR_METHODS))
    evaluate.add_argument("--blur-sigma", type=float, default=0.0, help="Gaussian blur before downsampling")
    evaluate.add_argument("--json", default=None)

    bench = command("bench", cmd_bench, "the paper's Table 1 on this device: Gatys vs the feed-forward network")
    bench.add_argument("--sizes", type=positive_ints, default="256,512,1024")
    bench.add_argument("--gatys-iters", type=positive_ints, default="100,300,500")
    bench.add_argument("--gatys-per-iter", type=int, default=None,
                       help="time this many L-BFGS iterations and extrapolate (labelled as such)")
    bench.add_argument("--model", default="style/starry_night")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--no-compile", action="store_true", help="skip the torch.compile path")
    bench.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    bench.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    bench.add_argument("--json", default=None)

    onnx = command("export-onnx", cmd_export_onnx, "export a trained network to ONNX (dynamic height/width)")
    onnx.add_argument("--model", required=True, help="style/<name>, sr/x4_pixel, ... or a .safetensors path")
    onnx.add_argument("-o", "--output", required=True)

    hub = commands.add_parser("hub", help="list, download, export and publish weights",
                              description="Weights on the Hugging Face Hub and in the bundled copy.")
    hub_commands = hub.add_subparsers(dest="hub_command", required=True, metavar="hub_command")
    for name, help_text in (("list", "every model and where it resolves from"),
                            ("download", "prefetch every file of the Hub repo into the local cache")):
        sub = hub_commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=cmd_hub)
        sub.add_argument("--repo", default=None, help="Hub repo id (default: $PERCEPTUAL_HUB_REPO or the project's)")
        sub.add_argument("--revision", default=None, help="tag, branch or commit (default: pinned)")
    export = hub_commands.add_parser("export", help="add a trained model to a Hub-layout folder (fp16 + card)")
    export.set_defaults(handler=cmd_hub)
    export.add_argument("model", help="a trained model.safetensors (with model.json beside it)")
    export.add_argument("--name", required=True, help="e.g. style/starry_night or sr/x4_feat")
    export.add_argument("--to", required=True, help="the Hub-layout folder")
    export.add_argument("--evaluation", action="append", default=[], metavar="KEY=VALUE",
                        help="a measured result for the model card, e.g. 'Set5 x4=30.5 dB / 0.860' (repeatable)")
    export_vgg = hub_commands.add_parser("export-vgg", help="add the VGG loss network (fp16, truncated) to a folder")
    export_vgg.set_defaults(handler=cmd_hub)
    export_vgg.add_argument("weights", help="a VGG-16 safetensors file with features.N.* keys")
    export_vgg.add_argument("--to", required=True, help="the Hub-layout folder")
    export_vgg.add_argument("--through", default="relu4_3", help="deepest layer kept (the paper needs relu4_3)")
    push = hub_commands.add_parser("push", help="build manifest + model card and upload a folder")
    push.set_defaults(handler=cmd_hub)
    push.add_argument("--repo", required=True)
    push.add_argument("--from", dest="source", required=True, help="the Hub-layout folder to upload")
    push.add_argument("--tag", default=None, help="tag the uploaded commit (the app pins a tag)")
    push.add_argument("--private", action="store_true")

    space = commands.add_parser("space", help="run the app as your own Hugging Face Space",
                                description="Run the app as your own Hugging Face Space.")
    space_commands = space.add_subparsers(dest="space_command", required=True, metavar="space_command")
    deploy = space_commands.add_parser("deploy", help="create the Space and upload the app with its weights",
                                       description="Create the Space (unless it exists) and upload app.py, "
                                                   "demo/, perceptual_models/ with the bundled weights, train/ "
                                                   "(the training tab), docs/, requirements.txt, README.md and NOTICE.")
    deploy.set_defaults(handler=cmd_space)
    deploy.add_argument("--repo", required=True, help="the Space's id, USER/NAME")
    deploy.add_argument("--private", action="store_true", help="make the Space private (when creating it)")
    deploy.add_argument("--hardware", default=None, choices=[h.value for h in SpaceHardware], metavar="HARDWARE",
                        help="request Space hardware, e.g. cpu-basic (free), cpu-upgrade, zero-a10g (ZeroGPU), "
                             "t4-small (default: leave it as it is)")
    deploy.add_argument("--token", default=None,
                        help="a Hugging Face token with write access (default: HF_TOKEN, then `hf auth login`)")
    deploy.add_argument("--from", dest="source", default=None,
                        help="the project folder to upload (default: this checkout)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.hub = HubSettings.from_env()  # the one place this command line reads where weights come from
    try:
        if hasattr(args, "device") and args.handler is not cmd_bench:  # run_bench sets up its own
            from .inference import pick_device
            from .runtime import configure

            args.runtime = configure(pick_device(args.device))
        args.handler(args)
    except PerceptualError as exc:  # anything else is a bug: keep its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
