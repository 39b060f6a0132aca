"""The GPU service check (`python -m demo.tools.service_check`) on the CPU with a tiny budget, as a lent
GPU machine runs it: without Gradio or PyAV. The Gallery shows its report."""

import json
import shlex
import subprocess
import sys

import gradio as gr

from demo import gallery_tab
from demo.tools.app_process import REPO
from demo.tools.gpu_session import main as gpu_session

from conftest import STYLES

# What the GPU machine lacks, made unimportable: the check must not need them.
WITHOUT_GRADIO = ("import runpy, sys; sys.modules['gradio'] = sys.modules['av'] = None; "
                  "runpy.run_module('demo.tools.service_check', run_name='__main__')")
TINY = ["--device", "cpu", "--sizes", "64,96", "--repeats", "1", "--gatys-size", "64", "--gatys-iterations", "3",
        "--sr-side", "64", "--recon-size", "64", "--recon-iterations", "3", "--frame-size", "64", "--frames", "2"]


def test_service_check_drives_every_action_without_gradio(tmp_path):
    out = tmp_path / "gpu_service_check.json"
    result = subprocess.run([sys.executable, "-c", WITHOUT_GRADIO, *TINY, "--out", str(out)], check=False, cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [row["size"] for row in report["stylize"]] == [64, 96]
    assert all(row["median_s"] > 0 for row in report["stylize"])
    assert report["gatys"]["iterations"] == 3 and report["reconstruction"]["iterations"] == 3
    assert [row["scale"] for row in report["super_resolution"]] == [4, 8]
    assert all(m["psnr"] > 10 and 0 < m["ssim"] <= 1 for row in report["super_resolution"] for m in row["methods"])
    assert report["live"]["frames"] == 2 and report["live"]["median_ms"] > 0
    assert not report["compiled"]  # "auto" compiles on a GPU only, as app.py

    table = gallery_tab.service_check_markdown(report)
    assert "| stylise 96 px |" in table and "| Gatys 64 px, 3 iterations |" in table
    assert "| super-resolution x8 of 64x64, with PSNR/SSIM |" in table and "| live frame at 64 px" in table


def test_the_gallery_shows_the_service_check_when_there_is_one(tmp_path, monkeypatch):
    report = {"device": "NVIDIA H100 (test)", "torch": "2.x", "compiled": True, "date": "2026-12-07",
              "stylize": [{"size": 512, "first_s": 0.5, "median_s": 0.003}],
              "gatys": {"size": 512, "iterations": 100, "seconds": 0.9, "per_iteration_s": 0.009},
              "super_resolution": [{"scale": 4, "input": "2048x2048", "seconds": 0.4,
                                    "methods": [{"method": "feat", "seconds": 0.01, "psnr": 30.0, "ssim": 0.9}]}],
              "reconstruction": {"layer": "relu2_2", "size": 192, "iterations": 100, "seconds": 0.5},
              "live": {"size": 512, "median_ms": 6.0, "frames_per_s": 160.0}}
    monkeypatch.setattr(gallery_tab, "SERVICE_CHECK", tmp_path / "gpu_service_check.json")
    with gr.Blocks() as page:
        gallery_tab.build_gallery_tab()
    assert not [block for block in page.blocks.values() if block.elem_id == "gpu-service-check"]

    gallery_tab.SERVICE_CHECK.write_text(json.dumps(report))
    with gr.Blocks() as page:
        gallery_tab.build_gallery_tab()
    shown = next(block.value for block in page.blocks.values() if block.elem_id == "gpu-service-check")
    assert "On NVIDIA H100 (test) (torch 2.x, compiled networks)" in shown
    assert "| stylise 512 px | 0.0030 (first 0.500) |" in shown and "(160 frames/s)" in shown


def test_gpu_session_runs_the_service_check_then_trains_in_the_time_left(tmp_path):
    """The one command for a lent GPU, on the CPU with tiny budgets: both reports come back in $OUT."""
    out = tmp_path / "out"
    train = shlex.join(["--data", str(REPO / "demo" / "examples"), "--style-dir", str(STYLES), "--styles", "wave",
                        "--iterations", "1", "--image-size", "32", "--batch-size", "2", "--work", str(tmp_path / "runs")])
    gpu_session(["--out", str(out), "--device", "cpu", "--service-args", shlex.join(TINY[2:]), "--train-args", train])
    log = (out / "gpu_session.log").read_text()
    assert log.count(": done") == 2, log[-3000:]
    assert json.loads((out / "gpu_service_check.json").read_text())["gatys"]["iterations"] == 3
    assert json.loads((out / "summary.json").read_text())["wave"]["finished"]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_service_check.json", "gpu_session.log", "style_wave.tar",
                                                    "summary.json"]  # the device tool returns at most 8 files
