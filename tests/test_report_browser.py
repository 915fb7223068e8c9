"""The HTML report of the sample project in a real browser: headless Chromium via Playwright.

The page must render with no console error, load nothing but its own file,
and run its table-sorting script under its Content-Security-Policy. A
screenshot is saved to $QUALKIT_TEST_ARTIFACTS (or the test's temporary
folder) for a person to look at.

Without Chromium or Playwright the tests are skipped, unless
QUALKIT_REQUIRE_BROWSER=1, in which case they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
# Flags that keep Chromium from reaching any service of its own while the
# test runs; --no-sandbox because test containers often run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1200, "height": 1600}


def find_chromium() -> str | None:
    """Return the path of a Chromium executable, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when the environment requires the browser."""
    if os.environ.get("QUALKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and QUALKIT_REQUIRE_BROWSER=1 requires the browser test.")
    pytest.skip(reason)


def artifact_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("QUALKIT_TEST_ARTIFACTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class PageVisit:
    """What the browser reported while it loaded the report."""

    url: str
    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


@pytest.fixture(scope="module")
def visit(sample_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageVisit]:
    executable = find_chromium()
    if executable is None:
        unavailable("no Chromium executable found (looked for " + ", ".join(CHROMIUM_CANDIDATES) + ")")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")

    report = (sample_project.folder / "report" / "report.html").resolve()
    folder = artifact_folder(tmp_path_factory)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            result = PageVisit(report.as_uri(), page)
            page.on("console", lambda message: result.console.append((message.type, message.text)))
            page.on("pageerror", lambda error: result.page_errors.append(str(error)))
            page.on("request", lambda request: result.requests.append(request.url))
            page.goto(result.url, wait_until="load")
            page.wait_for_load_state("networkidle")
            for name, anchor in (("report-top.png", None), ("report-evidence.png", "#target-1")):
                if anchor:
                    page.locator(anchor).scroll_into_view_if_needed()
                path = folder / name
                page.screenshot(path=str(path))
                result.screenshots.append(path)
                print(f"screenshot: {path}")
            yield result
        finally:
            browser.close()


def test_no_console_errors(visit: PageVisit) -> None:
    errors = [text for kind, text in visit.console if kind in ("error", "warning")]

    assert errors == []
    assert visit.page_errors == []


def test_no_request_but_the_file(visit: PageVisit) -> None:
    # data: URIs (the embedded figures) are decoded in the page, not fetched.
    others = [url for url in visit.requests if url != visit.url and not url.startswith("data:")]

    assert visit.requests[0] == visit.url
    assert others == []


def test_screenshots_saved(visit: PageVisit) -> None:
    for path in visit.screenshots:
        assert path.stat().st_size > 10_000, path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_decoded(visit: PageVisit) -> None:
    widths = visit.page.eval_on_selector_all("figure img", "images => images.map(i => i.naturalWidth)")

    assert len(widths) == 2
    assert all(width > 0 for width in widths)


def test_sorting_script_runs(visit: PageVisit) -> None:
    table = visit.page.locator("#negotiability table")
    header = table.locator("thead th").nth(1)

    header.locator("button.sort").click()
    names = table.locator("tbody tr td:nth-child(2)").all_inner_texts()

    assert header.get_attribute("aria-sort") == "ascending"
    assert names == sorted(names, key=str.casefold)


def test_transcript_link_target_exists(visit: PageVisit) -> None:
    href = visit.page.locator("blockquote a[href^='#ctx-']").first.get_attribute("href")

    visit.page.locator(f"blockquote a[href='{href}']").first.click()

    assert visit.page.evaluate("location.hash") == href
    assert visit.page.locator(href).count() == 1
