"""The "Train your own style" tab: a painting in, a feed-forward network out, during the lesson.

Train -> `TrainingJobs.submit` (demo/training.py) queues a `python -m train style` subprocess; a
timer on the page then re-reads the job's folder (iteration, time left, loss curve, the validation
photo through the network as it learns) until it ends, and the new style joins every style list on
the page. Closing the tab does not stop the job; opening the page again follows it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from .components import UploadedImage
from .services import Services, UserError
from .training import JobProgress, TrainingJobs
from .widgets import in_page, user_errors

POLL_SECONDS = 2.0  # how often a page re-reads its job's progress
RENDERS_SHOWN = 8  # the latest validation renders on screen
JOB_HEADERS = ["style", "state", "budget", "iterations", "submitted"]
STRENGTH_CHOICES = [("Lighter: more of the photo", "lighter"), ("Balanced", "default"),
                    ("Stronger: more of the painting", "stronger")]


@dataclass
class TrainTab:
    """The tab's components."""

    tab: gr.Tab
    style_image: UploadedImage
    budget: gr.Radio
    strength: gr.Radio
    name: gr.Textbox
    start: gr.Button
    stop: gr.Button
    job_name: gr.Textbox
    status: gr.Markdown
    renders: gr.Gallery
    losses: gr.LinePlot
    table: gr.Dataframe
    started: gr.BrowserState
    new_key: gr.State
    timer: gr.Timer

    @property
    def shown(self) -> list[gr.components.Component]:
        """What `TrainHandlers.view` fills in, in its order."""
        return [self.status, self.losses, self.renders, self.table, self.timer]


class TrainHandlers:
    """The tab's callbacks, as plain methods over `services` and `jobs`: callable without a server.

    `refresh_styles()` gives the updates of the page's `style_lists` style pickers (as many), called
    when the followed job ends.
    """

    def __init__(self, services: Services, jobs: TrainingJobs, refresh_styles: Callable[[], tuple],
                 style_lists: int) -> None:
        self.services = services
        self.jobs = jobs
        self.refresh_styles = refresh_styles
        self.style_lists = style_lists

    def view(self, progress: JobProgress) -> tuple:
        """The job's status, loss curve, renders, the job table, and the timer: ticking while it is active."""
        return (_status(progress, self.jobs), _loss_frame(progress), _renders(progress), _job_table(self.jobs),
                gr.Timer(active=progress.active))

    def on_train(self, style_image, budget, name, strength):
        """Queue a job; the page follows it from here (`on_tick`) and keeps its key (`remember`)."""
        if style_image is None:
            raise UserError("Upload a style image (a painting, a drawing) or pick one below first.")
        job = self.jobs.submit(style_image, budget, name or "", taken=self.services.style_names(), strength=strength)
        return job.name, job.key, *self.view(self.jobs.progress(job.name))

    @staticmethod
    def remember(started: dict, name: str, key: str | None):
        return {**started, name: key} if key else gr.skip()

    def on_tick(self, name):
        """One read of the followed job; when it has ended, the style lists take in the new style."""
        unchanged = (gr.skip(),) * self.style_lists
        try:
            progress = self.jobs.progress(name)
        except UserError as exc:  # its folder was deleted: say so once and stop ticking
            return str(exc), gr.skip(), gr.skip(), _job_table(self.jobs), gr.Timer(active=False), *unchanged
        ended = self.refresh_styles() if not progress.active else unchanged
        return *self.view(progress), *ended

    def on_open(self):
        """A page opened (or reopened) while a job trains follows it."""
        name = self.jobs.latest_active()
        if name is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), _job_table(self.jobs), gr.skip()
        return name, *self.view(self.jobs.progress(name))

    def on_stop(self, name, started: dict):
        """The status says at once that the job is stopping; the next tick, once it has, says so."""
        if not name:
            return gr.skip()
        self.jobs.stop(name, started.get(name, ""))
        return f"**Stopping** `{name}`: the network so far is being saved."

    def train_progress(self, name: str) -> dict:
        """A training job's state for API callers (the page shows the same): name, state (queued, running,
        done, stopped, failed, interrupted), step, iterations, minutes trained, queue position, message."""
        progress = self.jobs.progress(name)
        return {"name": name, "state": progress.job.state, "step": progress.step, "iterations": progress.iterations,
                "minutes": round(progress.seconds / 60, 2), "queue_position": progress.queue_position,
                "message": progress.job.message}


def build_train_tab(page: gr.Blocks, services: Services, jobs: TrainingJobs,
                    style_lists: list[gr.components.Component], refresh_styles: Callable[[], tuple]) -> None:
    """The tab's layout and events; call inside `page` (demo/ui.py does).

    `style_lists` are the page's style pickers, updated by `refresh_styles()` when the followed job ends.
    Train only queues the job and returns; a page follows its job with a timer whose ticks each read
    the job's folder once, so no request waits while a job trains and a bad upload is answered at once.
    The keys of the jobs this browser started live in its local storage: only they can be stopped here.
    """
    handlers = TrainHandlers(services, jobs, refresh_styles, len(style_lists))
    ui = _layout(services, jobs)
    with ui.tab:  # in the tab: the endpoint's components elsewhere would split the page's tabs into two rows
        gr.api(user_errors(handlers.train_progress), api_name="train_progress", concurrency_limit=8,
               concurrency_id="train-watch")
    ui.start.click(in_page(user_errors(handlers.on_train)), [ui.style_image, ui.budget, ui.name, ui.strength],
                   [ui.job_name, ui.new_key, *ui.shown], api_name="train_style", concurrency_limit=4,
                   concurrency_id="train-start").success(
        handlers.remember, [ui.started, ui.job_name, ui.new_key], ui.started, queue=False, api_visibility="private")
    ui.timer.tick(user_errors(handlers.on_tick), [ui.job_name], [*ui.shown, *style_lists], api_visibility="private",
                  concurrency_limit=8, concurrency_id="train-watch", show_progress="hidden")
    # Queued (a quick one): a warning reaches the page only through the queue.
    ui.stop.click(in_page(user_errors(handlers.on_stop)), [ui.job_name, ui.started], ui.status,
                  api_visibility="private", concurrency_limit=4, concurrency_id="train-stop")
    page.load(handlers.on_open, None, [ui.job_name, *ui.shown], api_visibility="private", show_progress="hidden")


def _layout(services: Services, jobs: TrainingJobs) -> TrainTab:
    with gr.Tab("Train your own style", id="train") as tab:
        gr.Markdown(
            "Train a feed-forward network for **any painting or drawing**, the paper's recipe on this machine: the "
            "network learns to match the painting's Gram matrices and each photo's VGG features over many training "
            "photos" + (f", starting from the bundled *{jobs.start_from.stem}* network: it already paints, so the "
                        "budget goes to your painting" if jobs.start_from else "") +
            ". Watch the validation photo take on the style; when the job ends, the new style is in the "
            "**Style transfer** and **Live** tabs. One job trains at a time (others queue); it uses at most half of "
            "the machine's cores and keeps running if you close this page.")
        with gr.Row():
            with gr.Column(scale=1):
                style_image = UploadedImage(label="Style image", type="filepath", height=240, elem_id="train-style")
                examples = [[str(path)] for name in services.style_names() if (path := services.style_image(name))]
                if examples:
                    gr.Examples(examples, inputs=[style_image], label="Or one of the paper's paintings")
            with gr.Column(scale=1):
                budget = gr.Radio([(b.label, key) for key, b in jobs.budgets.items()], value=next(iter(jobs.budgets)),
                                  label="Training budget", elem_id="train-budget")
                strength = gr.Radio(STRENGTH_CHOICES, value="default", label="Style strength", elem_id="train-strength",
                                    info="Balanced is set from the painting itself, bold or soft; a child's drawing may want Stronger.")
                name = gr.Textbox(label="Name (optional: letters, digits, _)", max_lines=1, elem_id="train-name")
                with gr.Row():
                    start = gr.Button("Train", variant="primary", elem_id="train-start")
                    stop = gr.Button("Stop (keeps the network so far)", variant="stop", elem_id="train-stop")
                job_name = gr.Textbox(label="Job on this page", interactive=False, elem_id="train-job")
                status = gr.Markdown(elem_id="train-status")
        with gr.Row():
            renders = gr.Gallery(label="The validation photo through the network, as it learns", columns=4,
                                 height="auto", object_fit="contain", elem_id="train-renders", elem_classes="full-grid")
            losses = gr.LinePlot(x="iteration", y="log10 loss", color="term", x_axis_format="d",
                                 color_map={"total": "#444444", "content": "#1f77b4", "style": "#ff7f0e"},
                                 label="Training loss (log10, weighted terms, mean over 10 steps)",
                                 elem_id="train-losses")
        table = gr.Dataframe(headers=JOB_HEADERS, interactive=False, label="Jobs on this machine",
                             elem_id="train-jobs")
        started = gr.BrowserState({}, storage_key="perceptual-losses-training-jobs")  # {job name: key}
        new_key = gr.State()  # the key of the job Train just queued, on its way to `started`
        timer = gr.Timer(POLL_SECONDS, active=False)
    return TrainTab(tab, style_image, budget, strength, name, start, stop, job_name, status, renders, losses, table,
                    started, new_key, timer)


def _status(progress: JobProgress, jobs: TrainingJobs) -> str:
    job, budget = progress.job, jobs.budgets.get(progress.job.budget)
    where = f"`{job.name}`"
    if job.state == "queued":
        return f"**Queued** {where}: position {progress.queue_position} (one job trains at a time on this machine)."
    done = f"iteration {progress.step} / {progress.iterations}, {progress.seconds / 60:.1f} min"
    if job.state == "running" and not progress.step:  # before the loop's first log row (every 10 iterations)
        return f"**Training** {where}: starting (loading the loss network and the photos; the first numbers come at iteration 10)."
    if job.state == "running":
        left = f", about {math.ceil(progress.remaining / 60)} min left" if progress.remaining is not None else ""
        return f"**Training** {where}: {done}{left} ({budget.label.lower() if budget else job.budget})."
    if job.state == "done":
        cut = (f" (the budget's {budget.max_minutes:g} minutes ran out first)"
               if budget and progress.step < progress.iterations else "")
        return f"**Done** {where}: {done}{cut}. The style is now in the Style transfer and Live tabs."
    if job.state == "stopped":
        return f"**Stopped** {where} at {done}. {job.message}"
    return f"**{job.state.capitalize()}** {where}. {job.message}"


def _loss_frame(progress: JobProgress) -> pd.DataFrame:
    """The loop logs the total and the unweighted terms; plotted weighted, as they add up to the total."""
    objective = progress.objective
    weights = {"total": 1.0, **({"content": objective.content_weight, "style": objective.style_weight} if objective else {})}
    rows = [{"iteration": row["step"], "log10 loss": math.log10(row[term] * weight), "term": term}
            for row in progress.losses for term, weight in weights.items() if row.get(term, 0) > 0]
    return pd.DataFrame(rows, columns=["iteration", "log10 loss", "term"])


def _renders(progress: JobProgress) -> list[tuple[str, str]]:
    return [(str(path), f"iteration {step}") for path, step in progress.renders[-RENDERS_SHOWN:]]


def _job_table(jobs: TrainingJobs) -> pd.DataFrame:
    """The latest ten jobs, newest first (re-read every POLL_SECONDS by each following page)."""
    rows = []
    for job in reversed(jobs.jobs()[-10:]):
        budget = jobs.budgets.get(job.budget)
        rows.append([job.name, job.state, budget.label if budget else job.budget,
                     f"{jobs.step(job.name)} / {budget.iterations if budget else '?'}",
                     time.strftime("%H:%M", time.localtime(job.submitted))])
    return pd.DataFrame(rows, columns=JOB_HEADERS)
