"""Browser tests' tools: Debian's chromium under Playwright, screenshots kept for CI.

Screenshots go to $PANOPTES_ARTIFACTS/console/JOURNEY (default: the test's tmp dir); CI keeps
that folder. Playwright cannot download its own browsers here: it drives
/usr/bin/chromium (`apt-get install chromium`, scripts/test.sh does it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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
    """$PANOPTES_ARTIFACTS/console/JOURNEY (DEFAULT/console/JOURNEY without the variable),
    emptied of an earlier run's screenshots."""
    root = Path(os.environ.get("PANOPTES_ARTIFACTS") or default)
    out = root / "console" / journey
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):  # a previous run's pages: only this run's are kept
        old.unlink()
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

    def failed(self) -> None:
        """The page as it was when the test failed (best effort: the page may be gone)."""
        try:
            self.page.screenshot(path=str(self.folder / "failed.png"), full_page=True)
        except Exception as exc:  # a closed page or browser: the failure itself matters more
            print(f"no screenshot of the failure: {exc}")
