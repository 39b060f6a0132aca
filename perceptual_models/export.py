"""ONNX export of the trained networks (dynamic height and width), checked against PyTorch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError
from .metrics import psnr


def require(*packages: str) -> None:
    """The ONNX tools are development requirements, not the app's: say how to get them if missing."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export and checks need {', '.join(missing)}, which the app does not install: "
                          "pip install -r requirements-dev.txt")


def export_onnx(model: nn.Module, path: str | Path, sample: tuple[int, int] = (64, 64)) -> Path:
    """Write `model` as ONNX with a dynamic batch, height and width."""
    require("onnx", "onnxscript")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(1, 3, *sample)
    size = {2: torch.export.Dim("height", min=8, max=4096), 3: torch.export.Dim("width", min=8, max=4096)}
    torch.onnx.export(model.eval(), (x,), str(path), input_names=["image"], output_names=["output"],
                      dynamic_shapes={"x": size}, opset_version=18, external_data=False)
    return path


def onnx_session(path: str | Path):
    """An ONNX Runtime CPU session with all graph optimisations."""
    require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_onnx(path: str | Path, model: nn.Module, sizes: tuple[tuple[int, int], ...] = ((64, 64), (67, 90))) -> float:
    """The lowest PSNR (dB) between ONNX Runtime and PyTorch fp32 over inputs of several sizes."""
    session = onnx_session(path)
    worst = float("inf")
    for height, width in sizes:
        x = torch.rand(1, 3, height, width)
        with torch.inference_mode():
            reference = model.eval()(x).clamp(0, 1)
        output = torch.from_numpy(session.run(None, {"image": x.numpy()})[0]).clamp(0, 1)
        if output.shape != reference.shape:
            raise RuntimeError(f"ONNX output {tuple(output.shape)} != PyTorch {tuple(reference.shape)}")
        worst = min(worst, psnr(output, reference))
    return worst
