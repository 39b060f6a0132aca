import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from perceptual_models import hub
from perceptual_models.errors import ConfigError
from perceptual_models.hub import HubSettings
from perceptual_models.image_io import load_image, resize_longer_side, save_image
from perceptual_models.losses import StyleObjective
from perceptual_models.networks import from_pretrained
from train.cli import main as train_main
from train.loop import train, update_average
from train.run import LoopSettings, RunFolder, RunSpec
from train.tasks import StyleTask, SuperResolutionTask

from conftest import REPO, STYLES, TRAIN_DATA, VGG_FILE

LOCAL_VGG = HubSettings(offline=True, vgg_weights=VGG_FILE)  # the loss network from the shared file


@pytest.fixture(scope="module")
def tiny_photos(tmp_path_factory):
    """Eight training photos at 96 px: the real data, small enough for a few CPU steps."""
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted(TRAIN_DATA.rglob("*.jpg"))[::22][:8]:
        save_image(resize_longer_side(load_image(path), 96), folder / f"{path.stem}.jpg")
    return folder


def _settings(folder, run_dir, **overrides) -> LoopSettings:
    values = {"data": [str(folder)], "run_dir": run_dir, "iterations": 12, "batch_size": 2, "log_every": 1, "val_every": 6,
                  "checkpoint_every": 6, "device": "cpu"}
    values.update(overrides)
    return LoopSettings(**values)


def _log(run_dir):
    with (run_dir / "log.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _falls(rows, key="total"):
    first = sum(r[key] for r in rows[:3]) / 3
    last = sum(r[key] for r in rows[-3:]) / 3
    return last < first


def test_style_training_reduces_the_loss(tiny_photos, tmp_path):
    """The default recipe: batch norm, the style weight set from the painting (`style_balance`)."""
    task = StyleTask(style_image=str(STYLES / "starry_night.jpg"), image_size=32, style_size=64,
                     lookup=LOCAL_VGG)
    saved = train(RunSpec(task, _settings(tiny_photos, tmp_path / "style", iterations=15, ema_decay=0.999)))
    rows = _log(tmp_path / "style")
    assert [r["step"] for r in rows] == list(range(1, 16))
    assert _falls(rows) and _falls(rows, "style")
    config = json.loads(saved.with_suffix(".json").read_text())
    started = json.loads((tmp_path / "style" / "run.json").read_text())  # written before the first step
    assert started["task"] == config["task"] and started["params"]["norm"] == config["params"]["norm"] == "batch"
    assert config["task"]["style_balance"] == StyleTask.style_balance
    assert config["task"]["style_weight"] != StyleObjective().style_weight  # this painting's, not the fixed one
    assert config["training"]["iterations"] == 15 and config["loss_network"]["format"] == "caffe"
    assert config["task"]["style_image"] == "starry_night.jpg" and config["final_losses"]["style"] > 0
    for artefact in ("loss.png", "val/step_000006.jpg", "val/step_000012.jpg", "checkpoint.safetensors"):
        assert (tmp_path / "style" / artefact).is_file(), artefact
    model, _ = from_pretrained(saved)
    assert model(torch.rand(1, 3, 21, 30)).shape == (1, 3, 21, 30)
    # The saved network is the weights' moving average, not the last step's weights.
    weights = config["training"]["weights"]
    assert weights.startswith("exponential moving average over 15 steps, decay 0.999") and "0.625 at the end" in weights
    checkpoint = load_file(tmp_path / "style" / "checkpoint.safetensors")
    for name, value in model.state_dict().items():
        assert torch.equal(value, checkpoint[f"average.{name}"]), name
    assert any(not torch.equal(value, checkpoint[f"model.{name}"]) for name, value in model.state_dict().items())


def test_stability_term_is_trained_logged_and_recorded(tiny_photos, tmp_path):
    task = StyleTask(style_image=str(STYLES / "starry_night.jpg"), image_size=32, style_size=64,
                     lookup=LOCAL_VGG, stability_weight=1e6, stability_sigma=0.05)
    saved = train(RunSpec(task, _settings(tiny_photos, tmp_path / "steady", iterations=4)))
    rows = _log(tmp_path / "steady")
    assert all(row["stability"] > 0 for row in rows)
    config = json.loads(saved.with_suffix(".json").read_text())
    for row in rows:  # the total counts it with its weight
        assert row["total"] == pytest.approx(row["content"] + config["task"]["style_weight"] * row["style"]
                                             + task.objective.tv_weight * row["tv"] + 1e6 * row["stability"], rel=1e-4)
    assert config["task"]["stability_weight"] == 1e6 and config["task"]["stability_sigma"] == 0.05
    assert config["final_losses"]["stability"] > 0


def test_moving_average_warms_up_then_keeps_its_decay():
    average, current = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    with torch.no_grad():
        average.weight.fill_(0.0)
        current.weight.fill_(1.0)
    current.num_batches_tracked.fill_(7)
    update_average(average, current, decay=0.999, updates=0)  # warm-up: decay (1 + 0) / (10 + 0)
    assert torch.allclose(average.weight, torch.full((2,), 0.9))
    assert average.num_batches_tracked.item() == 7  # counters are copied, not averaged
    update_average(average, current, decay=0.5, updates=10_000)  # past the warm-up: the decay asked for
    assert torch.allclose(average.weight, torch.full((2,), 0.95))


@pytest.mark.parametrize("loss, arch", [("pixel", "srnet"), ("feat", "srnet"), ("pixel", "srcnn")])
def test_sr_training_reduces_the_loss(tiny_photos, tmp_path, loss, arch):
    task = SuperResolutionTask(scale=4, loss=loss, arch=arch, patch_size=32, lookup=LOCAL_VGG)
    saved = train(RunSpec(task, _settings(tiny_photos, tmp_path / "sr", iterations=20, batch_size=4)))
    rows = _log(tmp_path / "sr")
    assert _falls(rows, "content" if loss == "feat" else "pixel")
    config = json.loads(saved.with_suffix(".json").read_text())
    assert config["architecture"] == arch and config["task"]["loss"] == loss
    assert config["task"]["degradation"].startswith("Gaussian blur sigma 1.0 + bicubic x4")


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_continues_the_same_run(tiny_photos, tmp_path, ema_decay):
    """Resuming gives the run that never stopped: the same losses and saved weights (the average too)."""
    task = SuperResolutionTask(scale=4, loss="pixel", patch_size=32)
    straight = train(RunSpec(task, _settings(tiny_photos, tmp_path / "straight", iterations=8, checkpoint_every=4,
                                     ema_decay=ema_decay)))
    train(RunSpec(task, _settings(tiny_photos, tmp_path / "resumed", iterations=4, checkpoint_every=4, ema_decay=ema_decay)))
    checkpoint = json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())
    assert checkpoint["step"] == 4
    if ema_decay:  # the checkpoint holds an average of its own, which resuming must restore
        tensors = load_file(tmp_path / "resumed" / "checkpoint.safetensors")
        assert checkpoint["averaged_steps"] == 4
        assert any(not torch.equal(v, tensors[f"model.{k[len('average.'):]}"]) for k, v in tensors.items()
                   if k.startswith("average."))
    resumed = train(RunSpec(task, _settings(tiny_photos, tmp_path / "resumed", iterations=8, checkpoint_every=4, resume=True,
                                    ema_decay=ema_decay)))
    a, b = _log(tmp_path / "straight"), _log(tmp_path / "resumed")
    assert [r["step"] for r in b] == list(range(1, 9))
    for row_a, row_b in zip(a, b):
        assert row_b["pixel"] == pytest.approx(row_a["pixel"], rel=1e-4)
    for (name, x), (_, y) in zip(from_pretrained(straight)[0].state_dict().items(),
                                 from_pretrained(resumed)[0].state_dict().items()):
        assert torch.allclose(x, y, atol=1e-5), name


def test_init_from_a_trained_network_goes_on_counting(tiny_photos, tmp_path):
    """--init-from starts from a saved network (the bundled ones keep no optimizer state): its weights, its
    iteration count and its seconds carry on, and where it started is recorded through a resume."""
    task = SuperResolutionTask(scale=4, loss="pixel", patch_size=32)
    first = train(RunSpec(task, _settings(tiny_photos, tmp_path / "first", iterations=4)))
    seconds = json.loads(first.with_suffix(".json").read_text())["training"]["seconds"]
    # A rate too small to move a weight: what is saved is what was loaded.
    still = train(RunSpec(task, _settings(tiny_photos, tmp_path / "still", iterations=6, init_from=first, lr=1e-30)))
    for (name, x), (_, y) in zip(from_pretrained(first)[0].state_dict().items(),
                                 from_pretrained(still)[0].state_dict().items()):
        assert torch.equal(x, y), name
    assert [r["step"] for r in _log(tmp_path / "still")] == [5, 6]
    train(RunSpec(task, _settings(tiny_photos, tmp_path / "still", iterations=8, init_from=first, resume=True)))
    training = json.loads((tmp_path / "still" / "model.json").read_text())["training"]
    assert training["iterations"] == 8 and training["seconds"] > seconds
    assert training["started_from"]["iterations"] == 4 and training["started_from"]["weights"] == str(first)
    with pytest.raises(ConfigError, match="has already trained 4 iterations"):
        train(RunSpec(task, _settings(tiny_photos, tmp_path / "short", iterations=4, init_from=first)))
    with pytest.raises(ConfigError, match="is of another network: norm 'none' \\(now 'batch'\\)"):
        train(RunSpec(SuperResolutionTask(scale=4, loss="pixel", patch_size=32, norm="batch"),
              _settings(tiny_photos, tmp_path / "other", iterations=8, init_from=first)))


@pytest.mark.parametrize("name, message", [
    ("style/wave", "is of another network: norm 'batch' (now 'instance')"),  # found by name, like the app
    ("style/no_such_style", "No weights named 'style/no_such_style'"),
])
def test_init_from_by_name_is_looked_up_and_checked(tiny_photos, tmp_path, capsys, name, message):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["style", "--style", str(STYLES / "wave.jpg"), "--data", str(tiny_photos), "--run-dir",
                    str(tmp_path), "--norm", "instance", "--init-from", name, "--vgg-weights", str(VGG_FILE)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_moving_average_decay_out_of_range_is_refused(tiny_photos, tmp_path):
    task = SuperResolutionTask(scale=4, loss="pixel", patch_size=32)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\), got 1.0"):
        train(RunSpec(task, _settings(tiny_photos, tmp_path / "bad", ema_decay=1.0)))
    result = subprocess.run([sys.executable, "-m", "train", "style", "--style", "x.jpg", "--run-dir", str(tmp_path),
                             "--ema-decay", "-0.1"], check=False, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "must be in [0, 1), got -0.1" in result.stderr


@pytest.mark.parametrize("options, message", [
    (["--scale", "8", "--patch-size", "100"], "--patch-size 100 must be a multiple of the scale 8."),
    (["--data", "{tmp}/missing"], "Photo folder not found: {tmp}/missing"),
    (["--data", "{tmp}"], "No photos found in {tmp}"),
    (["--log-every", "0"], "Log every N >= 1 steps"),
    (["--checkpoint-every", "-1"], "got 10, 200, -1"),
])
def test_trainer_cli_turns_bad_settings_into_usage_errors(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["sr", "--run-dir", str(tmp_path / "run"), *(o.format(tmp=tmp_path) for o in options)])
    assert exit_info.value.code == 2 and message.format(tmp=tmp_path) in capsys.readouterr().err


def test_vgg_weights_option_goes_before_the_environment(tiny_photos, tmp_path, monkeypatch, capsys):
    """--vgg-weights names the loss network's file; without it the environment's (here a missing one) is used."""
    monkeypatch.setenv("PERCEPTUAL_VGG_WEIGHTS", str(tmp_path / "missing.safetensors"))
    options = ["sr", "--loss", "feat", "--data", str(tiny_photos), "--patch-size", "32", "--iterations", "1",
               "--threads", "1", "--val-every", "0"]
    with pytest.raises(SystemExit) as exit_info:
        train_main([*options, "--run-dir", str(tmp_path / "env")])
    assert exit_info.value.code == 2 and "missing.safetensors" in capsys.readouterr().err
    train_main([*options, "--run-dir", str(tmp_path / "flag"), "--vgg-weights", str(VGG_FILE)])
    assert json.loads((tmp_path / "flag" / "model.json").read_text())["training"]["iterations"] == 1


def test_time_budget_saves_and_stops(tiny_photos, tmp_path, capsys):
    task = SuperResolutionTask(scale=4, loss="pixel", patch_size=32)
    # Stopped before the first --log-every row: the partial interval is logged, the config's losses come from it.
    saved = train(RunSpec(task, _settings(tiny_photos, tmp_path / "budget", iterations=1000, max_minutes=1e-6, log_every=10)))
    assert json.loads((tmp_path / "budget" / "checkpoint.json").read_text())["step"] == 1  # to resume from
    config = json.loads(saved.with_suffix(".json").read_text())  # and the network so far, usable
    training = config["training"]
    assert training["iterations"] == 1 and training["planned_iterations"] == 1000 and not training["finished"]
    assert [row["step"] for row in _log(tmp_path / "budget")] == [1]
    assert config["final_losses"]["total"] == pytest.approx(_log(tmp_path / "budget")[0]["total"])
    assert from_pretrained(saved)[0](torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    captured = capsys.readouterr()
    assert "--max-minutes reached at step 1" in captured.out + captured.err


def test_resuming_with_another_network_is_a_usage_error(tiny_photos, tmp_path, capsys):
    options = ["style", "--style", str(STYLES / "wave.jpg"), "--data", str(tiny_photos), "--run-dir", str(tmp_path),
               "--iterations", "1", "--image-size", "32", "--style-size", "64", "--threads", "1", "--val-every", "0",
               "--vgg-weights", str(VGG_FILE)]
    train_main(options)
    with pytest.raises(SystemExit) as exit_info:
        train_main([*options, "--iterations", "2", "--resume", "--norm", "instance"])  # the last one counts
    assert exit_info.value.code == 2
    assert "is of another network: norm 'batch' (now 'instance')" in capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--threads", "-1"], "--threads must be at least 0, got -1"),
    (["--lr", "-0.1"], "--lr must be above 0, got -0.1"),
    (["--iterations", "0"], "--iterations must be at least 1, got 0"),
])
def test_out_of_range_loop_settings_are_usage_errors(tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["sr", "--run-dir", str(tmp_path / "run"), *option])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_training_photos_from_the_environment_are_a_folder_list(tiny_photos, tmp_path):
    """PERCEPTUAL_TRAIN_DATA holds folders separated by os.pathsep, for the trainer as for the app."""
    env = {**os.environ, "PERCEPTUAL_TRAIN_DATA": os.pathsep.join([str(tiny_photos), str(tmp_path / "missing")])}
    result = subprocess.run([sys.executable, "-m", "train", "sr", "--run-dir", str(tmp_path / "run"), "--iterations", "1"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and f"Photo folder not found: {tmp_path / 'missing'}" in result.stderr


def test_the_log_reads_up_to_a_row_cut_short(tmp_path):
    """The app follows a log.csv while the loop appends to it; a resume keeps the rows up to its checkpoint."""
    run = RunFolder(tmp_path)
    run.log.write_text("step,total,content,style,tv,pixel,seconds\n1,5,4,3,2,0,0.5\n2,4,3,2,1,0,1.0\n3,3,2")
    assert [row["step"] for row in run.read_log()] == [1, 2]
    assert [row["total"] for row in run.read_log(up_to_step=1)] == [5]
    assert RunFolder(tmp_path / "none").read_log() == []
    # A run resumed from an older log (no stability column) rewrites it with today's columns, then appends.
    run.write_log(run.read_log(up_to_step=1))
    run.write_log([{"step": 2, "total": 4, "content": 3, "style": 2, "tv": 1, "pixel": 0, "stability": 0.5,
                    "seconds": 1.0}], append=True)
    assert [(row["step"], row["stability"]) for row in run.read_log()] == [(1, 0), (2, 0.5)]


def test_a_run_spec_goes_through_json_and_the_command_line(tiny_photos, tmp_path):
    """What the app's training tab does: a spec written as JSON, trained by `python -m train run`."""
    task = StyleTask(style_image=str(STYLES / "wave.jpg"), image_size=32, style_size=64, stability_weight=1e5,
                     objective=StyleObjective(tv_weight=1e4))
    spec = RunSpec(task, _settings(tiny_photos, tmp_path / "job", iterations=3, stop_file=tmp_path / "job" / "STOP",
                                   extra={"note": "from a spec"}))
    back = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec  # every setting survives JSON, paths included
    spec.write(tmp_path / "spec.json")
    result = subprocess.run([sys.executable, "-m", "train", "run", str(tmp_path / "spec.json"), "--vgg-weights",
                             str(VGG_FILE)], check=False, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(RunFolder(tmp_path / "job").model.with_suffix(".json").read_text())
    assert config["training"]["iterations"] == 3 and config["training"]["note"] == "from a spec"
    assert config["task"]["tv_weight"] == 1e4 and config["task"]["stability_weight"] == 1e5
    (tmp_path / "bad.json").write_text('{"kind": "style", "task": {}}')
    result = subprocess.run([sys.executable, "-m", "train", "run", str(tmp_path / "bad.json")], check=False,
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and "Not a training run spec" in result.stderr


def test_checkpoint_every_zero_saves_only_at_the_end(tiny_photos, tmp_path):
    task = SuperResolutionTask(scale=4, loss="pixel", patch_size=32)
    train(RunSpec(task, _settings(tiny_photos, tmp_path / "end", iterations=3, checkpoint_every=0, val_every=0)))
    assert json.loads((tmp_path / "end" / "checkpoint.json").read_text())["step"] == 3


def test_torchrun_two_processes_on_gloo(tiny_photos, tmp_path):
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "train", "sr", "--data", str(tiny_photos), "--run-dir", str(run_dir), "--iterations", "4",
               "--batch-size", "2", "--patch-size", "32", "--device", "cpu", "--threads", "1",
               "--log-every", "1", "--val-every", "2", "--checkpoint-every", "2", "--ema-decay", "0.9"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved ") == 1  # rank 0 alone writes the model
    config = json.loads((run_dir / "model.json").read_text())
    assert config["training"]["processes"] == 2 and config["training"]["iterations"] == 4
    assert config["training"]["weights"].startswith("exponential moving average over 4 steps")
    assert [r["step"] for r in _log(run_dir)] == [1, 2, 3, 4]  # one log, not two interleaved


def test_gpu_styles_job_with_a_tiny_budget_on_the_cpu(tiny_photos, tmp_path):
    """The GPU job's plumbing: styles trained one after another, each going on from its bundled network with
    its recipe, one tar each, unpacked into a loadable bundle."""
    from train.gpu_styles import main as gpu_styles
    from train.gpu_styles import unpack

    out = tmp_path / "out"
    gpu_styles(["--data", str(tiny_photos), "--style-dir", str(STYLES), "--styles", "the_scream", "wave",
                "--out", str(out), "--work", str(tmp_path / "runs"), "--iterations", "3", "--image-size", "32", "--batch-size", "2",
                "--device", "cpu", "--minutes", "10", "--", "--threads", "1", "--style-size", "64",
                "--vgg-weights", str(VGG_FILE)])
    assert sorted(p.name for p in out.iterdir()) == ["style_the_scream.tar", "style_wave.tar", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    bundled_wave = json.loads((hub.BUNDLED_DIR / "style" / "wave.json").read_text())["training"]["iterations"]
    assert summary["wave"]["iterations"] == bundled_wave + 3 and summary["wave"]["finished"]
    bundle = tmp_path / "bundle"
    assert unpack(sorted(out.glob("style_*.tar")), bundle) == ["the_scream", "wave"]
    for name in ("the_scream", "wave"):  # the recipe each bundled network records; the options after -- win
        trained = from_pretrained(bundle / "style" / f"{name}.safetensors")[1]
        bundled = json.loads((hub.BUNDLED_DIR / "style" / f"{name}.json").read_text())
        assert trained["params"]["norm"] == bundled["params"]["norm"]
        assert trained["task"].get("style_balance") == bundled["task"].get("style_balance")
        assert trained["task"]["style_size"] == 64 and trained["task"]["image_size"] == 32
    bundled_wave = json.loads((hub.BUNDLED_DIR / "style" / "wave.json").read_text())["task"]
    assert trained["params"]["norm"] == "batch" and trained["task"]["style_balance"] == bundled_wave["style_balance"]
    assert trained["task"].get("stability_weight") == bundled_wave.get("stability_weight")  # the recipe's stability term
    scream = from_pretrained(bundle / "style" / "the_scream.safetensors")[1]
    bundled_scream = json.loads((hub.BUNDLED_DIR / "style" / "the_scream.json").read_text())["task"]
    assert scream["params"]["norm"] == "instance"  # its recipe: a balance, or a fixed weight
    assert (scream["task"].get("style_balance") == bundled_scream["style_balance"] if "style_balance" in bundled_scream
            else scream["task"]["style_weight"] == bundled_scream["style_weight"])
    assert "5.00 min budget" in scream["training"]["note"]  # --minutes 10 shared by the two styles
    model, config = from_pretrained(bundle / "style" / "wave.safetensors")
    assert config["dtype"] == "float16"
    second = float(config["training"]["note"].split(" min budget")[0].rsplit(" ", 1)[1])
    assert 5.0 < second < 10.0  # the time the first did not use passes to the second
    assert model(torch.rand(1, 3, 20, 24)).shape == (1, 3, 20, 24)
    assert "style/wave.safetensors" in json.loads((bundle / "manifest.json").read_text())["files"]


def test_gpu_styles_dry_run_counts_the_work_of_the_jobs_own_step(tiny_photos, capsys):
    """The dry run times the job's step for its first style and counts its work per crop: a convolutional
    step's work grows with the crop's area, and the whole job's is each style's share of the paper's crops."""
    from train.gpu_styles import PAPER_CROPS, main

    def report(size: int) -> dict:
        main(["--dry-run", "1", "--data", str(tiny_photos), "--style-dir", str(STYLES), "--styles", "wave", "the_scream",
              "--image-size", str(size), "--batch-size", "2", "--device", "cpu", "--", "--threads", "1",
              "--style-size", "64", "--vgg-weights", str(VGG_FILE)])
        return json.loads(capsys.readouterr().out)

    small, large = report(32), report(64)
    assert small["style"] == "wave" and small["steps_timed"] == 1 and small["crops_per_second"] > 0
    assert small["job_crops"] == 2 * PAPER_CROPS
    assert 3.6 < large["gflop_per_crop"] / small["gflop_per_crop"] < 4.4  # 4x the pixels, about 4x the work


def test_gpu_styles_recipe_gives_way_to_a_weight_given_after_the_separator():
    from train.gpu_styles import bundled_recipe

    balance = json.loads((hub.BUNDLED_DIR / "style" / "wave.json").read_text())["task"]["style_balance"]
    assert bundled_recipe("wave", [])[-2:] == ["--style-balance", repr(balance)]
    assert "--style-balance" not in bundled_recipe("wave", ["--style-weight", "1e-5"])
    assert bundled_recipe("not_bundled", []) == []


def test_train_command_line_help():
    result = subprocess.run([sys.executable, "-m", "train", "style", "--help"], check=False, capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--style-weight" in result.stdout and "--max-minutes" in result.stdout


@pytest.mark.parametrize("style", ["udnie", "the_scream"])
def test_style_config_keeps_its_layout_and_objective(style):
    """StyleTask writes the "task" dict bundled configs have (same keys, same order), and the
    objective read back from a bundled config is the one it records."""
    bundled = json.loads((hub.BUNDLED_DIR / "style" / f"{style}.json").read_text())["task"]
    task = StyleTask(style_image=bundled["style_image"], image_size=bundled["image_size"], style_size=bundled["style_size"],
                     objective=StyleObjective.from_dict(bundled), style_balance=bundled.get("style_balance"),
                     stability_weight=bundled.get("stability_weight", 0.0),
                     stability_sigma=bundled.get("stability_sigma", StyleTask.stability_sigma))
    assert task.settings() == bundled and list(task.settings()) == list(bundled)
