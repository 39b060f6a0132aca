"""A training run as one object: what it is given (`RunSpec`: the task and the loop's settings) and the folder
that holds it (`RunFolder`: the one place that knows a run's files).

`python -m train style ...` builds a spec from its options; the app's training tab writes one as JSON into the
job's folder and runs `python -m train run <folder>/spec.json`; the GPU job goes through the command line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from perceptual_models.errors import ConfigError
from perceptual_models.hub import HubSettings
from perceptual_models.losses import StyleObjective

from .tasks import StyleTask, SuperResolutionTask

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
    amp: str = "auto"  # "bf16" | "none" | "auto" (bf16 on CUDA and on CPUs with bf16 units)
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


PATH_SETTINGS = ("run_dir", "val_image", "stop_file", "init_from")  # LoopSettings' paths, strings in JSON
TASKS = {"style": StyleTask, "sr": SuperResolutionTask}
PROCESS_SETTINGS = ("world_size", "rank", "local_rank")  # the launching process's, not the run's


@dataclass
class RunSpec:
    """Everything a run is given. As JSON it leaves out where the loss network is looked up (`task.lookup`:
    the training process's own settings) and the process's place in a torchrun launch."""

    task: StyleTask | SuperResolutionTask
    loop: LoopSettings

    def to_dict(self) -> dict[str, Any]:
        task = {f.name: getattr(self.task, f.name) for f in fields(self.task) if f.init and f.name != "lookup"}
        if "objective" in task:
            task["objective"] = task["objective"].to_dict()
        loop = {f.name: getattr(self.loop, f.name) for f in fields(self.loop) if f.name not in PROCESS_SETTINGS}
        loop.update({name: None if loop[name] is None else str(loop[name]) for name in PATH_SETTINGS})
        return {"kind": self.task.kind, "task": task, "loop": loop}

    @classmethod
    def from_dict(cls, values: dict[str, Any], lookup: HubSettings | None = None, **process: int) -> RunSpec:
        """`process`: this process's world_size, rank, local_rank under torchrun."""
        try:
            task = dict(values["task"])
            if "objective" in task:
                task["objective"] = StyleObjective.from_dict(task["objective"])
            loop = {**values["loop"], **process}
            loop.update({name: None if loop.get(name) is None else Path(loop[name]) for name in PATH_SETTINGS})
            return cls(TASKS[values["kind"]](**task, lookup=lookup), LoopSettings(**loop))
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"Not a training run spec ({type(exc).__name__}: {exc}).") from exc

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path, lookup: HubSettings | None = None, **process: int) -> RunSpec:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read the run spec {path}: {exc}") from exc
        return cls.from_dict(values, lookup, **process)


@dataclass(frozen=True)
class RunFolder:
    """A run's files: spec.json (what the app asked for), run.json (what the run trains with, written before
    its first step), log.csv (a row per logged interval, appended as made), val/ renders, the checkpoint, the
    saved network, loss.png, train.log (the process's output) and STOP (the app's stop request)."""

    path: Path

    @property
    def spec(self) -> Path:
        return self.path / "spec.json"

    @property
    def record(self) -> Path:
        return self.path / "run.json"

    @property
    def log(self) -> Path:
        return self.path / "log.csv"

    @property
    def renders(self) -> Path:
        return self.path / "val"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.safetensors"

    @property
    def checkpoint_state(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def model(self) -> Path:
        """The saved network; its JSON config beside it (`networks.save_pretrained`)."""
        return self.path / "model.safetensors"

    @property
    def loss_plot(self) -> Path:
        return self.path / "loss.png"

    @property
    def output(self) -> Path:
        return self.path / "train.log"

    @property
    def stop_file(self) -> Path:
        return self.path / "STOP"

    def render(self, step: int) -> Path:
        return self.renders / f"step_{step:06d}.jpg"

    def rendered(self) -> list[tuple[Path, int]]:
        """(render, its step) for every validation render so far, oldest first."""
        return sorted((path, int(path.stem.removeprefix("step_"))) for path in self.renders.glob("step_*.jpg"))

    def read_record(self) -> dict[str, Any] | None:
        """run.json; None before the run has started (or if it is unreadable)."""
        try:
            return json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None

    def started_from(self) -> tuple[int, float]:
        """The iterations and seconds of the network the run went on from, which its log counts in."""
        start = (self.read_record() or {}).get("started_from") or {}
        try:
            return int(start.get("iterations", 0)), float(start.get("seconds", 0.0))
        except (TypeError, ValueError, AttributeError):
            return 0, 0.0

    def read_log(self, up_to_step: float = math.inf) -> list[dict[str, float]]:
        """The log's rows up to `up_to_step`, while it is being written too (the app follows a job this way):
        a row cut short by the writer, or by a killed run, ends the list."""
        if not self.log.is_file():
            return []
        rows = []
        with self.log.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    values = {key: float(value) for key, value in row.items()}
                except (TypeError, ValueError):
                    break
                if values["step"] > up_to_step:
                    break
                rows.append(values)
        return rows

    def write_log(self, rows: list[dict[str, float]], append: bool = False) -> None:
        with self.log.open("a" if append else "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, restval=0.0)  # an older log has no stability column
            if not append:
                writer.writeheader()
            writer.writerows(rows)


def trained_iterations(path: Path) -> int:
    """The iterations a saved network (`x.safetensors` beside `x.json`) was trained for: where a run
    started from it counts on, so its `iterations` must be above this."""
    return int(json.loads(Path(path).with_suffix(".json").read_text()).get("training", {}).get("iterations", 0))
