"""Headless Debian Chromium with a fake camera that says yes, for the browser tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@contextlib.contextmanager
def chromium_context(profile: Path) -> Iterator[BrowserContext]:
    """A persistent desktop-sized (1400x1000) context; pages open in it share the camera grant."""
    assert Path(CHROMIUM).is_file(), "Debian's chromium is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                  *FAKE_CAMERA],
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()
