"""Training jobs behind the "Train your own style" tab: the project's one training loop, one job at a time.

A job is a run spec (`train.run.RunSpec`) trained by `python -m train run <its folder>/spec.json` (train/loop.py,
the same loop as every bundled model) in a subprocess at low priority with half the cores, so the app keeps
serving while it trains. Everything about a job lives in its folder (job.json, and the run's files:
`train.run.RunFolder`), so it outlives the browser tab, any page can follow it, and a restarted app finds it.
A finished or stopped job's network is exported like the bundled ones (fp16 safetensors, JSON
config, model card, the style image as thumbnail) into the user-models folder, where the model
resolver (`perceptual_models.hub`, origin "trained here") and the style lists find it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from perceptual_models.cards import export_model
from perceptual_models.hub import BUNDLED_DIR, style_image_file
from perceptual_models.image_io import load_image, resize_longer_side, to_pil
from perceptual_models.inference import style_model_name
from perceptual_models.losses import StyleObjective
from train.run import LoopSettings, RunFolder, RunSpec, trained_iterations
from train.tasks import STYLE_EMA_DECAY, StyleTask

from .services import UserError

log = logging.getLogger("perceptual_losses.training")
REPO = Path(__file__).resolve().parents[1]
STYLE_MIN_SIDE = 64  # a style image smaller than this has no strokes to learn
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]{0,39}")
ACTIVE = ("queued", "running")
VALIDATION_PHOTO = REPO / "demo" / "examples" / "chelsea.jpg"  # the photo a class watches take on the style


@dataclass(frozen=True)
class Budget:
    """How long a job trains: `iterations` at `image_size` px crops, stopping at `max_minutes` in any case."""

    label: str
    iterations: int
    image_size: int
    max_minutes: float
    val_every: int  # a render of the validation photo every this many steps


# The recipe of the bundled styles (docs/results.md, docs/training-notes.md): 128 px crops, ~1 it/s on one core.
CPU_BUDGETS = {
    "quick": Budget("Quick: about 10 minutes", iterations=600, image_size=128, max_minutes=10.5, val_every=50),
    "better": Budget("Better: about 30 minutes", iterations=1800, image_size=128, max_minutes=30.5, val_every=150),
}
# On a GPU the same minutes buy the paper's 256 px crops and far more steps.
GPU_BUDGETS = {
    "quick": Budget("Quick: up to 10 minutes on the GPU", iterations=20000, image_size=256, max_minutes=10,
                    val_every=1000),
    "better": Budget("Better: up to 30 minutes on the GPU", iterations=40000, image_size=256, max_minutes=30,
                     val_every=2000),
}


# Where a job starts: a bundled network of the recipe's architecture. It already turns photos into paintings,
# so the job's minutes go to the new painting. Candy, 300 steps at 128 px on one core: objective on three
# Set5 photos at 256 px 1.81e5 from udnie's weights, 2.60e5 from random ones (whose renders passed
# through flat grey patches on the way).
START_FROM = BUNDLED_DIR / "style" / "udnie.safetensors"


# How much of the painting against how much of the photo: the recipe's style balance (a like balance
# for any painting, `StyleTask.style_balance`) times this. Kept narrow: blotches came back outside
# (candy at 0.7x, mosaic at 1.4x; docs/training-notes.md).
STRENGTHS = {"lighter": 0.8, "default": 1.0, "stronger": 1.25}


def style_balance(strength: str) -> float:
    return StyleTask.style_balance * STRENGTHS[strength]


@dataclass
class Job:
    name: str
    budget: str
    strength: str = "default"
    state: str = "queued"  # queued | running | done | stopped | failed | interrupted
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    message: str = ""
    key: str = ""  # who may stop the job: the page that submitted it keeps this (train_tab's BrowserState)


@dataclass
class JobProgress:
    """What a page shows of a job: read from its folder, so any process or page can ask."""

    job: Job
    queue_position: int  # 0 when not waiting
    step: int
    iterations: int
    seconds: float
    remaining: float | None
    losses: list[dict[str, float]]  # the loop's log rows: step, total, content, style, tv
    objective: StyleObjective | None  # what the trainer optimises, its style weight set from the painting
    renders: list[tuple[Path, int]]  # (validation render, its step), oldest first

    @property
    def active(self) -> bool:
        return self.job.state in ACTIVE


class TrainingJobs:
    """The queue of style-training jobs of this machine, run one at a time by a worker thread.

    `on_model(name)` is called with the new model's name (e.g. "style/my_drawing") once its files
    are in `models_dir`. `start_from`: the network every job goes on from (None: random weights); a
    job's iterations, minutes and renders are counted from there.
    """

    def __init__(self, models_dir: Path, data: Sequence[Path], budgets: dict[str, Budget], device: str,
                 on_model: Callable[[str], None], threads: int = 0, start_from: Path | None = START_FROM) -> None:
        self.models_dir = Path(models_dir)
        self.start_from = start_from
        self.jobs_dir = self.models_dir / "jobs"  # below the models' <kind>/<name> depth: not a model
        self.data = [Path(d) for d in data]
        self.budgets = budgets
        self.device = device
        self.on_model = on_model
        self.threads = threads or max(1, (os.cpu_count() or 2) // 2)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._running: tuple[Job, subprocess.Popen] | None = None  # the worker's job and its process
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for job in self.jobs():  # a job the last app process was running when it stopped
            if job.state == "running":
                self._recover(job)
        threading.Thread(target=self._work, name="training-jobs", daemon=True).start()

    # --- what pages ask -------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        """Every job, oldest first."""
        found = []
        for path in self.jobs_dir.glob("*/job.json"):
            try:
                found.append(_read_job(path))
            except (OSError, ValueError, TypeError):
                log.warning("unreadable job file %s", path)
        return sorted(found, key=lambda job: job.submitted)

    def job(self, name: str) -> Job:
        path = self.jobs_dir / name / "job.json"
        if not path.is_file():
            raise UserError(f"There is no training job named {name!r}.")
        return _read_job(path)

    def latest_active(self) -> str | None:
        """The name of the running job, else of the next queued one."""
        active = [job for job in self.jobs() if job.state in ACTIVE]
        active.sort(key=lambda job: (job.state != "running", job.submitted))
        return active[0].name if active else None

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.jobs_dir / name)

    def step(self, name: str) -> int:
        """The last logged step of job `name` (0 before the first log row)."""
        run = self.run(name)
        rows = _read_rows(run, run.started_from())
        return int(rows[-1]["step"]) if rows else 0

    def progress(self, name: str) -> JobProgress:
        job = self.job(name)
        run = self.run(name)
        given = run.started_from()  # read once per poll: the log and the renders both count from it
        rows = _read_rows(run, given)
        budget = self.budgets.get(job.budget)
        iterations = budget.iterations if budget else 0
        step, seconds = (int(rows[-1]["step"]), rows[-1]["seconds"]) if rows else (0, 0.0)
        remaining = None
        if job.state == "running" and budget and step:
            remaining = min((iterations - step) * seconds / step, budget.max_minutes * 60 - seconds)
            remaining = max(0.0, remaining)
        renders = [(path, step - given[0]) for path, step in run.rendered()]
        queued = [j.name for j in self.jobs() if j.state == "queued"]
        position = queued.index(name) + 1 if name in queued else 0
        return JobProgress(job, position, step, iterations, seconds, remaining, rows, _read_objective(run), renders)

    # --- what pages do --------------------------------------------------------------------

    def submit(self, style: str | Path, budget: str, name: str = "", taken: Sequence[str] = (),
               strength: str = "default") -> Job:
        """Check the style image and the name, keep a copy of the image, and queue the job.

        `taken`: style names already in use (bundled, Hub, trained here), which a new one must not shadow.
        The job's `key` is what `stop` asks for: any visitor can follow a job, only its submitter stops it.
        """
        if budget not in self.budgets:
            raise UserError(f"Unknown budget {budget!r}; choose one of {', '.join(self.budgets)}.")
        if strength not in STRENGTHS:
            raise UserError(f"Unknown style strength {strength!r}; choose one of {', '.join(STRENGTHS)}.")
        image = load_image(style, min_side=STYLE_MIN_SIDE)  # ImageError, a message for the user, if unusable
        name = _clean_name(name or Path(str(style)).stem)
        with self._lock:
            if name in taken or (self.jobs_dir / name).exists():
                raise UserError(f"The name {name!r} is taken; choose another one.")
            run_dir = self.jobs_dir / name
            run_dir.mkdir(parents=True)
            to_pil(resize_longer_side(image, StyleTask.style_size)).save(run_dir / f"{name}.jpg", quality=95)
            job = Job(name, budget, strength, key=secrets.token_urlsafe(16))
            self._save(job)
            self._wake.notify_all()
        log.info("training job %s queued (%s)", name, budget)
        return job

    def stop(self, name: str, key: str) -> None:
        """A queued job is dropped; a running one saves its network at the next step and is exported.

        `key`: the job's, given to its submitter; in a classroom, a student's page cannot stop the teacher's job.
        """
        with self._lock:
            job = self.job(name)
            if not (job.key and secrets.compare_digest(job.key, key)):
                raise UserError(f"Only the browser that started {name!r} can stop it.")
            if job.state == "queued":
                self._save(Job(**{**asdict(job), "state": "stopped", "ended": time.time(),
                                  "message": "Stopped before it started."}))
            elif job.state == "running":
                self.run(name).stop_file.touch()

    # --- the worker -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not (queued := [j for j in self.jobs() if j.state == "queued"]):
                    self._wake.wait()
                job = Job(**{**asdict(queued[0]), "state": "running", "started": time.time()})
                self._save(job)
            try:
                self._run(job)
            except Exception as exc:  # one job's failure must not end the worker
                log.exception("training job %s failed", job.name)
                self._finish(job, "failed", f"Training failed ({type(exc).__name__}); the server log says why.")

    def spec(self, job: Job) -> RunSpec:
        """What the job trains: the recipe of the bundled styles at the budget's size and steps, going on from
        `start_from` (the loop counts on from that network's own iterations)."""
        budget, run = self.budgets[job.budget], self.run(job.name)
        given = trained_iterations(self.start_from) if self.start_from is not None else 0
        task = StyleTask(style_image=str(run.path / f"{job.name}.jpg"), image_size=budget.image_size,
                         style_balance=style_balance(job.strength))
        return RunSpec(task, LoopSettings(
            data=[str(d) for d in self.data], run_dir=run.path, iterations=given + budget.iterations,
            max_minutes=budget.max_minutes, device=self.device,
            threads=self.threads, log_every=10, val_every=budget.val_every, val_image=VALIDATION_PHOTO,
            checkpoint_every=budget.val_every, ema_decay=STYLE_EMA_DECAY, stop_file=run.stop_file, init_from=self.start_from,
            extra={"note": f"trained in the app ({budget.label}, {job.strength} style strength)"}))

    def _run(self, job: Job) -> None:
        run = self.run(job.name)
        self.spec(job).write(run.spec)
        with run.output.open("w") as output:
            # Lower priority than the app: a click or a live frame goes first when both want the CPU.
            process = subprocess.Popen([sys.executable, "-m", "train", "run", str(run.spec)], cwd=REPO,
                                       stdout=output, stderr=subprocess.STDOUT)
            if hasattr(os, "setpriority"):
                os.setpriority(os.PRIO_PROCESS, process.pid, 10)
            self._running = job, process
            code = process.wait()
            self._running = None
        if code != 0 or not run.model.is_file():
            tail = run.output.read_text(errors="replace")[-2000:]
            log.error("training job %s ended with code %s:\n%s", job.name, code, tail)
            self._finish(job, "failed", "Training failed; the server log says why.")
            return
        self.on_model(self._export(job.name))  # before the job says it ended: a page then lists the style
        stopped = run.stop_file.exists()
        self._finish(job, "stopped" if stopped else "done",
                     "Stopped; the network so far is saved and in the style list." if stopped else "")

    def _export(self, job_name: str) -> str:
        """The run's network into the user-models folder, as the bundled ones are; returns its model name."""
        run, name = self.run(job_name), style_model_name(job_name)
        export_model(run.model, name, self.models_dir)
        painting = self.models_dir / style_image_file(job_name)
        painting.parent.mkdir(exist_ok=True)
        to_pil(resize_longer_side(load_image(run.path / f"{job_name}.jpg"), 384)).save(painting, quality=90)
        return name

    def _finish(self, job: Job, state: str, message: str) -> None:
        with self._lock:
            self._save(Job(**{**asdict(job), "state": state, "ended": time.time(), "message": message}))
        log.info("training job %s %s", job.name, state)

    def _save(self, job: Job) -> None:
        path = self.jobs_dir / job.name / "job.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(job), indent=2))
        partial.replace(path)

    def _recover(self, job: Job) -> None:
        """A job that was running when the app stopped: its network, if `close` saved one, is exported
        and served (the app loaded its models before this, so `on_model` adds it)."""
        if self.run(job.name).model.is_file():
            self.on_model(self._export(job.name))
            self._finish(job, "stopped", "The app stopped while this job trained; the network so far is saved "
                                         "and in the style list.")
        else:
            self._finish(job, "interrupted", "The app stopped while this job trained; its checkpoint is kept.")

    def close(self, timeout: float = 30.0) -> None:
        """On shutdown: ask a running job to save its network (the stop file), then end its process.

        The next start of the app exports what it saved (`_recover`).
        """
        running = self._running
        if running is None or running[1].poll() is not None:
            return
        job, process = running
        self.run(job.name).stop_file.touch()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()


def _clean_name(text: str) -> str:
    """A style name from free text: lower case, letters, digits and underscores, at most 40 characters."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40].rstrip("_")
    if not NAME_PATTERN.fullmatch(name):
        raise UserError("Give the style a name made of letters or digits.")
    return name


def _read_job(path: Path) -> Job:
    return Job(**json.loads(path.read_text()))


def _read_rows(run: RunFolder, given: tuple[int, float]) -> list[dict[str, float]]:
    """The loop's log rows, with steps and seconds counted from the job's start (`given`: what the run
    started from, `RunFolder.started_from`)."""
    steps, seconds = given
    return [{**row, "step": row["step"] - steps, "seconds": row["seconds"] - seconds} for row in run.read_log()]


def _read_objective(run: RunFolder) -> StyleObjective | None:
    """The trainer's objective (its run.json); None before it has started."""
    record = run.read_record()
    try:
        return StyleObjective.from_dict(record["task"]) if record else None
    except (KeyError, TypeError):
        return None
