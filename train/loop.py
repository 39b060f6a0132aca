"""The one training loop shared by the style, SR and SRCNN trainers.

Progress bar, CSV loss log (a row appended as it is made, so another process can follow it) and
loss-curve PNG, validation renders, checkpoints that resume exactly, a wall-clock budget, a stop
file, a moving average of the weights, bf16/channels_last on CUDA, and DistributedDataParallel
under torchrun (rank 0 alone logs and writes files).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from perceptual_models.errors import ConfigError
from perceptual_models.image_io import crop_to_multiple, load_image, resize_longer_side, save_image
from perceptual_models.inference import pick_device
from perceptual_models.losses import stability_loss
from perceptual_models.networks import build, load_from_files, save_pretrained
from perceptual_models.runtime import configure

from .data import PhotoBatches

VAL_SIDE = 256  # longer side of a --val-image render
LOG_COLUMNS = ("step", "total", "content", "style", "tv", "pixel", "stability", "seconds")


@dataclass
class LoopSettings:
    data: list[str]
    run_dir: Path
    iterations: int = 2000
    batch_size: int = 4
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" (the paper) or "cosine" (decays to 0 at the last step)
    # The network saved (and rendered for validation) is an exponential moving average of the weights with this
    # decay; 0 saves the last weights. Averaging smooths the step-to-step noise of a constant learning rate.
    ema_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # "bf16" | "none" | "auto" (bf16 on CUDA only)
    # torch.compile the network and the loss network. Off: on an H200 a style trained at 40 it/s compiled,
    # after 48 s of compiling, and 45 it/s eager; on a CPU compiling costs minutes per run.
    compile: bool = False
    threads: int = 0
    log_every: int = 10
    val_every: int = 200
    val_image: Path | None = None  # the photo rendered every `val_every` steps (default: a crop of a training photo)
    checkpoint_every: int = 200  # 0: only when the run ends or stops
    max_minutes: float = 0.0  # of this run, its resumed parts included, the init_from network's time not
    stop_file: Path | None = None  # when this file appears, save and stop as if out of time (the app's Stop)
    resume: bool = False
    # A trained network (`x.safetensors` beside its `x.json`) to start from when there is no checkpoint to
    # resume: its weights, iteration count and seconds carry on, with a fresh Adam. The bundled networks keep
    # no optimizer state, and scratch run folders do not outlive a session: this is how training goes on.
    init_from: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # This process's place in a torchrun launch (`python -m train` reads WORLD_SIZE, RANK, LOCAL_RANK).
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    def __post_init__(self) -> None:
        """Settings that cannot work are refused here, before any photo or network is loaded."""
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"The moving average's decay must be in [0, 1), got {self.ema_decay}.")
        if self.log_every < 1 or self.val_every < 0 or self.checkpoint_every < 0:
            raise ConfigError(f"Log every N >= 1 steps, validate and checkpoint every N >= 0 (0: never, or only "
                              f"at the end); got {self.log_every}, {self.val_every}, {self.checkpoint_every}.")
        for name, low in (("iterations", 1), ("batch_size", 1), ("threads", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}.")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be above 0, got {self.lr}.")


def _setup_distributed(settings: LoopSettings) -> torch.device:
    """This process's device; starts the process group of a torchrun launch."""
    device = pick_device(settings.device)
    if device.type == "cuda":
        torch.cuda.set_device(settings.local_rank)
        device = torch.device("cuda", settings.local_rank)
    if settings.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                    average: nn.Module | None = None) -> None:
    """Model, moving average and Adam state as safetensors, step counters as JSON: no pickle anywhere."""
    optim_state = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if average is not None:
        tensors.update({f"average.{k}": v.detach().cpu().contiguous() for k, v in average.state_dict().items()})
    for index, param_state in optim_state["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
    tmp = run_dir / "checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(run_dir / "checkpoint.safetensors")
    meta = {**state, "param_groups": optim_state["param_groups"]}
    (run_dir / "checkpoint.json").write_text(json.dumps(meta, indent=2))


def check_same_network(saved: dict, architecture: dict, what: str, advice: str) -> None:
    """Refuse to go on from a network of another kind (other --norm, --upsample, scale...) with a message,
    not a state-dict error. Settings an older file did not record are not compared."""
    differs = {name: (saved["params"][name], value) for name, value in architecture["params"].items()
               if name in saved.get("params", {}) and saved["params"][name] != value}
    if saved.get("architecture") != architecture["architecture"] or differs:
        which = ", ".join(f"{name} {old!r} (now {new!r})" for name, (old, new) in differs.items()) or (
            f"architecture {saved.get('architecture')!r} (now {architecture['architecture']!r})")
        raise ConfigError(f"{what} is of another network: {which}. {advice}")


def load_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    average: nn.Module | None = None) -> dict:
    """Restores what `save_checkpoint` wrote; a checkpoint without an average starts it at its weights."""
    tensors = load_file(str(run_dir / "checkpoint.safetensors"))
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if average is not None:
        averaged = {k[len("average."):]: v for k, v in tensors.items() if k.startswith("average.")}
        average.load_state_dict(averaged or model.state_dict())
        if not averaged:
            meta["averaged_steps"] = 0  # the average starts here, with its warm-up
    optim_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": optim_state, "param_groups": meta.pop("param_groups")})
    return meta


def trained_iterations(path: Path) -> int:
    """The iterations a saved network (`x.safetensors` beside `x.json`) was trained for: where a run
    started from it counts on, so its `iterations` must be above this."""
    return int(json.loads(Path(path).with_suffix(".json").read_text()).get("training", {}).get("iterations", 0))


def start_from_network(path: Path, model: nn.Module, architecture: dict) -> tuple[int, float, dict]:
    """Load a trained network's weights into `model`; returns its iteration count, its seconds and a note
    of where the run started (kept in the checkpoints and the model config)."""
    trained, config = load_from_files(path)
    check_same_network(config, architecture, f"{path}",
                       "Train with the options it was trained with (its JSON config lists them).")
    model.load_state_dict(trained.state_dict())
    iterations, seconds = trained_iterations(path), float(config.get("training", {}).get("seconds", 0.0))
    return iterations, seconds, {"weights": str(path), "iterations": iterations, "seconds": seconds,
                                 "created": config.get("created", "unknown")}


def read_log(path: Path, up_to_step: float = math.inf) -> list[dict[str, float]]:
    """The rows of a run's log.csv up to `up_to_step`, while it is being written too (the app follows a
    job this way): a row cut short by the writer, or by a killed run, ends the list."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                values = {key: float(value) for key, value in row.items()}
            except (TypeError, ValueError):
                break
            if values["step"] > up_to_step:
                break
            rows.append(values)
    return rows


def _write_log(path: Path, rows: list[dict[str, float]], append: bool = False) -> None:
    with path.open("a" if append else "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, restval=0.0)  # an older log has no stability column
        if not append:
            writer.writeheader()
        writer.writerows(rows)


def plot_losses(rows: list[dict[str, float]], path: Path, title: str) -> None:
    """Loss curves (log scale) of every term that is not constantly zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    steps = [row["step"] for row in rows]
    for name in LOG_COLUMNS[1:-1]:
        values = [row.get(name, 0.0) for row in rows]
        if any(v > 0 for v in values):
            ax.plot(steps, values, label=name, linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def average_decay(decay: float, updates: int) -> float:
    """The decay of the average's update number `updates`: it warms up as (1 + n) / (10 + n), as in
    TensorFlow's ExponentialMovingAverage, so the average of a run of n steps weighs roughly its last n / 9
    steps until `decay` caps it (0.999: after about 9,000 steps)."""
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float, updates: int) -> None:
    """One step of the weights' exponential moving average (batch-norm statistics too)."""
    decay = average_decay(decay, updates)
    for kept, current in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
        if kept.is_floating_point():
            kept.lerp_(current, 1 - decay)
        else:  # batch norm's step counter
            kept.copy_(current)


def learning_rate(settings: LoopSettings, step: int) -> float:
    """The rate for `step`, a pure function of the step so that resuming needs no scheduler state."""
    if settings.lr_schedule == "cosine":
        return settings.lr * 0.5 * (1 + math.cos(math.pi * step / settings.iterations))
    return settings.lr


def train(task: Any, settings: LoopSettings) -> Path | None:
    """Run (or resume) training; returns the saved model path on rank 0 (None on other ranks, or if no step ran).

    A run stopped by `max_minutes` or the stop file saves its network too, with `finished: false`
    in the config.
    """
    rank, world_size, device = settings.rank, settings.world_size, _setup_distributed(settings)
    # The process-wide set-up of a training run: threads, flushed denormals, cuDNN autotuning on CUDA;
    # glibc's allocator as it is (the fast path's setting is for serving).
    configure(device, settings.threads or None, keep_freed_memory=False, flush_denormal=True)
    use_bf16 = settings.amp == "bf16" or (settings.amp == "auto" and device.type == "cuda")
    run_dir = Path(settings.run_dir)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "val").mkdir(exist_ok=True)

    torch.manual_seed(settings.seed)
    architecture = task.architecture()
    model = build(architecture).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    loss_fn = task.make_loss(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    average = copy.deepcopy(model).requires_grad_(False) if settings.ema_decay else None
    averaged_steps = 0

    start_step, seconds_before, started_from = 0, 0.0, None
    if settings.resume and (run_dir / "checkpoint.safetensors").is_file():
        check_same_network(json.loads((run_dir / "checkpoint.json").read_text()), architecture,
                           f"The checkpoint in {run_dir}",
                           "Resume with the options it was trained with, or use a new --run-dir.")
        meta = load_checkpoint(run_dir, model, optimizer, average)
        start_step, seconds_before = meta["step"], meta["seconds"]
        started_from = meta.get("started_from")
        averaged_steps = meta.get("averaged_steps", 0) if average is not None else 0
    elif settings.init_from is not None:
        start_step, seconds_before, started_from = start_from_network(settings.init_from, model, architecture)
        if start_step >= settings.iterations:
            raise ConfigError(f"{settings.init_from} has already trained {start_step} iterations; ask for more "
                              f"with --iterations (the total, counting those).")
        if average is not None:
            average.load_state_dict(model.state_dict())
    if rank == 0:  # what this run trains with, readable while it runs (the model config repeats it)
        (run_dir / "run.json").write_text(json.dumps(
            {**architecture, "task": task.settings(), **({"started_from": started_from} if started_from else {})},
            indent=2) + "\n")
    kept = average if average is not None else model  # what validation renders and the run saves
    # Not this run's: the started-from network's time is outside max_minutes, and logs, renders and
    # checkpoints come every N steps of this run.
    steps_given, seconds_given = (started_from["iterations"], started_from["seconds"]) if started_from else (0, 0.0)
    rows = read_log(run_dir / "log.csv", start_step) if settings.resume else []
    if rank == 0:
        _write_log(run_dir / "log.csv", rows)  # without the rows of steps after the checkpoint

    trained = nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    if settings.compile:
        trained = torch.compile(trained)
        if getattr(loss_fn, "network", None) is not None:
            loss_fn.network = torch.compile(loss_fn.network)
    data = PhotoBatches(
        settings.data, task.crop, settings.batch_size, task.rescale_crops, settings.seed, rank, world_size
    )
    if settings.val_image is None:
        validation = data.validation_image()
    else:  # a whole photo at a size where a person can see the style appear
        validation = crop_to_multiple(resize_longer_side(load_image(settings.val_image), VAL_SIDE), 8)
    validation_input = task.prepare(validation)[0].to(device)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
    )

    def write_checkpoint(step: int, seconds: float) -> None:
        state = {"step": step, "seconds": seconds, **architecture}
        if started_from is not None:
            state["started_from"] = started_from
        if average is not None:
            state["averaged_steps"] = averaged_steps
        save_checkpoint(run_dir, model, optimizer, state, average)

    started = time.monotonic()
    step = start_step
    interval_sums: dict[str, torch.Tensor] = {}
    interval_steps = 0
    progress = tqdm(
        total=settings.iterations, initial=start_step, disable=rank != 0, desc=run_dir.name,
        unit="it", dynamic_ncols=True,
    )
    while step < settings.iterations:
        photos = data.batch(step).to(device)
        inputs, target = task.prepare(photos)
        if device.type == "cuda":
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, step)
        with autocast:
            output = trained(inputs)
            losses = loss_fn(output.float(), loss_fn.targets(target))
            losses["stability"] = (stability_loss(trained, inputs, output.float(), task.stability_sigma)
                                   if task.stability_weight else losses["total"].new_zeros(()))
            losses["total"] = losses["total"] + task.stability_weight * losses["stability"]
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        if average is not None:
            update_average(average, model, settings.ema_decay, averaged_steps)
            averaged_steps += 1
        step += 1
        seconds = seconds_before + time.monotonic() - started
        progress.update(1)

        stopped = settings.stop_file is not None and settings.stop_file.exists()
        out_of_time = torch.tensor(
            float(stopped or (settings.max_minutes > 0 and seconds - seconds_given > settings.max_minutes * 60)),
            device=device
        )
        if world_size > 1:
            dist.all_reduce(out_of_time, op=dist.ReduceOp.MAX)  # every rank stops at the same step

        for name in LOG_COLUMNS[1:-1]:  # summed on the device: no host sync on every step
            interval_sums[name] = interval_sums.get(name, 0) + losses[name].detach()
        interval_steps += 1
        if rank == 0 and ((step - steps_given) % settings.log_every == 0 or step == settings.iterations or out_of_time):
            # The mean over the interval: single batches of random crops are too noisy to read. A run
            # that stops logs its last partial interval: the saved config's final losses come from the log.
            row = {name: float(total) / interval_steps for name, total in interval_sums.items()}
            rows.append({"step": step, **row, "seconds": round(seconds, 2)})
            _write_log(run_dir / "log.csv", rows[-1:], append=True)
            interval_sums, interval_steps = {}, 0
            progress.set_postfix({k: f"{v:.4g}" for k, v in row.items() if v})
        if rank == 0 and settings.val_every and (step - steps_given) % settings.val_every == 0:
            kept.eval()
            with torch.no_grad(), autocast:
                save_image(kept(validation_input).float(), run_dir / "val" / f"step_{step:06d}.jpg")
            model.train()

        periodic = settings.checkpoint_every and (step - steps_given) % settings.checkpoint_every == 0
        if rank == 0 and (periodic or out_of_time or step == settings.iterations):
            write_checkpoint(step, seconds)
        if out_of_time:
            if rank == 0:
                why = "stop file found" if stopped else "--max-minutes reached"
                progress.write(f"{why} at step {step}; resume with --resume.")
            break
    progress.close()

    saved = None
    if rank == 0 and rows:
        plot_losses(rows, run_dir / "loss.png", f"{run_dir.name} ({step} iterations)")
    if rank == 0 and step > start_step:
        # Also when --max-minutes stopped the run early: the network so far is usable (and resumable).
        last = rows[-5:]
        config = {
            **architecture,
            "task": task.settings(),
            "training": {
                "iterations": step, "planned_iterations": settings.iterations, "finished": step >= settings.iterations,
                "batch_size_per_process": settings.batch_size, "processes": world_size,
                "optimizer": f"Adam lr {settings.lr} ({settings.lr_schedule})", "seed": settings.seed, "device": str(device),
                "weights": (f"exponential moving average over {averaged_steps} steps, decay {settings.ema_decay} "
                            f"(warming up as (1 + n) / (10 + n): {average_decay(settings.ema_decay, averaged_steps - 1):.4g} "
                            "at the end)" if average is not None else "the last step's"),
                "bf16": use_bf16, "data": [str(d) for d in settings.data], "photos": len(data.images),
                "seconds": round(seconds, 1), **({"started_from": started_from} if started_from else {}),
                **settings.extra,
            },
            "loss_network": _loss_network_info(loss_fn),
            "final_losses": {k: sum(r[k] for r in last) / len(last) for k in LOG_COLUMNS[1:-1]},
            "git_commit": _git_commit(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        saved = save_pretrained(kept, config, run_dir / "model")
        print(f"saved {saved} and {saved.with_suffix('.json')}")
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return saved


def _loss_network_info(loss_fn: nn.Module) -> dict[str, str] | None:
    network = getattr(loss_fn, "network", None)
    if network is None:
        return None
    return {"arch": network.arch, "format": network.weight_format, "layers": list(network.layers),
            "source": network.source}
