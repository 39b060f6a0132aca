"""The one training loop shared by the style, SR and SRCNN trainers.

Progress bar, CSV loss log (a row appended as it is made, so another process can follow it) and
loss-curve PNG, validation renders, checkpoints that resume exactly, a wall-clock budget, a stop
file, a moving average of the weights, bf16/channels_last on CUDA, and DistributedDataParallel
under torchrun (rank 0 alone logs and writes files). `train(spec)` reads top to bottom: `Trainer`
sets a run up, then steps, logs, renders, checkpoints and exports it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from perceptual_models.errors import ConfigError
from perceptual_models.image_io import crop_to_multiple, load_image, resize_longer_side, save_image
from perceptual_models.inference import cpu_has_bf16, pick_device
from perceptual_models.losses import stability_loss
from perceptual_models.networks import build, load_from_files, save_pretrained
from perceptual_models.runtime import configure

from .data import PhotoBatches
from .run import LOG_COLUMNS, LoopSettings, RunFolder, RunSpec, trained_iterations

VAL_SIDE = 256  # longer side of a --val-image render


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


def save_checkpoint(folder: RunFolder, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                    average: nn.Module | None = None) -> None:
    """Model, moving average and Adam state as safetensors, step counters as JSON: no pickle anywhere."""
    optim_state = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if average is not None:
        tensors.update({f"average.{k}": v.detach().cpu().contiguous() for k, v in average.state_dict().items()})
    for index, param_state in optim_state["state"].items():
        for key, value in param_state.items():
            tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
    tmp = folder.checkpoint.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(folder.checkpoint)
    meta = {**state, "param_groups": optim_state["param_groups"]}
    folder.checkpoint_state.write_text(json.dumps(meta, indent=2))


def check_same_network(saved: dict, architecture: dict, what: str, advice: str) -> None:
    """Refuse to go on from a network of another kind (other --norm, --upsample, scale...) with a message,
    not a state-dict error. Settings an older file did not record are not compared."""
    differs = {name: (saved["params"][name], value) for name, value in architecture["params"].items()
               if name in saved.get("params", {}) and saved["params"][name] != value}
    if saved.get("architecture") != architecture["architecture"] or differs:
        which = ", ".join(f"{name} {old!r} (now {new!r})" for name, (old, new) in differs.items()) or (
            f"architecture {saved.get('architecture')!r} (now {architecture['architecture']!r})")
        raise ConfigError(f"{what} is of another network: {which}. {advice}")


def load_checkpoint(folder: RunFolder, model: nn.Module, optimizer: torch.optim.Optimizer,
                    average: nn.Module | None = None) -> dict:
    """Restores what `save_checkpoint` wrote; a checkpoint without an average starts it at its weights."""
    tensors = load_file(str(folder.checkpoint))
    meta = json.loads(folder.checkpoint_state.read_text())
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


class Trainer:
    """One run, in phases: `__init__` sets it up (device, networks, loss, optimizer, where it starts), `step`
    trains one batch, `log`, `render` and `checkpoint` keep what a person and a resume need, `finish` exports
    the network. Rank 0 alone writes files."""

    def __init__(self, spec: RunSpec) -> None:
        self.task, self.settings = spec.task, spec.loop
        settings = self.settings
        self.rank, self.world_size, self.device = settings.rank, settings.world_size, _setup_distributed(settings)
        # The process-wide set-up of a training run: threads, flushed denormals, cuDNN autotuning on CUDA;
        # glibc's allocator as it is (the fast path's setting is for serving).
        configure(self.device, settings.threads or None, keep_freed_memory=False, flush_denormal=True)
        # "auto": bf16 where the device computes it natively; emulated on other CPUs it was 8x slower or more (AMD EPYC, AVX2).
        self.use_bf16 = settings.amp == "bf16" or (settings.amp == "auto" and (self.device.type == "cuda" or (
            self.device.type == "cpu" and cpu_has_bf16())))
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.use_bf16
                         else contextlib.nullcontext())
        self.folder = RunFolder(Path(settings.run_dir))
        if self.rank == 0:
            self.folder.renders.mkdir(parents=True, exist_ok=True)

        torch.manual_seed(settings.seed)
        self.architecture = self.task.architecture()
        self.model = build(self.architecture).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn, self.recorded = self.task.make_loss(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.average = copy.deepcopy(self.model).requires_grad_(False) if settings.ema_decay else None
        self.averaged_steps = 0
        self.step, self.seconds_before, self.started_from = self._start()
        self.start_step = self.step
        self.kept = self.average if self.average is not None else self.model  # what renders show and runs save
        # Not this run's: the started-from network's time is outside max_minutes, and logs, renders and
        # checkpoints come every N steps of this run.
        self.given = (self.started_from["iterations"], self.started_from["seconds"]) if self.started_from else (0, 0.0)
        self.rows = self.folder.read_log(self.step) if settings.resume else []
        if self.rank == 0:  # what this run trains with, readable while it runs (the model config repeats it)
            self.folder.record.write_text(json.dumps({**self.architecture, "task": self.recorded, **(
                {"started_from": self.started_from} if self.started_from else {})}, indent=2) + "\n")
            self.folder.write_log(self.rows)  # without the rows of steps after the checkpoint

        self.trained = nn.parallel.DistributedDataParallel(self.model) if self.world_size > 1 else self.model
        if settings.compile:
            self.trained = torch.compile(self.trained)
            if getattr(self.loss_fn, "network", None) is not None:
                self.loss_fn.network = torch.compile(self.loss_fn.network)
        self.data = PhotoBatches(settings.data, self.task.crop, settings.batch_size, self.task.rescale_crops,
                                 settings.seed, self.rank, self.world_size)
        if settings.val_image is None:
            validation = self.data.validation_image()
        else:  # a whole photo at a size where a person can see the style appear
            validation = crop_to_multiple(resize_longer_side(load_image(settings.val_image), VAL_SIDE), 8)
        self.validation_input = self.task.prepare(validation)[0].to(self.device)
        self.interval_sums: dict[str, torch.Tensor] = {}
        self.interval_steps = 0

    def _start(self) -> tuple[int, float, dict | None]:
        """Where the run starts: its checkpoint (resume), a trained network (init_from), or nothing."""
        settings, folder = self.settings, self.folder
        if settings.resume and folder.checkpoint.is_file():
            check_same_network(json.loads(folder.checkpoint_state.read_text()), self.architecture,
                               f"The checkpoint in {folder.path}",
                               "Resume with the options it was trained with, or use a new --run-dir.")
            meta = load_checkpoint(folder, self.model, self.optimizer, self.average)
            self.averaged_steps = meta.get("averaged_steps", 0) if self.average is not None else 0
            return meta["step"], meta["seconds"], meta.get("started_from")
        if settings.init_from is not None:
            step, seconds, started_from = start_from_network(settings.init_from, self.model, self.architecture)
            if step >= settings.iterations:
                raise ConfigError(f"{settings.init_from} has already trained {step} iterations; ask for more "
                                  f"with --iterations (the total, counting those).")
            if self.average is not None:
                self.average.load_state_dict(self.model.state_dict())
            return step, seconds, started_from
        return 0, 0.0, None

    def train_step(self) -> dict[str, torch.Tensor]:
        """One batch: forward, the loss (and the stability term, if the task has one), backward, Adam, average."""
        photos = self.data.batch(self.step).to(self.device)
        inputs, target = self.task.prepare(photos)
        if self.device.type == "cuda":
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.settings, self.step)
        with self.autocast:
            output = self.trained(inputs)
            losses = self.loss_fn(output.float(), self.loss_fn.targets(target))
            losses["stability"] = (stability_loss(self.trained, inputs, output.float(), self.task.stability_sigma)
                                   if self.task.stability_weight else losses["total"].new_zeros(()))
            losses["total"] = losses["total"] + self.task.stability_weight * losses["stability"]
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.optimizer.step()
        if self.average is not None:
            update_average(self.average, self.model, self.settings.ema_decay, self.averaged_steps)
            self.averaged_steps += 1
        self.step += 1
        return losses

    def stop_reason(self, seconds: float) -> str | None:
        """Why the run stops after this step (the stop file, the time budget), the same on every rank."""
        settings = self.settings
        stopped = settings.stop_file is not None and settings.stop_file.exists()
        over = settings.max_minutes > 0 and seconds - self.given[1] > settings.max_minutes * 60
        stop = stopped or over
        if self.world_size > 1:  # every rank stops at the same step; one process needs no device round trip
            flag = torch.tensor(float(stop), device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if not stop:
            return None
        return "stop file found" if stopped else "--max-minutes reached"

    def _every(self, n: int) -> bool:
        return bool(n) and (self.step - self.given[0]) % n == 0

    def log(self, losses: dict[str, torch.Tensor], seconds: float, stopping: bool) -> dict[str, float] | None:
        """The mean over the interval, every `log_every` steps: single batches of random crops are too noisy to
        read. A run that stops logs its last partial interval: the saved config's final losses come from the log."""
        for name in LOG_COLUMNS[1:-1]:  # summed on the device: no host sync on every step
            self.interval_sums[name] = self.interval_sums.get(name, 0) + losses[name].detach()
        self.interval_steps += 1
        if self.rank != 0 or not (self._every(self.settings.log_every) or stopping
                                  or self.step == self.settings.iterations):
            return None
        row = {name: float(total) / self.interval_steps for name, total in self.interval_sums.items()}
        self.rows.append({"step": self.step, **row, "seconds": round(seconds, 2)})
        self.folder.write_log(self.rows[-1:], append=True)
        self.interval_sums, self.interval_steps = {}, 0
        return row

    def render(self) -> None:
        if self.rank != 0 or not self._every(self.settings.val_every):
            return
        self.kept.eval()
        with torch.no_grad(), self.autocast:
            save_image(self.kept(self.validation_input).float(), self.folder.render(self.step))
        self.model.train()

    def checkpoint(self, seconds: float, stopping: bool) -> None:
        if self.rank != 0 or not (self._every(self.settings.checkpoint_every) or stopping
                                  or self.step == self.settings.iterations):
            return
        state = {"step": self.step, "seconds": seconds, **self.architecture}
        if self.started_from is not None:
            state["started_from"] = self.started_from
        if self.average is not None:
            state["averaged_steps"] = self.averaged_steps
        save_checkpoint(self.folder, self.model, self.optimizer, state, self.average)

    def finish(self, seconds: float) -> Path | None:
        """The loss curves and, if this run trained a step, the network with its config (also when stopped
        early: the network so far is usable and resumable). Returns its path on rank 0."""
        saved = None
        if self.rank == 0 and self.rows:
            plot_losses(self.rows, self.folder.loss_plot, f"{self.folder.path.name} ({self.step} iterations)")
        if self.rank == 0 and self.step > self.start_step:
            saved = save_pretrained(self.kept, self.config(seconds), self.folder.model.with_suffix(""))
            print(f"saved {saved} and {saved.with_suffix('.json')}")
        if self.world_size > 1:
            dist.barrier()
            dist.destroy_process_group()
        return saved

    def config(self, seconds: float) -> dict:
        """The saved network's JSON config: its architecture, task, training facts and final losses."""
        settings, average, last = self.settings, self.average, self.rows[-5:]
        weights = "the last step's"
        if average is not None:
            weights = (f"exponential moving average over {self.averaged_steps} steps, decay {settings.ema_decay} "
                       f"(warming up as (1 + n) / (10 + n): "
                       f"{average_decay(settings.ema_decay, self.averaged_steps - 1):.4g} at the end)")
        return {
            **self.architecture,
            "task": self.recorded,
            "training": {
                "iterations": self.step, "planned_iterations": settings.iterations,
                "finished": self.step >= settings.iterations, "batch_size_per_process": settings.batch_size,
                "processes": self.world_size, "optimizer": f"Adam lr {settings.lr} ({settings.lr_schedule})",
                "seed": settings.seed, "device": str(self.device), "weights": weights, "bf16": self.use_bf16,
                "data": [str(d) for d in settings.data], "photos": len(self.data.images), "seconds": round(seconds, 1),
                **({"started_from": self.started_from} if self.started_from else {}), **settings.extra,
            },
            "loss_network": _loss_network_info(self.loss_fn),
            "final_losses": {k: sum(r.get(k, 0.0) for r in last) / len(last) for k in LOG_COLUMNS[1:-1]},
            "git_commit": _git_commit(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def train(spec: RunSpec) -> Path | None:
    """Run (or resume) training; returns the saved model path on rank 0 (None on other ranks, or if no step ran).

    A run stopped by `max_minutes` or the stop file saves its network too, with `finished: false` in the config.
    """
    trainer = Trainer(spec)
    iterations = spec.loop.iterations
    progress = tqdm(total=iterations, initial=trainer.step, disable=trainer.rank != 0, desc=trainer.folder.path.name,
                    unit="it", dynamic_ncols=True)
    started, seconds = time.monotonic(), trainer.seconds_before
    while trainer.step < iterations:
        losses = trainer.train_step()
        seconds = trainer.seconds_before + time.monotonic() - started
        progress.update(1)
        why = trainer.stop_reason(seconds)
        row = trainer.log(losses, seconds, stopping=why is not None)
        if row:
            progress.set_postfix({k: f"{v:.4g}" for k, v in row.items() if v})
        trainer.render()
        trainer.checkpoint(seconds, stopping=why is not None)
        if why:
            if trainer.rank == 0:
                progress.write(f"{why} at step {trainer.step}; resume with --resume.")
            break
    progress.close()
    return trainer.finish(seconds)


def _loss_network_info(loss_fn: nn.Module) -> dict[str, str] | None:
    network = getattr(loss_fn, "network", None)
    if network is None:
        return None
    return {"arch": network.arch, "format": network.weight_format, "layers": list(network.layers),
            "source": network.source}
