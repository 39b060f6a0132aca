"""Table 1 from our own code: Gatys (L-BFGS) vs the feed-forward network, at several sizes.

Feed-forward times are medians over repetitions after warm-up; every clock read follows a GPU
synchronisation. Gatys is timed at each requested iteration count within one run, or, with
`gatys_per_iter`, from a shorter run and extrapolated (and labelled so).
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ..gatys import GATYS_OBJECTIVE, GatysSettings, run
from ..hub import HubSettings
from ..inference import Runner, device_name, synchronize
from ..metrics import psnr
from ..runtime import configure

# The paper's Table 1 (GTX Titan X): Gatys at 100/300/500 iterations and the network, seconds.
PAPER_TABLE1 = {
    256: {"gatys_s": {"100": 3.17, "300": 9.52, "500": 15.86}, "feedforward_s": 0.015},
    512: {"gatys_s": {"100": 10.97, "300": 32.91, "500": 54.85}, "feedforward_s": 0.05},
    1024: {"gatys_s": {"100": 42.89, "300": 128.66, "500": 214.44}, "feedforward_s": 0.21},
}


def versions() -> dict[str, str]:
    return {"torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.version.cuda or "-", "cudnn": str(torch.backends.cudnn.version() or "-")}


def median_seconds(fn, image: torch.Tensor, device: torch.device, repeats: int) -> float:
    """Median wall time of `fn(image)` over `repeats` calls, after two warm-up calls."""
    fn(image)
    fn(image)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn(image)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _eager_fp32_seconds(model_name: str, size: int, device_name_: str, repeats: int, settings: HubSettings) -> float:
    device = torch.device(device_name_)
    return median_seconds(Runner.load(model_name, device, "exact", settings), torch.rand(1, 3, size, size),
                          device, repeats)


def feedforward_variants(model_name: str, size: int, device: torch.device, repeats: int,
                         compiled: Runner | None, onnx: bool, settings: HubSettings) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per image for the fp32 reference and each fast path at size x size, and each fast
    path's PSNR (dB, luma) against the fp32 output.

    "eager_fp32" runs in this process, whose allocator the fast path has tuned; on a CPU,
    "eager_fp32_plain_process" is the same code in a fresh process with glibc's defaults, as a
    plain PyTorch implementation would run.
    """
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    times, agreement = {}, {}
    fast = Runner.load(model_name, device, "fast", settings)
    exact = Runner.load(model_name, device, "exact", settings)
    times["eager_fp32"] = median_seconds(exact, image, device, repeats)
    if device.type == "cpu":
        times["eager_fp32_plain_process"] = in_fresh_process(_eager_fp32_seconds, model_name, size, str(device), repeats,
                                                             settings)
    paths = {"eager_fast": fast}  # rewritten, bf16, channels_last
    if compiled is not None:
        paths["compiled_fast"] = compiled
    if onnx and device.type == "cpu":
        from ..export import export_onnx, onnx_session

        with tempfile.TemporaryDirectory() as folder:
            session = onnx_session(export_onnx(exact.model, Path(folder) / "model.onnx"))
        paths["onnxruntime_fp32"] = lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0]).clamp(0, 1)
    reference = exact(image)
    for name, fn in paths.items():
        times[name] = median_seconds(fn, image, device, repeats)
        agreement[name] = psnr(fn(image), reference)
    return times, agreement


def gatys_seconds(network, size: int, iterations: list[int], device: torch.device,
                  per_iter: int | None) -> tuple[dict[str, float], bool]:
    """Elapsed seconds at each iteration count in one L-BFGS run (or extrapolated from a short one).

    Timed after a 3-iteration warm-up at the same size, as the network is: on a GPU the first
    iterations at a new size spend seconds on cuDNN autotuning (measured on an H200: 1.8-4 s, more
    than 100 steady iterations), a once-per-process cost that is not the method's speed.
    """
    content = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    style = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)).to(device)
    for _ in run(content, style, network, GatysSettings(iterations=3, max_pixels=size * size)):
        pass
    total = per_iter or max(iterations)
    settings = GatysSettings(iterations=total, report_every=1, max_pixels=size * size)
    marks: dict[int, float] = {}
    for progress in run(content, style, network, settings):
        marks[progress.iteration] = progress.elapsed
    if per_iter:
        # Skip the first iteration (allocations) when estimating the steady per-iteration cost.
        per_iteration = (marks[total] - marks[1]) / (total - 1)
        return {str(n): marks[1] + per_iteration * (n - 1) for n in iterations}, True
    return {str(n): marks[n] for n in iterations}, False


def _own_peak_rss_mib() -> float:
    """This process's memory high-water mark. VmHWM belongs to the current address space; ru_maxrss
    survives exec, so a spawned child would report its parent's size at fork time."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def _child(queue, fn, args) -> None:
    queue.put(fn(*args))


def in_fresh_process(fn, *args):
    """`fn(*args)` in a new interpreter: no memory, allocator settings or threads from this one."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, fn, args))
    process.start()
    value = queue.get(timeout=600)
    process.join()
    return value


def _peak_rss_mib_of(task: str, size: int, model_name: str, device_name_: str, settings: HubSettings) -> float:
    device = torch.device(device_name_)
    if task == "stylize":
        configure(device)  # as the app and the CLI run the network
        Runner.load(model_name, device, settings=settings)(torch.rand(1, 3, size, size))
    else:
        from ..vgg import load_loss_network

        network = load_loss_network(GATYS_OBJECTIVE.layers, device=device, settings=settings)
        gatys = GatysSettings(iterations=5, max_pixels=size * size)
        for _ in run(torch.rand(1, 3, size, size), torch.rand(1, 3, 256, 256), network, gatys):
            pass
    return _own_peak_rss_mib()


def peak_rss_mib(task: str, size: int, model_name: str, device: torch.device, settings: HubSettings) -> float:
    """Peak resident memory of a fresh process doing one task (so earlier work does not count)."""
    return in_fresh_process(_peak_rss_mib_of, task, size, model_name, str(device), settings)


def run_bench(sizes: list[int], iterations: list[int], device: torch.device, model_name: str, repeats: int,
              gatys_per_iter: int | None, compile_fast: bool, onnx: bool, memory: bool, settings: HubSettings) -> dict:
    from ..vgg import load_loss_network

    # What the app and the CLI set up, stated first so every timing here shares it (except the
    # "plain process" one, a fresh process with glibc's defaults).
    runtime = configure(device)
    network = load_loss_network(GATYS_OBJECTIVE.layers, device=device, settings=settings)
    compiled = None
    if compile_fast:
        compiled = Runner.load(model_name, device, "fast", settings)
        start = time.perf_counter()
        compiled.compile()
        compile_seconds = time.perf_counter() - start
    rows = []
    for size in sizes:
        variants, agreement = feedforward_variants(model_name, size, device, repeats, compiled, onnx, settings)
        best = min((k for k in variants if k != "eager_fp32_plain_process"), key=variants.get)
        gatys, extrapolated = gatys_seconds(network, size, iterations, device, gatys_per_iter)
        rows.append({
            "size": size, "feedforward_s": variants[best], "feedforward_path": best,
            "feedforward_variants": variants, "psnr_vs_eager_fp32": agreement,
            "fast_vs_eager_fp32": variants["eager_fp32"] / variants[best],
            **({"fast_vs_eager_fp32_plain_process": variants["eager_fp32_plain_process"] / variants[best]}
               if "eager_fp32_plain_process" in variants else {}),
            "gatys_s": gatys, "speedup": {k: v / variants[best] for k, v in gatys.items()},
            "extrapolated": extrapolated,
        })
    result = {
        "device": device_name(device), "versions": versions(), "model": model_name,
        "settings": {"repeats": repeats, "gatys_per_iter": gatys_per_iter,
                     "gatys_layers": f"content {', '.join(GATYS_OBJECTIVE.content_layers)}; "
                                     f"style {', '.join(GATYS_OBJECTIVE.style_layers)} (VGG-16, the paper's)",
                     "threads": torch.get_num_threads()},
        "runtime": runtime.as_dict(),
        "rows": rows,
    }
    if compiled is not None:
        result["compile_seconds"] = compile_seconds
    if memory:
        result["peak_rss_mib"] = {
            "stylize_1024": peak_rss_mib("stylize", 1024, model_name, device, settings),
            "gatys_512": peak_rss_mib("gatys", 512, model_name, device, settings),
        }
    return result


def format_tables(result: dict) -> str:
    """Our Table 1 with the paper's beside it."""
    iterations = list(result["rows"][0]["gatys_s"]) if result["rows"] else []
    header = (f"{'size':>6} {'':<24}" + "".join(f"{'Gatys ' + n:>12}" for n in iterations)
              + f"{'network':>11}" + "".join(f"{'x at ' + n:>10}" for n in iterations[-1:]))
    lines = ["Table 1: seconds per image", header]
    for row in result["rows"]:
        paper = PAPER_TABLE1.get(row["size"])
        if paper:
            lines.append(f"{row['size']:>6} {'paper (GTX Titan X)':<24}"
                         + "".join(f"{paper['gatys_s'].get(n, float('nan')):>12.2f}" for n in iterations)
                         + f"{paper['feedforward_s']:>11.3f}"
                         + "".join(f"{paper['gatys_s'][n] / paper['feedforward_s']:>9.0f}x"
                                   for n in iterations[-1:] if n in paper["gatys_s"]))
        label = "ours" + (" (extrapolated)" if row["extrapolated"] else "")
        lines.append(f"{'':>6} {label:<24}" + "".join(f"{row['gatys_s'][n]:>12.2f}" for n in iterations)
                     + f"{row['feedforward_s']:>11.4f}" + "".join(f"{row['speedup'][n]:>9.0f}x" for n in iterations[-1:]))
    lines += ["", f"Device: {result['device']}", "", "Feed-forward paths (seconds per image):"]
    for row in result["rows"]:
        variants = ", ".join(f"{k} {v:.4f}" for k, v in row["feedforward_variants"].items())
        plain = row.get("fast_vs_eager_fp32_plain_process")
        lines.append(f"  {row['size']:>5}: {variants}; eager fp32 / fastest = {row['fast_vs_eager_fp32']:.2f}x"
                     + (f" (in a plain process: {plain:.2f}x)" if plain else ""))
        lines.append("         PSNR vs eager fp32 (dB): "
                     + ", ".join(f"{k} {v:.1f}" for k, v in row["psnr_vs_eager_fp32"].items()))
    if "peak_rss_mib" in result:
        lines.append("Peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in result["peak_rss_mib"].items()))
    return "\n".join(lines)
