"""The Live tab in headless Chromium with a fake camera: the stream, style switching, stopping,
fair sharing with /stylize, and video files (round trip, cancel, bad uploads)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file
from PIL import Image
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from demo.tools.app_process import REPO, running_app
from perceptual_models.tools.clips import write_clip
from perceptual_models.video import probe

pytestmark = pytest.mark.browser
EXAMPLE = REPO / "demo" / "examples" / "chelsea.jpg"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("app"), HF_HUB_OFFLINE="1", PERCEPTUAL_COMPILE="0") as (url, _):
        yield url


@pytest.fixture()
def page(browser_context, app_url) -> Page:
    page = browser_context.new_page()
    page.goto(app_url)
    page.get_by_role("tab", name="Live camera and video").click()
    expect(page.locator("#live-camera")).to_be_visible(timeout=60_000)
    yield page
    page.close()


def shown(page: Page) -> int:
    """Stylised frames decoded on screen so far (counted by the panel's own script)."""
    return page.evaluate("() => window.__live.shown.length")


def wait_for_more_frames(page: Page, than: int, timeout: float = 60_000) -> None:
    page.wait_for_function(f"() => window.__live.shown.length > {than}", timeout=timeout)


def wait_until_still(page: Page, expression: str, still_ms: int, timeout: float = 60_000):
    """Wait until the JavaScript `expression` has kept its value for `still_ms`, and return that value.
    How a stopped stream is told from a running one: what was already on its way may still
    land after the click, for as long as the machine takes. Fails only if it never settles."""
    handle = page.wait_for_function("""([expression, stillMs]) => {
        const value = JSON.stringify((0, eval)(expression)), now = performance.now(), seen = window.__still;
        if (!seen || seen.expression !== expression || seen.value !== value) {
            window.__still = {expression, value, since: now};
            return false;
        }
        return now - seen.since >= stillMs && value;
    }""", arg=[expression, still_ms], polling=100, timeout=timeout)
    return json.loads(handle.json_value())


def start_camera(page: Page) -> None:
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#live-camera .button-wrap button").first.click()  # start streaming


def test_live_stream_switch_style_and_size_share_and_stop(page, app_url, shots):
    start_camera(page)
    wait_for_more_frames(page, 3)
    output = page.locator("#live-output img")
    assert output.evaluate("img => img.naturalWidth") == 256  # the CPU default size
    stats = page.locator("#live-stats")
    expect(stats).to_contain_text("frames/s")
    expect(stats).to_contain_text("end to end")
    expect(stats).to_contain_text("starry_night, 256x192")
    page.screenshot(path=str(shots / "live_streaming.png"))

    page.locator("#live-style input").click()
    page.get_by_role("option", name="wave").click()
    expect(page.locator("#live-server")).to_contain_text("wave, 256x192", timeout=60_000)
    page.locator("#live-size").get_by_label("192").check()
    page.wait_for_function("() => document.querySelector('#live-output img').naturalWidth === 192", timeout=60_000)
    expect(page.locator("#live-server")).to_contain_text("wave, 192x144")

    # Fair sharing: twenty /stylize requests complete while the stream keeps delivering frames.
    before = shown(page)
    client = Client(app_url, verbose=False)
    jobs = [client.submit(handle_file(str(EXAMPLE)), "udnie", 256, api_name="/stylize") for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        sizes = list(pool.map(lambda job: Image.open(job.result(timeout=600)[0]).size, jobs))
    assert sizes == [(256, 170)] * 20
    assert shown(page) > before
    page.screenshot(path=str(shots / "live_style_switched.png"))

    page.locator("#live-camera .button-wrap button").first.click()  # stop
    wait_until_still(page, "window.__live.shown.length", 2500)  # no frame comes any more


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "tone.mp4", seconds=1.0)


def test_video_round_trip_keeps_sound_and_duration(page, clip, shots, tmp_path):
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.locator("#run-video").click()
    expect(page.locator("#video-status")).to_contain_text("Done: frame 30 / 30", timeout=120_000)
    video = page.locator("#video-output video")
    page.wait_for_function("() => document.querySelector('#video-output video')?.readyState >= 1", timeout=30_000)
    duration, width, src = video.evaluate("v => [v.duration, v.videoWidth, v.src]")
    assert abs(duration - 1.0) < 0.05 and width == 256  # plays in the browser: H.264 in mp4
    result = tmp_path / "downloaded.mp4"
    result.write_bytes(page.request.get(src).body())
    info = probe(result)
    assert info.has_audio and info.fps == 30 and info.frames == 30
    page.screenshot(path=str(shots / "live_video_done.png"), full_page=True)


def _clear_video_input(page) -> None:
    """Clear the uploaded clip until the file input is back: right after a cancel, the component can
    still be busy with the cancelled event and ignore a first click (seen under heavy CPU load)."""
    file_input = page.locator("#video-input input[type=file]")
    clear = page.locator("#video-input button[aria-label='Clear']").first
    for _ in range(12):
        if file_input.count():
            return
        try:
            clear.click(timeout=5_000)
            file_input.wait_for(state="attached", timeout=5_000)
        except PlaywrightTimeoutError:
            continue
    raise AssertionError("the video input did not come back after Clear")


def test_cancel_and_bad_uploads_leave_the_app_serving(page, clip, tmp_path):
    long_clip = write_clip(tmp_path / "long.mp4", seconds=6.0, tone_hz=None)
    page.locator("#video-input input[type=file]").set_input_files(str(long_clip))
    page.locator("#run-video").click()
    status = page.locator("#video-status")
    expect(status).to_contain_text("Stylising: frame", timeout=120_000)
    page.locator("#cancel-video").click()
    cancelled = wait_until_still(page, "document.querySelector('#video-status').innerText", 3000)
    assert "Done" not in cancelled  # it stopped before the end

    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 100)
    _clear_video_input(page)
    page.locator("#video-input input[type=file]").set_input_files(str(fake))
    page.locator("#run-video").click()
    toast = page.locator("[data-testid=toast-text]").last
    expect(toast).to_contain_text("not a video we can read", timeout=60_000)

    _clear_video_input(page)
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    page.locator("#run-video").click()
    expect(status).to_contain_text("Done: frame 30 / 30", timeout=120_000)
