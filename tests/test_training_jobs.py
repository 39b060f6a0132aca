"""Style-training jobs (demo/training.py) and the app's /train_style, with tiny budgets: real
`python -m train style` subprocesses, real exports, a real Gradio server."""

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from safetensors.torch import load_file

from demo.services import Services, UserError
from demo.tools.app_process import REPO, free_port
from demo.training import START_FROM, STRENGTHS, Budget, TrainingJobs
from demo.ui import build_demo, launch_options
from perceptual_models import hub
from perceptual_models.errors import ImageError
from perceptual_models.inference import Runner
from train.tasks import StyleTask

EXAMPLES = REPO / "demo" / "examples"
STYLE = REPO / "perceptual_models" / "weights" / "styles" / "wave.jpg"
TINY = Budget("Tiny", iterations=4, image_size=64, max_minutes=5, val_every=2)
ENDLESS = Budget("Endless", iterations=100_000, image_size=64, max_minutes=5, val_every=1000)  # ends by Stop
BUDGETS = {"tiny": TINY, "endless": ENDLESS}


def make_jobs(folder: Path, added: list[str] | None = None) -> TrainingJobs:
    return TrainingJobs(folder, [EXAMPLES], BUDGETS, "cpu", (added if added is not None else []).append, threads=1)


def wait_for(jobs: TrainingJobs, name: str, condition, hang: float = 1800.0):
    """Wait until `condition(progress)` holds; fail as soon as the job has ended without it. A busy machine
    only makes this slower (`hang` guards against a job that neither moves nor ends)."""
    deadline = time.monotonic() + hang
    while time.monotonic() < deadline:
        progress = jobs.progress(name)
        if condition(progress):
            return progress
        if not progress.active:
            break
        time.sleep(0.3)
    log = jobs.jobs_dir / name / "train.log"
    raise AssertionError(f"{name} is {jobs.job(name).state} without the condition; its log ends:\n"
                         + (log.read_text()[-1500:] if log.is_file() else "(none)"))


def user_settings(folder: Path) -> hub.HubSettings:
    return hub.HubSettings(user_dir=folder, offline=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder where one tiny job ran to the end, and the names `on_model` was given."""
    folder, added = tmp_path_factory.mktemp("user-models"), []
    jobs = make_jobs(folder, added)
    job = jobs.submit(STYLE, "tiny", "My Wave!", taken=["starry_night"])
    assert (job.name, job.state) == ("my_wave", "queued")
    wait_for(jobs, "my_wave", lambda p: not p.active)
    return folder, jobs, added


def test_a_finished_job_is_a_model_like_the_bundled_ones(trained):
    folder, jobs, added = trained
    progress = jobs.progress("my_wave")
    assert progress.job.state == "done" and added == ["style/my_wave"]
    assert progress.step == 4 and [step for _, step in progress.renders] == [2, 4]
    assert [row["step"] for row in progress.losses] == [4]  # --log-every 10: the last step is logged
    resolved = hub.resolve("style/my_wave", user_settings(folder))
    assert resolved.origin == hub.TRAINED_HERE
    assert {p.name for p in (folder / "style").iterdir()} == {"my_wave.safetensors", "my_wave.json", "my_wave.md"}
    assert (folder / "styles" / "my_wave.jpg").is_file()
    # fp16 weights (batch norm's step counter stays an integer)
    assert {tensor.dtype for tensor in load_file(resolved.weights).values() if tensor.is_floating_point()} == {torch.float16}
    # It went on from the bundled udnie network: its config counts udnie's iterations, the page does not.
    config = json.loads(resolved.config.read_text())
    given = json.loads(START_FROM.with_suffix(".json").read_text())["training"]["iterations"]
    assert config["training"]["started_from"]["iterations"] == given
    assert config["training"]["iterations"] == given + 4 and config["training"]["finished"] is True
    assert "**Started from**: `style/udnie` after its" in resolved.weights.with_suffix(".md").read_text()
    # The run folder beside the models holds safetensors files too; they are not models.
    assert [n for n in hub.available_models(user_settings(folder)) if "my_wave" in n or "jobs" in n] == ["style/my_wave"]
    runner = Runner.load(str(resolved.weights), torch.device("cpu"))
    output = runner(torch.rand(1, 3, 40, 56))
    assert output.shape == (1, 3, 40, 56) and torch.isfinite(output).all()


def test_a_restarted_app_exports_what_a_job_saved_while_it_stopped(trained, tmp_path):
    source = trained[0] / "jobs" / "my_wave"
    run_dir = tmp_path / "jobs" / "after_restart"
    run_dir.mkdir(parents=True)
    for name in ("model.safetensors", "model.json"):
        shutil.copy(source / name, run_dir / name)
    shutil.copy(source / "my_wave.jpg", run_dir / "after_restart.jpg")
    job = {"name": "after_restart", "budget": "tiny", "state": "running", "submitted": time.time(),
           "started": time.time(), "ended": None, "message": ""}
    (run_dir / "job.json").write_text(json.dumps(job))
    (tmp_path / "jobs" / "lost").mkdir()
    (tmp_path / "jobs" / "lost" / "job.json").write_text(json.dumps({**job, "name": "lost"}))

    added = []
    jobs = make_jobs(tmp_path, added)
    assert jobs.job("after_restart").state == "stopped" and added == ["style/after_restart"]  # served at once
    assert hub.resolve("style/after_restart", user_settings(tmp_path)).origin == hub.TRAINED_HERE
    assert jobs.job("lost").state == "interrupted"  # nothing saved: nothing to export


def test_stop_keeps_a_usable_network_and_jobs_queue_one_at_a_time(tmp_path):
    added = []
    jobs = make_jobs(tmp_path, added)
    first = jobs.submit(STYLE, "endless", "first")
    wait_for(jobs, "first", lambda p: p.job.state == "running")
    jobs.submit(STYLE, "tiny", "second", strength="lighter")
    third = jobs.submit(STYLE, "tiny", "third")
    assert [jobs.progress(n).queue_position for n in ("first", "second", "third")] == [0, 1, 2]
    assert jobs.latest_active() == "first"

    for key in ("", third.key, first.key[:-1]):  # only the submitter's key stops a job
        with pytest.raises(UserError, match="Only the browser that started 'first' can stop it"):
            jobs.stop("first", key)
    jobs.stop("third", third.key)  # queued: dropped at once, never trained
    assert jobs.job("third").state == "stopped" and jobs.progress("second").queue_position == 1
    wait_for(jobs, "first", lambda p: p.step >= 3)
    assert jobs.job("second").state == "queued"  # one job at a time
    assert jobs.job("first").state == "running"
    jobs.stop("first", first.key)
    stopped = wait_for(jobs, "first", lambda p: not p.active)
    assert stopped.job.state == "stopped"
    config = json.loads((tmp_path / "style" / "first.json").read_text())
    assert config["training"]["finished"] is False and config["training"]["iterations"] >= 3
    runner = Runner.load(str(tmp_path / "style" / "first.safetensors"), torch.device("cpu"))
    assert runner(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)

    wait_for(jobs, "second", lambda p: not p.active)
    assert jobs.job("second").state == "done"
    tasks = {name: json.loads((tmp_path / "style" / f"{name}.json").read_text())["task"] for name in ("first", "second")}
    assert tasks["first"]["style_balance"] == StyleTask.style_balance  # the recipe's, for "default" strength
    assert tasks["second"]["style_weight"] == pytest.approx(tasks["first"]["style_weight"] * STRENGTHS["lighter"])
    assert added == ["style/first", "style/second"]
    assert not (tmp_path / "style" / "third.safetensors").exists()


def test_bad_style_images_and_names_get_plain_messages(tmp_path):
    jobs = make_jobs(tmp_path)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (32, 48), "red").save(tiny)
    with pytest.raises(ImageError, match="not an image we can read"):
        jobs.submit(text, "tiny")
    with pytest.raises(ImageError, match="32x48 pixels; at least 64"):
        jobs.submit(tiny, "tiny")
    with pytest.raises(UserError, match="'wave' is taken"):
        jobs.submit(STYLE, "tiny", "Wave", taken=["wave", "udnie"])
    with pytest.raises(UserError, match="letters or digits"):
        jobs.submit(STYLE, "tiny", "!!!")
    with pytest.raises(UserError, match="Unknown budget 'huge'"):
        jobs.submit(STYLE, "huge")
    with pytest.raises(UserError, match="Unknown style strength 'max'"):
        jobs.submit(STYLE, "tiny", strength="max")
    assert jobs.jobs() == []


def test_train_style_through_the_api_adds_a_style_that_stylize_accepts(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_USER_MODELS", str(tmp_path / "user-models"))
    services = Services("cpu", hub.HubSettings.from_env())
    services.load_models()
    jobs = TrainingJobs(tmp_path / "user-models", [EXAMPLES], {"tiny": TINY}, "cpu", services.load_model, threads=1)
    demo = build_demo(services, jobs).queue()
    limits: dict[str, set] = {}  # Gradio silently keeps the lowest limit of a concurrency group
    for fn in demo.fns.values():
        limits.setdefault(fn.concurrency_id, set()).add(fn.concurrency_limit)
    assert all(len(values) == 1 for values in limits.values()), limits
    # A page following a job whose folder was deleted is told so once, and its timer stops.
    tick = next(fn.fn for fn in demo.fns.values() if fn.name == "on_tick")
    message, *_, timer = tick("gone")[:5]
    assert message == "There is no training job named 'gone'." and timer.active is False
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_options(jobs))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        name, status, *_ = client.predict(handle_file(str(STYLE)), "tiny", "api wave", api_name="/train_style")
        assert name == "api_wave" and status.startswith(("**Queued**", "**Training**"))  # returns at once
        deadline = time.monotonic() + 240
        while (job := client.predict(name, api_name="/train_progress"))["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job == {"name": "api_wave", "state": "done", "step": 4, "iterations": 4, "minutes": job["minutes"],
                       "queue_position": 0, "message": ""}
        assert "api_wave" in services.style_names()
        assert services.models["style/api_wave"].origin == hub.TRAINED_HERE
        image, _, _ = client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), "api_wave", 128,
                                     api_name="/stylize")
        assert Image.open(image).size == (128, 128)
        with pytest.raises(AppError, match="is taken"):
            client.predict(handle_file(str(STYLE)), "tiny", "starry_night", api_name="/train_style")
        with pytest.raises(AppError, match="no training job named 'nobody'"):
            client.predict("nobody", api_name="/train_progress")
    finally:
        demo.close()
