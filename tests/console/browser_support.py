"""Browser tests' tools: Debian's chromium under Playwright, screenshots kept for CI.

Screenshots go to $PANOPTES_ARTIFACTS/console/JOURNEY (default: the test's tmp dir); CI keeps
that folder. Playwright cannot download its own browsers here: it drives
/usr/bin/chromium (`apt-get install chromium`, scripts/test.sh does it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import pytest

from panoptes.media.mjpeg import MjpegServer

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium() -> Iterator[object]:
    """A headless chromium (Playwright browser); skips the test when none is installed."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir(default: Path, journey: str) -> Path:
    """$PANOPTES_ARTIFACTS/console/JOURNEY (DEFAULT/console/JOURNEY without the variable)."""
    root = Path(os.environ.get("PANOPTES_ARTIFACTS") or default)
    out = root / "console" / journey
    out.mkdir(parents=True, exist_ok=True)
    return out


#: What a screen reader needs of every page: a language, one h1, names for every
#: control and picture. Returns the offenders (empty when the page is fine).
_A11Y_CHECK = """() => {
  const bad = [];
  if (!document.documentElement.lang) bad.push("html has no lang");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) bad.push(`${h1} h1 headings`);
  if (!document.querySelector("main")) bad.push("no main landmark");
  const named = (el) => (el.labels && el.labels.length) || el.getAttribute("aria-label")
    || el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent.trim());
  document.querySelectorAll("input:not([type=hidden]), select, textarea, button").forEach((el) => {
    if (!named(el)) bad.push(`unnamed ${el.tagName.toLowerCase()} ${el.name || el.id}`);
  });
  document.querySelectorAll("img").forEach((img) => {
    if (!img.getAttribute("alt")) bad.push(`image without alt: ${img.src}`);
  });
  document.querySelectorAll("a").forEach((a) => {
    if (!a.textContent.trim() && !a.getAttribute("aria-label")) bad.push(`empty link ${a.href}`);
  });
  return bad;
}"""


class Screens:
    """Numbered full-page screenshots of each page the journey visits.

    Each page shot is also checked for what a screen reader needs (`_A11Y_CHECK`).
    """

    def __init__(self, page, folder: Path) -> None:  # type: ignore[no-untyped-def]
        self.page, self.folder, self.count = page, folder, 0

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        problems = self.page.evaluate(_A11Y_CHECK)
        assert problems == [], f"{name} ({self.page.url}): {problems}"
        return path


class AnnotatedOutput:
    """What a device's output node serves: the camera's frames, annotated, as MJPEG.

    Reads the RTSP camera with PyAV, draws a frame counter on each picture (as an
    application draws its labels) and publishes it through the runtime's MjpegServer.
    """

    def __init__(self, camera_url: str) -> None:
        self.server = MjpegServer()
        self.url = self.server.url + "stream.mjpg"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(camera_url,), daemon=True)
        self._thread.start()

    def _run(self, camera_url: str) -> None:
        from panoptes.media.source import open_container

        n = 0
        while not self._stop.is_set():
            try:
                with open_container(camera_url) as container:
                    for frame in container.decode(container.streams.video[0]):
                        if self._stop.is_set():
                            return
                        image = frame.to_ndarray(format="bgr24")
                        n += 1
                        cv2.putText(image, f"frame {n}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX,
                                    0.8, (255, 255, 255), 2)  # fmt: skip
                        self.server.publish(image)
            except Exception:  # the camera restarting: try again, as a source does
                self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.server.close()
