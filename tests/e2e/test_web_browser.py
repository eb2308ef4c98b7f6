"""The status page in a real browser (Playwright driving Debian's Chromium) while a real daemon works."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.daemon import DaemonProcess, make_png, wait_for, write_config
from support.web import WebProcess

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")

HOSTILE = "<img src=x onerror=alert(1)>.png"
TOKEN = "correct-horse-battery-staple-42"
# Debian's packages; `playwright install` cannot download its own browser in CI (.ci/run installs one).
BROWSERS = ("chromium-headless-shell", "chromium")


def _wait_js(page: playwright_api.Page, expression: str, what: str, timeout: float = 30.0) -> None:
    # Not page.wait_for_function: it polls through eval(), which the page's CSP rightly forbids.
    wait_for(lambda: page.evaluate(expression), timeout, what)


def _open_page(browser: playwright_api.Browser, url: str) -> tuple[playwright_api.Page, list[str], list[str]]:
    """The page, the dialogs it opened (an injected alert() would land here) and its console errors."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    return page, dialogs, problems


def _browser_path() -> str:
    for name in BROWSERS:
        if (path := shutil.which(name)) is not None:
            return path
    pytest.skip(f"no Chromium to drive ({' or '.join(BROWSERS)}; apt-get install chromium-headless-shell)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _browser_path()
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable)
        yield launched
        launched.close()


def test_the_dashboard_follows_the_daemon(
    browser: playwright_api.Browser, tmp_path: Path, cache: Path, reap_daemons: None
) -> None:
    """Jobs appear in flight and move to done with loading thumbnails; an error shows its reason; retry
    (actions on, CSRF and the token) sends the file back through the inbox; the page stays within its CSP."""
    (tmp_path / "token").write_text(TOKEN)
    os.chmod(tmp_path / "token", 0o600)
    config = write_config(
        tmp_path,
        cache,
        watch={"settle_seconds": 0.3},
        web={"listen": "127.0.0.1:0", "actions": True, "token_file": "token"},
    )
    # The slow file's tiles take 1 s each (test fault injection), so the page sees its progress.
    daemon = DaemonProcess(config, env={"SRD_TEST_FAULT": "slow_tiles:slow.png"}).wait_ready()
    web = WebProcess(config).wait_listening()
    page, dialogs, problems = _open_page(browser, web.url + "/")
    screenshots = Path(os.environ.get("SRD_TEST_SCREENSHOTS", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    page.wait_for_selector("#state.running")

    make_png(tmp_path / "inbox" / "slow.png", (120, 96), seed=3)
    in_flight = page.locator("#in-flight .job", has_text="slow.png")
    in_flight.filter(has_text="left").wait_for(timeout=30_000)  # progress, then an ETA
    assert re.search(r"\d+% · \d+ / \d+ tiles · running .* · about .* left", in_flight.inner_text())
    page.screenshot(path=str(screenshots / "web-in-flight.png"))
    make_png(tmp_path / "inbox" / "art" / "good.png", (48, 32), seed=4)
    (tmp_path / "inbox" / HOSTILE).write_text("plain text, not an image")

    page.locator("#recent .card.done", has_text="slow.png").wait_for(timeout=40_000)
    page.locator("#recent .card.done", has_text="art/good.png").wait_for(timeout=30_000)
    _wait_js(page, "!document.querySelector('#in-flight .job')", "no job in flight")
    loaded = "[...document.querySelectorAll('#recent img')].every(i => i.complete && i.naturalWidth > 0)"
    _wait_js(page, loaded, "the thumbnails to load")
    natural = page.eval_on_selector_all(
        "#recent .card.done", "cards => cards.map(c => [c.querySelector('.name').textContent,"
        " [...c.querySelectorAll('img')].map(i => [i.naturalWidth, i.naturalHeight])])",
    )  # fmt: skip
    assert dict(natural) == {"slow.png": [[120, 96], [240, 192]], "art/good.png": [[48, 32], [96, 64]]}
    assert page.inner_text("#n-done") == "2"

    row = page.locator("#errors tbody tr", has_text="not an image")
    row.wait_for(timeout=30_000)
    assert row.locator("td.name").inner_text() == HOSTILE  # shown as text
    assert "text, not an image" in row.locator("td.reason").inner_text()
    assert page.locator('img[src="x"]').count() == 0 and dialogs == []
    assert page.inner_text("#n-failed") == "1"

    page.locator("#recent .card.done", has_text="slow.png").locator(".pair").click()
    page.wait_for_selector("#viewer:not([hidden])")
    page.locator("#cmp-slider").fill("30")
    page.screenshot(path=str(screenshots / "web-compare.png"))
    page.keyboard.press("Escape")
    page.screenshot(path=str(screenshots / "web-dashboard.png"), full_page=True)

    page.fill("#token", TOKEN)
    row.locator("button.retry").click()
    page.locator("#errors .retried", has_text="back in the inbox").wait_for(timeout=10_000)
    # Through the inbox again: the daemon's second verdict on the same file.
    failures = lambda: [j for j in daemon.job_lines() if j["outcome"] == "error" and j["input"] == HOSTILE]  # noqa: E731
    wait_for(lambda: len(failures()) == 2, 30, "the retried file to be processed again")
    _wait_js(page, "document.getElementById('n-failed').textContent === '2'", "two failures counted")
    assert dialogs == [] and problems == [], problems
    page.close()
    web.stop()
    assert daemon.stop() == 0
