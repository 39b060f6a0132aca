import argparse
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from perceptual_models.image_io import load_image
from perceptual_models.networks import SRCNN, SRNet, TransformerNet, save_pretrained

from conftest import REPO, SET5


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perceptual_models", *args], check=False, capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Untrained networks saved like trained ones: the CLI path is the same."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    return {
        "style": save_pretrained(TransformerNet(), {"architecture": "transformer", "params": {}}, folder / "style"),
        "pixel": save_pretrained(SRNet(4), {"architecture": "srnet", "params": {"scale": 4}}, folder / "x4"),
        "x8": save_pretrained(SRNet(8), {"architecture": "srnet", "params": {"scale": 8}}, folder / "x8"),
        "srcnn": save_pretrained(SRCNN(4), {"architecture": "srcnn", "params": {"scale": 4}}, folder / "srcnn"),
    }


@pytest.fixture()
def odd_image(tmp_path):
    path = tmp_path / "odd.png"
    Image.new("RGB", (37, 23), (120, 60, 200)).save(path)
    return path


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command the parser knows."""
    found = []
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            found += [(*prefix, name), *_commands(sub, (*prefix, name))]
    return found


def test_every_command_has_help(capsys):
    from perceptual_models.cli import build_parser

    commands = [" ".join(c) for c in _commands(build_parser())]
    assert {"stylize-video", "hub export-vgg", "space deploy"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*command.split(), "--help"])
        assert exit_info.value.code == 0
        assert f"usage: python -m perceptual_models {command}" in capsys.readouterr().out


def test_stylize_keeps_size_or_resizes_longer_side(models, odd_image, tmp_path):
    result = _cli("stylize", "--model", str(models["style"]), str(odd_image), "-o", str(tmp_path / "a.png"))
    assert result.returncode == 0, result.stderr
    assert "ms on CPU" in result.stdout
    assert load_image(tmp_path / "a.png").shape[-2:] == (23, 37)
    result = _cli("stylize", "--model", str(models["style"]), str(odd_image), "-o", str(tmp_path / "b.jpg"),
                  "--size", "64", "--precision", "exact")
    assert result.returncode == 0 and load_image(tmp_path / "b.jpg").shape[-2:] == (40, 64)


@pytest.mark.parametrize("method, scale, model", [("bicubic", 4, None), ("pixel", 4, "pixel"),
                                                  ("srcnn", 4, "srcnn"), ("feat", 8, "x8")])
def test_upscale_gives_exactly_scale_times_the_input(models, odd_image, tmp_path, method, scale, model):
    args = ["upscale", "--method", method, "--scale", str(scale), str(odd_image), "-o", str(tmp_path / "o.png")]
    if model:
        args += ["--model", str(models[model])]
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    assert load_image(tmp_path / "o.png").shape[-2:] == (23 * scale, 37 * scale)
    assert f"x{scale}) in" in result.stdout


def test_upscale_refuses_a_model_of_another_scale(models, odd_image, tmp_path):
    result = _cli("upscale", "--method", "pixel", "--scale", "8", "--model", str(models["pixel"]), str(odd_image),
                  "-o", str(tmp_path / "o.png"))
    assert result.returncode == 2 and "upscales x4, not x8" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["stylize", "--model", "style/no_such_style", "IMAGE", "-o", "OUT"], "No weights named 'style/no_such_style'"),
        (["stylize", "--model", "MODEL", "NOT_AN_IMAGE", "-o", "OUT"], "not an image"),
        (["upscale", "--method", "bicubic", "MISSING", "-o", "OUT"], "No such image file"),
        (["evaluate-sr", "--data", "MISSING", "--methods", "bicubic"], "Benchmark folder not found"),
        (["evaluate-sr", "--data", "TINY_DIR", "--methods", "bicubic"], "SSIM needs at least 11x11 pixels"),
        (["upscale", "--method", "pixel", "FOUR", "-o", "OUT"], "only 4x4 pixels; at least 8"),
        (["stylize", "--model", "MODEL", "--size", "4", "IMAGE", "-o", "OUT"], "At --size 4 the image is only 4x"),
        (["bench", "--sizes", "256,x"], "expected comma-separated whole numbers such as 256,512, got '256,x'"),
        (["stylize-video", "--model", "MODEL", "--batch-size", "0", "IMAGE", "-o", "OUT"], "at least 1, got '0'"),
        (["hub", "export", "MODEL", "--name", "style/x", "--to", "OUT_DIR", "--evaluation", "28 dB"],
         "--evaluation takes KEY=VALUE, got '28 dB'"),
        (["hub", "export-vgg", "VGG", "--to", "OUT_DIR", "--through", "relu9_9"], "Unknown VGG layer(s) ['relu9_9']"),
    ],
)
def test_bad_input_is_one_clear_line(models, odd_image, tmp_path, args, message):
    text_file = tmp_path / "fake.png"
    text_file.write_text("hello")
    (tmp_path / "tiny").mkdir()
    Image.new("RGB", (16, 16), "gray").save(tmp_path / "tiny" / "small.png")  # 8x8 left after the 4-pixel border
    replace = {"IMAGE": str(odd_image), "OUT": str(tmp_path / "o.png"), "MODEL": str(models["style"]),
               "NOT_AN_IMAGE": str(text_file), "MISSING": str(tmp_path / "missing"), "TINY_DIR": str(tmp_path / "tiny"),
               "FOUR": str(tmp_path / "four.png"),
               "OUT_DIR": str(tmp_path / "hub"), "VGG": str(REPO / "perceptual_models/weights/loss_network/vgg16_caffe.safetensors")}
    Image.new("RGB", (4, 4), "gray").save(tmp_path / "four.png")  # SRNet's 9x9 padding needs 5+
    result = _cli(*[replace.get(a, a) for a in args])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_evaluate_sr_writes_the_table_and_json(tmp_path):
    out = tmp_path / "set5.json"
    result = _cli("evaluate-sr", "--data", str(SET5), "--scale", "4", "--methods", "bicubic", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "28.43 / 0.811" in result.stdout and "paper" in result.stdout
    data = json.loads(out.read_text())
    assert data["dataset"] == "Set5" and data["scale"] == 4 and "bicubic" in data["protocol"]
    assert set(data["methods"]["bicubic"]["per_image"]) >= {"baby.png", "woman.png"}
