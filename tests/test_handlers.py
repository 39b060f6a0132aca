"""The tabs' callbacks called directly, as the page would call them, without a server or a browser."""

from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from demo.live_tab import LiveHandlers
from demo.services import Services, UserError
from demo.sr_tab import SR_HEADERS, SRHandlers
from demo.style_tab import TIMING_HEADERS, OptimizationStops, StyleHandlers
from demo.train_tab import TrainHandlers
from demo.training import Budget, TrainingJobs
from perceptual_models.controls import SteadyState
from perceptual_models.hub import HubSettings

from conftest import REPO

EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"
PAINTING = REPO / "perceptual_models" / "weights" / "styles" / "wave.jpg"


@pytest.fixture(scope="module")
def services():
    services = Services("cpu", HubSettings(offline=True))  # module-scoped: the bundled models, not the environment's
    services.load_models()
    return services


def _session(name: str = "browser-1"):
    return SimpleNamespace(session_hash=name)  # what the handlers read of a `gr.Request`


def test_stylize_returns_the_image_the_timing_table_and_the_timings(services):
    path, table, timings, note = StyleHandlers(services).on_stylize(str(EXAMPLE), "starry_night", 128, {}, False, 1, 1)
    assert Image.open(path).size == (128, 128) and note == ""
    assert list(table.columns) == TIMING_HEADERS and table.iloc[0]["method"] == "Feed-forward, starry_night"
    assert set(timings) == {"feedforward"} and timings["feedforward"]["size"] == "128x128"
    with pytest.raises(UserError, match="Pick a style first"):
        StyleHandlers(services).on_stylize(str(EXAMPLE), None, 128, {}, False, 1, 1)


def test_a_picked_thumbnail_gives_its_caption_if_the_style_still_exists(services):
    handlers = StyleHandlers(services)
    assert handlers.on_pick_style(SimpleNamespace(value={"caption": "starry_night"})) == "starry_night"
    with pytest.raises(UserError, match="not available any more"):
        handlers.on_pick_style(SimpleNamespace(value={"caption": "deleted_meanwhile"}))


def test_a_stop_reaches_the_run_of_its_own_session_only():
    stops = OptimizationStops()
    stops.click("a")
    stops.click("b")
    flag = stops.take("a")
    stops.click("a")  # a second click while the run is pending or running keeps its flag
    stops.stop("a")
    assert stops.take("a") is flag and flag.is_set() and not stops.take("b").is_set()
    stops.release("a", flag)
    stops.click("a")  # the next run starts with a fresh flag
    assert not stops.take("a").is_set()
    stops.stop("nobody")  # a Stop with nothing running is ignored


def test_a_stop_while_queued_ends_the_optimization_before_it_starts(services):
    handlers = StyleHandlers(services)
    handlers.on_click(_session())
    handlers.on_stop(_session())
    updates = list(handlers.on_gatys(str(EXAMPLE), "starry_night", None, 64, 10, {}, False, _session()))
    assert len(updates) == 1 and updates[0][1] == "**Stopped** before it started."
    assert handlers.stops.take(_session().session_hash).is_set() is False  # the next run is not stopped


def test_a_stop_during_the_optimization_ends_it_after_the_image_on_screen(services):
    handlers = StyleHandlers(services)
    handlers.on_click(_session())
    run = handlers.on_gatys(str(EXAMPLE), "starry_night", None, 64, 30, {}, False, _session())
    first = next(run)
    assert first[1].startswith("**Optimizing**")
    handlers.on_stop(_session("another browser"))  # not this run's
    second = next(run)
    handlers.on_stop(_session())
    rest = list(run)
    assert second[1].startswith("**Optimizing**") and len(rest) == 1
    assert rest[0][1].startswith(f"**Stopped** at iteration {second[-1]['gatys']['iteration']} / 30")


def test_upscale_reports_each_step_and_returns_the_comparison(services, tmp_path):
    photo = tmp_path / "small.png"
    Image.open(EXAMPLE).resize((64, 64)).save(photo)
    steps = []
    gallery, crops, table, note = SRHandlers(services).on_upscale(
        str(photo), "hr", "x4", "bicubic", 0.5, 0.5, True, progress=lambda done, desc, unit: steps.append((done, desc)))
    methods = services.sr_methods(4)
    assert [done for done, _ in steps] == [(i, 2 * len(methods)) for i in range(2 * len(methods))]
    assert list(table.columns) == SR_HEADERS and len(table) == len(methods)
    assert [Image.open(path).size for path, _ in gallery] == [(64, 64)] * (len(methods) + 1)  # and the original
    assert len(crops) == len(methods) + 2  # and the input, enlarged
    assert "Low-resolution input 16x16 px, output x4 64x64 px" in note


def test_a_camera_frame_comes_back_stylised_and_an_empty_one_is_skipped(services, tmp_path):
    handlers, state = LiveHandlers(services), object()
    assert handlers.on_frame(None, "starry_night", 128, False, 1, 1, None, 0, False, state)[2] is state
    frame = tmp_path / "frame.jpg"
    Image.open(EXAMPLE).resize((160, 120)).save(frame)
    (jpeg, source_bytes), stats, _ = handlers.on_frame(frame.read_bytes(), "starry_night", 128, False, 1, 1, None, 0,
                                                       False, SteadyState())
    assert source_bytes == frame.stat().st_size and jpeg[:2] == b"\xff\xd8"
    assert stats.startswith("Server: ") and "starry_night, 128x96" in stats


def test_training_answers_bad_input_with_a_message_and_starts_nothing(services, tmp_path):
    jobs = TrainingJobs(tmp_path, [REPO / "demo" / "examples"], {"tiny": Budget("Tiny", 4, 64, 5, 2)},
                        "cpu", lambda name: None, threads=1)
    handlers = TrainHandlers(services, jobs, lambda: ("refreshed",), 1)
    with pytest.raises(UserError, match="Upload a style image"):
        handlers.on_train(None, "tiny", "", "default")
    with pytest.raises(UserError, match="Unknown budget 'huge'"):
        handlers.on_train(str(PAINTING), "huge", "", "default")
    with pytest.raises(UserError, match="'starry_night' is taken"):
        handlers.on_train(str(PAINTING), "tiny", "starry_night", "default")
    with pytest.raises(UserError, match="no training job named 'nobody'"):
        handlers.train_progress("nobody")
    message, *_, timer, style_list = handlers.on_tick("gone")  # a followed job whose folder was deleted
    assert message == "There is no training job named 'gone'." and timer.active is False
    assert style_list == gr.skip()  # the style lists change only when a job ends
    assert jobs.jobs() == [] and handlers.on_open()[0] == gr.skip()
