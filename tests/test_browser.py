"""The app in a real browser: Debian's Chromium, headless, driven by Playwright.

Screenshots of every step are saved under the test's temporary folder (printed at the end) and,
when PERCEPTUAL_SCREENSHOTS is set, copied there as artefacts.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from demo.tools.app_process import REPO, running_app

from bad_inputs import write_bad_inputs
from conftest import VGG_FILE

pytestmark = pytest.mark.browser
EXAMPLE = REPO / "demo" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    env = {"HF_HUB_OFFLINE": "1", "PERCEPTUAL_VGG_WEIGHTS": str(VGG_FILE), "PERCEPTUAL_COMPILE": "0"}
    with running_app(tmp_path_factory.mktemp("app"), **env) as (url, _):
        yield url


@pytest.fixture()
def page(browser_context, app_url) -> Page:
    page = browser_context.new_page()
    page.goto(app_url)
    expect(page.locator("#run-feedforward")).to_be_visible(timeout=60_000)
    yield page
    page.close()


def _upload(page: Page, element: str, path: Path) -> None:
    """Upload `path` and wait until the component holds it: its preview names the uploaded file
    (whether or not the browser can draw it: the bad inputs are uploaded too)."""
    page.locator(f"{element} input[type=file]").set_input_files(str(path))
    page.wait_for_function("([element, name]) => decodeURIComponent(document.querySelector(element + ' img')"
                           "?.getAttribute('src') || '').endsWith('/' + name)", arg=[element, path.name],
                           timeout=30_000)


def _image_size(page: Page, selector: str) -> tuple[int, int]:
    return tuple(page.locator(selector).evaluate("img => [img.naturalWidth, img.naturalHeight]"))


def test_a_thumbnail_picks_its_own_style(page):
    """By its caption (a page opened before a style was trained here has an older list than the server)."""
    thumbnails = page.locator("#style-gallery img")
    captions = page.locator("#style-gallery .caption-label, #style-gallery figcaption")
    for index in (2, 0):
        thumbnails.nth(index).click()
        expected = captions.nth(index).inner_text() if captions.count() else None
        assert expected, "the thumbnails have no captions"
        expect(page.locator("#style-choice input")).to_have_value(expected)  # (2, 0): each pick changes it
    expect(page.locator(ERROR_BADGES)).to_have_count(0)


def test_feedforward_stylisation_renders_at_the_right_size(page, shots):
    _upload(page, "#content-image", EXAMPLE)
    page.locator("#run-feedforward").click()
    output = page.locator("#feedforward-output img")
    expect(output).to_be_visible(timeout=60_000)
    page.wait_for_function("() => document.querySelector('#feedforward-output img').naturalWidth > 0")
    assert _image_size(page, "#feedforward-output img") == (256, 256)  # 512 px photo, 256 px on a CPU
    expect(page.locator("#timing-table")).to_contain_text("Feed-forward")
    page.screenshot(path=str(shots / "style_feedforward.png"), full_page=True)


def test_super_resolution_shows_every_method_and_metrics(page, shots):
    page.get_by_role("tab", name="Super-resolution").click()
    _upload(page, "#sr-input", EXAMPLE)
    page.locator("#run-sr").click()
    expect(page.locator("#sr-results img")).to_have_count(5, timeout=60_000)  # 4 methods + original
    metrics = page.locator("#sr-metrics")
    for method in ("Bicubic", "SRCNN-style", "Ours, l_pixel", "Ours, l_feat"):
        expect(metrics).to_contain_text(method)
    expect(page.locator("#sr-crops img")).to_have_count(6)
    page.screenshot(path=str(shots / "super_resolution.png"), full_page=True)


ERROR_BADGES = "[data-testid=status-tracker] .error"  # what Gradio paints over outputs when an event fails


def _wait_until_done(page: Page, element: str) -> None:
    """Until the event `element` is an output of has ended (Gradio hides the element's status tracker)."""
    expect(page.locator(f"{element} [data-testid=status-tracker]").first).to_have_class(re.compile(r"\bhide\b"),
                                                                                      timeout=60_000)


def _output_src(page: Page, element: str) -> str:
    return page.locator(f"{element} img").get_attribute("src")


def test_gatys_streams_and_stop_keeps_the_last_image(page, browser_context, shots):
    _upload(page, "#content-image", EXAMPLE)
    page.locator("#run-gatys").click()
    status = page.locator("#gatys-status")
    expect(status).to_contain_text("Optimizing: iteration", timeout=120_000)
    first = status.inner_text()
    expect(status).not_to_have_text(first, timeout=60_000)  # intermediate results keep arriving
    expect(page.locator("#gatys-output img")).to_be_visible()
    page.screenshot(path=str(shots / "gatys_running.png"), full_page=True)
    page.locator("#run-gatys").click()  # a second click while it runs must not take Stop away from it
    # A second visitor's optimization waits for this one (one at a time); its Stop works while it waits.
    other = browser_context.new_page()
    other.goto(page.url)
    _upload(other, "#content-image", EXAMPLE)
    other.locator("#run-gatys").click()
    # Its Stop goes after its click has registered: the page then shows its place in the queue.
    expect(other.locator("#gatys-status")).to_contain_text("queue", timeout=30_000)
    other.locator("#stop-gatys").click()
    page.locator("#stop-gatys").click()
    expect(status).to_contain_text(re.compile(r"Stopped at iteration \d+ / 100"), timeout=30_000)
    stopped, image = status.inner_text(), _output_src(page, "#gatys-output")
    # The run has ended: the optimizations run one at a time, and the waiting one has had its turn.
    expect(other.locator("#gatys-status")).to_have_text("Stopped before it started.", timeout=60_000)
    assert status.inner_text() == stopped and _output_src(page, "#gatys-output") == image  # nothing came after
    expect(page.locator(ERROR_BADGES)).to_have_count(0)
    expect(page.locator("#timing-table")).to_contain_text("Gatys")
    page.screenshot(path=str(shots / "gatys_stopped.png"), full_page=True)
    expect(other.locator("#gatys-output img")).to_have_count(0)
    other.close()


def test_an_error_leaves_earlier_outputs_and_timings_in_place(page, shots, tmp_path):
    _upload(page, "#content-image", EXAMPLE)
    page.locator("#run-feedforward").click()
    expect(page.locator("#timing-table")).to_contain_text("Feed-forward", timeout=60_000)
    image, timing = _output_src(page, "#feedforward-output"), page.locator("#timing-table").inner_text()
    page.locator("#content-image button[aria-label='Remove Image']").click()
    path, expected = write_bad_inputs(tmp_path)["text_renamed"]
    _upload(page, "#content-image", path)
    page.locator("#run-feedforward").click()
    expect(page.locator("[data-testid=toast-text]").last).to_contain_text(expected, timeout=60_000)
    _wait_until_done(page, "#feedforward-output")  # the event has ended: no output can change after this
    assert _output_src(page, "#feedforward-output") == image
    assert page.locator("#timing-table").inner_text() == timing
    expect(page.locator(ERROR_BADGES)).to_have_count(0)
    page.screenshot(path=str(shots / "error_keeps_outputs.png"), full_page=True)


def test_a_webcam_photo_takes_two_clicks(page, shots):
    page.locator("#content-image button[aria-label='Capture from camera']").click()  # the camera is asked for too
    # Capturing before the camera has drawn a frame takes nothing (the full suite on a loaded CPU hit this).
    page.wait_for_function("() => { const v = document.querySelector('#content-image video');"
                           " return v?.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0; }", timeout=60_000)
    capture = page.locator("#content-image button[aria-label='capture photo']")
    # The camera stays open after a capture that took nothing; a visitor clicks again, and so does this.
    for attempt in (1, 2):
        try:
            with page.expect_request(re.compile(r"/gradio_api/upload\?"), timeout=30_000):
                capture.click()
            break
        except PlaywrightTimeoutError:
            assert attempt == 1, "two captures sent no photo to the server"
    # Any image: the webcam keeps a hidden, empty <img> of its own, first in the page while it is open.
    page.wait_for_function("() => [...document.querySelectorAll('#content-image img')].some(i => i.naturalWidth > 0)",
                           timeout=60_000)
    page.locator("#run-feedforward").click()
    page.wait_for_function("() => document.querySelector('#feedforward-output img')?.naturalWidth > 0", timeout=60_000)
    page.screenshot(path=str(shots / "webcam_photo.png"))


def test_phone_layout_has_every_tab_the_styles_and_the_run_button_on_the_first_screen(browser_context, app_url,
                                                                                       shots):
    page = browser_context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(app_url)
    button = page.locator("#run-feedforward")
    expect(button).to_be_visible(timeout=60_000)
    # The layout has settled once the fonts and the images above the button (the style thumbnails) are in.
    page.wait_for_function("() => document.fonts.status === 'loaded' && [...document.querySelectorAll("
                           "'#style-gallery img')].every(img => img.complete && img.naturalWidth > 0)",
                           timeout=30_000)
    box = button.bounding_box()
    assert box["y"] + box["height"] <= 844, box
    for tab in ("Style transfer", "Super-resolution", "Gallery", "How it works"):
        expect(page.get_by_role("tab", name=tab)).to_be_visible()
    thumbnails = page.locator("#style-gallery img")
    assert thumbnails.count() >= 5
    for index in range(thumbnails.count()):
        thumbnail = thumbnails.nth(index).bounding_box()
        assert thumbnail["x"] >= 0 and thumbnail["x"] + thumbnail["width"] <= 390 and thumbnail["y"] < 844, thumbnail
    page.screenshot(path=str(shots / "phone_first_screen.png"))
    page.close()


def test_bad_uploads_give_a_result_or_a_clear_message(page, shots, tmp_path):
    observed = {}
    for name, (path, expected) in write_bad_inputs(tmp_path).items():
        _upload(page, "#content-image", path)
        page.locator("#run-feedforward").click()
        if expected == "ok":
            page.wait_for_function(
                "() => { const img = document.querySelector('#feedforward-output img');"
                " return img && img.naturalWidth > 0 && img.src !== window.__lastOutput; }", timeout=60_000)
            page.evaluate("() => { window.__lastOutput = document.querySelector('#feedforward-output img').src; }")
            observed[name] = "image of size {}x{}".format(*_image_size(page, "#feedforward-output img"))
        else:
            toast = page.locator("[data-testid=toast-text]").last
            expect(toast).to_be_visible(timeout=60_000)
            observed[name] = toast.inner_text()
            assert expected in observed[name].lower() or (name == "zero_bytes" and "upload" in observed[name])
            page.locator("[data-testid=toast-close]").last.click()
        page.screenshot(path=str(shots / f"bad_input_{name}.png"))
        page.locator("#content-image button[aria-label='Remove Image']").click()
    (shots / "bad_inputs.txt").write_text("\n".join(f"{k}: {v}" for k, v in observed.items()) + "\n")
    assert observed["exif_rotated"] == "image of size 171x256" and observed["cmyk"] == "image of size 256x171"
    # And the app still serves a normal request.
    _upload(page, "#content-image", EXAMPLE)
    page.locator("#run-feedforward").click()
    page.wait_for_function("() => document.querySelector('#feedforward-output img').naturalWidth == 256")


def test_every_tab_renders(page, shots):
    headings = {"Gallery": "The paper's tables, reproduced by this code", "How it works": "What does the loss network see?"}
    for tab, heading in headings.items():
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_text(heading)).to_be_visible()
        page.screenshot(path=str(shots / f"tab_{tab.lower().replace(' ', '_')}.png"), full_page=True)
    page.get_by_role("tab", name="Gallery").click()
    expect(page.get_by_text(headings["Gallery"])).to_be_visible()
    expect(page.get_by_text("The gallery has not been built yet")).to_have_count(0)


JOB_KEYS = "perceptual-losses-training-jobs"  # train_tab's BrowserState: {job name: key}, encrypted


def _open_training_tab(page: Page, app_url: str, local_storage: dict[str, str]) -> None:
    """The app opened in a browser whose local storage is `local_storage`. It is replaced from
    another page of the same origin: an open app page writes its state back as it unloads."""
    page.goto(app_url + "config")
    page.evaluate("(items) => { localStorage.clear(); "
                  "Object.entries(items).forEach(([k, v]) => localStorage.setItem(k, v)); }", local_storage)
    page.goto(app_url)
    page.get_by_role("tab", name="Train your own style").click()


def test_only_the_browser_that_started_a_training_job_stops_it(page, app_url, shots):
    """Last in the module: the style it trains joins the app's lists."""
    page.get_by_role("tab", name="Train your own style").click()
    # The tab's store of job keys is written as it opens (an empty one), then whenever a key joins it.
    page.wait_for_function("(store) => localStorage.getItem(store) !== null", arg=JOB_KEYS)
    empty = page.evaluate("(store) => localStorage.getItem(store)", JOB_KEYS)
    _upload(page, "#train-style", REPO / "perceptual_models" / "weights" / "styles" / "wave.jpg")
    page.locator("#train-name input").fill("lesson")
    page.locator("#train-start").click()
    status = page.locator("#train-status")
    expect(status).to_contain_text(re.compile(r"(Queued|Training) lesson"), timeout=30_000)
    # The key comes a request after the status (Train, then `remember`): a copy of the storage taken
    # in between holds no key, and the reopened page's Stop is refused (3 failures in 6 runs).
    page.wait_for_function("([store, empty]) => localStorage.getItem(store) !== empty", arg=[JOB_KEYS, empty])
    teacher = page.evaluate("() => ({...localStorage})")
    # Another browser (no key) follows the job, and its Stop is refused with a message.
    _open_training_tab(page, app_url, {})
    expect(page.locator("#train-job input, #train-job textarea")).to_have_value("lesson", timeout=30_000)
    page.locator("#train-stop").click()
    expect(page.get_by_text("Only the browser that started 'lesson' can stop it.")).to_be_visible(timeout=10_000)
    page.screenshot(path=str(shots / "train_stop_refused.png"), full_page=True)
    expect(status).to_contain_text(re.compile(r"(Queued|Training) lesson"))
    # The teacher's browser, reopened, still holds the key: Stop keeps the network so far.
    _open_training_tab(page, app_url, teacher)
    expect(status).to_contain_text(re.compile(r"(Queued|Training) lesson"), timeout=30_000)
    page.locator("#train-stop").click()
    expect(status).to_contain_text("Stopped lesson", timeout=120_000)
    expect(status).to_contain_text("in the style list")
    page.screenshot(path=str(shots / "train_stopped.png"), full_page=True)
    page.get_by_role("tab", name="Style transfer").click()
    expect(page.locator("#style-gallery")).to_contain_text("lesson", timeout=10_000)
