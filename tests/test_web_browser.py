"""End to end: `lenet5 serve` in its own process, headless Chromium draws digits with the mouse.

Checks that the page shows the right digit for each drawing, that an uploaded file works, that
the layout fits a phone, and that the page never requested anything but the local server.
Writes the README screenshot to docs/images/web.png when LENET5_WRITE_SCREENSHOT=1.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from lenet5.data.mnist import load_split  # noqa: E402
from lenet5.files import atomic_write_bytes  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                       reason="needs Debian's chromium (.ci/run installs it)"),
]
# No traffic of the browser's own: a request that leaves localhost must come from the page.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
                 "--disable-extensions", "--metrics-recording-only", "--no-default-browser-check"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "web.png"
DESKTOP = {"width": 1100, "height": 980}
PHONE = {"width": 390, "height": 844}


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, steps: int = 16):
    """Points on an ellipse, angles in degrees (0 = right, 90 = down), in pad fractions."""
    return [(cx + rx * math.cos(math.radians(start + (stop - start) * i / steps)),
             cy + ry * math.sin(math.radians(start + (stop - start) * i / steps))) for i in range(steps + 1)]


# Mouse strokes shaped like handwriting, as fractions of the pad (x right, y down).
STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.2, 0.32, -90, 275, 24)],
    1: [[(0.52, 0.15), (0.48, 0.85)]],
    2: [_arc(0.5, 0.33, 0.2, 0.17, 200, 380, 12) + [(0.28, 0.82), (0.75, 0.82)]],
    3: [_arc(0.48, 0.32, 0.19, 0.15, 200, 450, 14) + _arc(0.48, 0.66, 0.21, 0.18, -90, 160, 14)],
    4: [[(0.3, 0.15), (0.27, 0.55), (0.75, 0.55)], [(0.64, 0.15), (0.62, 0.88)]],
    7: [[(0.27, 0.2), (0.73, 0.2), (0.42, 0.86)]],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lenet5 serve` as a user starts it, in a separate process on a free loopback port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "lenet5", "serve", "--weights", str(trained_run),
                                    "--port", str(port)], stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"lenet5 serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"lenet5 serve did not answer within {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _stays_local(url: str, server_host: str) -> bool:
    """data: URLs go nowhere; blob: URLs are in-memory objects of the page's own origin."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    if parts.scheme == "blob":
        parts = urlsplit(url[len("blob:"):])
    return parts.netloc == server_host


class Session:
    """A page in its own browser context that records every request it makes."""

    def __init__(self, browser, server: str, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.goto(server + "/")
        playwright_api.expect(self.page.locator("#model-info")).to_contain_text("parameters")

    def draw(self, digit: int) -> None:
        self.page.click("#clear")
        box = self.page.locator("#pad").bounding_box()
        for stroke in STROKES[digit]:
            points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
            self.page.mouse.move(*points[0])
            self.page.mouse.down()
            for point in points[1:]:
                self.page.mouse.move(*point, steps=4)
            self.page.mouse.up()

    def shown_digit(self) -> str:
        """The digit on the page once it answers for the drawing as it is now."""
        version = self.page.locator("#pad").get_attribute("data-version")
        playwright_api.expect(self.page.locator("#result")).to_have_attribute("data-version", version, timeout=20_000)
        return self.page.locator("#digit").get_attribute("data-digit")

    def close(self, server: str) -> None:
        self.context.close()
        server_host = urlsplit(server).netloc
        outside = [url for url in self.requests if not _stays_local(url, server_host)]
        assert not outside, f"the page requested something other than {server_host}: {outside}"
        assert not self.errors, self.errors


def test_drawn_digits_are_recognised_and_nothing_leaves_localhost(browser, server: str, tmp_path: Path) -> None:
    session = Session(browser, server, DESKTOP)
    shown = {}
    for digit in STROKES:
        session.draw(digit)
        shown[digit] = session.shown_digit()
    assert shown == {digit: str(digit) for digit in STROKES}
    page = session.page
    bars = page.locator("#bars li")
    assert bars.count() == 10 and "top" in (bars.nth(7).get_attribute("class") or "")
    assert page.locator("#maps img").count() == 6
    assert page.locator("#input").get_attribute("src").startswith("data:image/png;base64,")
    screenshot = page.screenshot(full_page=True, animations="disabled")
    target = SCREENSHOT if os.environ.get("LENET5_WRITE_SCREENSHOT") == "1" else tmp_path / "web.png"
    atomic_write_bytes(target, screenshot)
    page.click("#clear")
    assert page.locator("#digit").get_attribute("data-digit") == ""
    predicts = [url for url in session.requests if url.endswith("/api/predict")]
    assert len(predicts) >= len(STROKES)  # live predictions while drawing, at least one per digit
    session.close(server)


def test_uploaded_image_is_recognised(browser, server: str) -> None:
    images, labels = load_split("test")
    buffer = io.BytesIO()
    Image.fromarray(255 - images[0].numpy()).resize((200, 200)).save(buffer, format="JPEG")  # dark on light
    session = Session(browser, server, DESKTOP)
    session.page.set_input_files("#upload", files=[{"name": "digit.jpg", "mimeType": "image/jpeg",
                                                    "buffer": buffer.getvalue()}])
    assert session.shown_digit() == str(int(labels[0]))
    playwright_api.expect(session.page.locator("#status")).to_contain_text("Uploaded image")
    session.close(server)


def test_page_fits_a_phone_and_still_works(browser, server: str) -> None:
    session = Session(browser, server, PHONE)
    page = session.page
    session.draw(1)
    assert session.shown_digit() == "1"
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"page is {scroll_width} px wide on a {PHONE['width']} px screen"
    pad = page.locator("#pad").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= PHONE["width"] and pad["width"] >= 250
    font_size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#bars .value')).fontSize)")
    assert font_size >= 12  # readable without zooming
    # One screen, unscrolled: the pad to draw on, the digit, its confidence and all ten bars.
    assert page.evaluate("window.scrollY") == 0
    for selector in ("#pad", "#digit", "#confidence", "#bars li:first-child", "#bars li:last-child"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], (selector, box)
    assert page.locator("#confidence").inner_text().endswith("sure")
    session.close(server)


def test_empty_canvas_asks_for_a_digit_without_calling_the_api(browser, server: str) -> None:
    session = Session(browser, server, DESKTOP)
    session.page.click("#clear")
    playwright_api.expect(session.page.locator("#status")).to_contain_text("Draw one digit")
    assert not [url for url in session.requests if url.endswith("/api/predict")]
    session.close(server)
