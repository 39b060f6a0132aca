"""The fast inference paths agree with the exact fp32 reference; ONNX export and the bench run."""

import json
import os
import subprocess
import sys
import threading

import pytest
import torch
from torch import nn

from perceptual_models.errors import ConfigError
from perceptual_models.export import require
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import degrade, load_image, resize_longer_side
from perceptual_models.inference import Runner, bicubic_upscale, cpu_has_bf16, pick_device, upscale
from perceptual_models.metrics import psnr
from perceptual_models.networks import SRCNN, SRNet, TransformerNet, save_pretrained
from perceptual_models.runtime import LongWork, configure

from conftest import REPO, TRAIN_DATA

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    torch.manual_seed(0)
    return save_pretrained(TransformerNet(), {"architecture": "transformer", "params": {}},
                           tmp_path_factory.mktemp("m") / "style")


def test_fast_path_matches_the_reference(style_model):
    image = torch.rand(1, 3, 70, 93)
    exact, fast = Runner.load(str(style_model), CPU, "exact"), Runner.load(str(style_model), CPU, "fast")
    assert fast.use_bf16 == cpu_has_bf16() and not exact.use_bf16
    reference = exact(image)
    assert reference.shape == image.shape and reference.dtype == torch.float32
    assert psnr(fast(image), reference) >= 40


def test_compiled_path_matches_and_is_shared_between_models(style_model):
    from torch._dynamo.utils import counters

    limit = torch._dynamo.config.recompile_limit
    first, second = Runner.load(str(style_model), CPU, "fast"), Runner(TransformerNet(), {}, CPU, "fast")
    first.compile()
    graphs = counters["stats"]["unique_graphs"]
    second.compile()
    assert first.compiled and second.compiled
    assert graphs > 0 and counters["stats"]["unique_graphs"] == graphs  # other weights, the same graphs
    assert torch._dynamo.config.recompile_limit == limit  # the limit travels with the call, not the process
    for size in ((64, 64), (37, 53)):  # a size it was not warmed up with
        image = torch.rand(1, 3, *size)
        assert psnr(first(image), Runner.load(str(style_model), CPU, "exact")(image)) >= 40
        assert first(image).shape == image.shape
    photo = torch.rand(48, 40, 3).permute(2, 0, 1)[None]  # an HWC array as NCHW: channels_last already
    assert first(photo).shape == (1, 3, 48, 40) and counters["stats"]["unique_graphs"] == graphs  # no recompile


def test_compiled_call_allows_many_graphs_in_any_thread():
    """The app compiles and serves in worker threads, where torch.compile's settings made in the
    main thread do not apply: eleven architectures through the shared compiled call, in a fresh
    thread, all compile (torch's default limit of 8 would send the ninth to eager)."""
    from torch._dynamo.utils import counters

    from perceptual_models.inference import RECOMPILE_LIMIT, _compiled_call

    networks = [nn.Sequential(*[nn.Conv2d(3, 3, 1) for _ in range(depth)]) for depth in range(1, 12)]
    graphs, limit_hits = counters["stats"]["unique_graphs"], sum(counters["unimplemented"].values())

    shapes = []

    def serve() -> None:
        with torch.inference_mode():
            shapes.extend(_compiled_call()(network, torch.rand(1, 3, 8, 8)).shape for network in networks)

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join()
    assert shapes == [(1, 3, 8, 8)] * len(networks)
    assert counters["stats"]["unique_graphs"] - graphs == len(networks) < RECOMPILE_LIMIT
    assert sum(counters["unimplemented"].values()) == limit_hits


def test_runtime_set_up_is_explicit_and_reported():
    before = torch.get_num_threads()
    try:
        choices = configure(CPU, 1)
        assert torch.get_num_threads() == choices.threads == 1
    finally:
        torch.set_num_threads(before)
    assert not choices.cudnn_benchmark
    assert choices.keep_freed_memory == sys.platform.startswith("linux")  # glibc's mallopt
    assert "threads" in choices.summary() and choices.as_dict()["device"] == "cpu"


def test_long_work_runs_steps_in_low_priority_threads_of_its_own():
    """Each step of a long job runs in a long-work thread at the lowest CPU priority, with the process's
    thread count (full speed when alone); other threads keep their priority."""
    work = LongWork(workers=2)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def job():
        for _ in range(3):
            yield (threading.current_thread().name.startswith("long-work"), torch.get_num_threads(),
                   os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    assert list(work.steps(job())) == [(True, torch.get_num_threads(), 19)] * 3
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine

    closed = threading.Event()

    def endless():
        try:
            while True:
                yield
        finally:
            closed.set()

    steps = work.steps(endless())
    next(steps)
    steps.close()  # a cancelled request: the job's own clean-up runs
    assert closed.is_set()


def test_upscale_methods_and_timing():
    lr = torch.rand(1, 3, 11, 13)
    out, seconds = upscale(lr, "bicubic", 4)
    assert out.shape == (1, 3, 44, 52) and seconds > 0
    assert torch.equal(out, bicubic_upscale(lr, 4))
    for net in (SRNet(8), SRCNN(4)):
        runner = Runner(net, {}, CPU)
        out, seconds = upscale(lr, "pixel", net.scale, runner)
        assert out.shape == (1, 3, 11 * net.scale, 13 * net.scale) and seconds > 0
        assert torch.equal(out, runner(lr))  # the network's own pass, timed
    with pytest.raises(ValueError, match="needs a loaded model"):
        upscale(lr, "feat", 4)


@pytest.mark.parametrize("name", ["sr/x4_pixel", "sr/x8_pixel", "srcnn/x4"])
@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_strips_join_without_seams(name, precision):
    """A photo's LR version upscaled in four strips equals one whole pass (a seam would be a band of errors)."""
    runner = Runner.load(name, CPU, precision, HubSettings.from_env())
    scale = runner.config["params"]["scale"]
    photo = resize_longer_side(load_image(TRAIN_DATA / "urban100" / "img_020.jpg"), 96 * scale)
    lr = degrade(photo[..., : 71 * scale, :], scale, 0.0)  # 96x71: 4 strips of 18 rows (17 in the last), each
    # shorter than its margins
    whole = runner(lr)
    strips, _ = upscale(lr, "pixel", scale, runner, strip_pixels=lr.numel() // 3 * scale**2 // 4 + 1)
    assert strips.shape == whole.shape == (1, 3, 71 * scale, 96 * scale)
    assert (strips - whole).abs().max() <= 1e-6  # too small a margin: ~1e-6 (exact) or ~1e-3 (bf16) off


def test_cuda_request_without_a_gpu_is_clear():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            pick_device("cuda")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_export_onnx_command(style_model, tmp_path):
    out = tmp_path / "style.onnx"
    result = subprocess.run([sys.executable, "-m", "perceptual_models", "export-onnx", "--model", str(style_model),
                             "-o", str(out)], check=False, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.is_file() and "ONNX Runtime vs PyTorch fp32" in result.stdout
    assert float(result.stdout.split("fp32: ")[1].split(" dB")[0]) >= 60


def test_onnx_tools_missing_is_a_clear_error():
    """The app's install leaves the ONNX tools out (requirements-dev.txt has them)."""
    with pytest.raises(ConfigError, match="no_such_onnx_tool, which the app does not install.*requirements-dev.txt"):
        require("onnx", "no_such_onnx_tool")


def test_bench_command_writes_table_and_json(style_model, tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "perceptual_models", "bench", "--model", str(style_model), "--sizes", "32",
         "--gatys-iters", "2,4", "--gatys-per-iter", "3", "--repeats", "1", "--no-compile", "--no-memory",
         "--json", str(out)], check=False, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Table 1" in result.stdout and "ours (extrapolated)" in result.stdout
    data = json.loads(out.read_text())
    assert "CPU" in data["device"] and data["versions"]["torch"] == torch.__version__
    assert data["runtime"]["device"] == "cpu" and data["runtime"]["threads"] == torch.get_num_threads()
    row = data["rows"][0]
    assert row["size"] == 32 and row["extrapolated"] and set(row["gatys_s"]) == {"2", "4"}
    assert row["gatys_s"]["4"] > row["gatys_s"]["2"] > 0 and row["feedforward_s"] > 0
    assert row["speedup"]["4"] == pytest.approx(row["gatys_s"]["4"] / row["feedforward_s"])
    variants = row["feedforward_variants"]
    assert {"eager_fp32", "eager_fp32_plain_process", "eager_fast", "onnxruntime_fp32"} <= set(variants)
    assert row["fast_vs_eager_fp32_plain_process"] == pytest.approx(variants["eager_fp32_plain_process"]
                                                                   / row["feedforward_s"])
    assert set(row["psnr_vs_eager_fp32"]) == {"eager_fast", "onnxruntime_fp32"}
    assert min(row["psnr_vs_eager_fp32"].values()) >= 40



def test_style_names_round_trip_and_leave_other_models_out():
    from perceptual_models.inference import style_model_name, style_names

    names = [style_model_name("my_drawing"), "sr/x4_feat", "style/wave", "loss_network/vgg16_caffe", "srcnn/x4"]
    assert style_names(names) == ["my_drawing", "wave"]
    assert [style_model_name(s) for s in style_names(names)] == ["style/my_drawing", "style/wave"]
