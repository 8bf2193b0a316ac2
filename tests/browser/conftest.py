"""Browser test harness: the planner page in Debian's Chromium, driven by Playwright.

- ``live_api``: a real uvicorn server of the app on a free port, against a World database of
  the browser tests' own, seeded with an installed base (``page_data``) and tokens per role.
- ``browser``: Chromium from ``/usr/bin/chromium`` (``apt-get install chromium``; Playwright is
  pinned in pyproject to the release built for that Chromium), headless, launched with a fresh
  temporary profile; one per session.
- ``page``: a fresh browser context (no cookies, no localStorage) and page per test. It records
  every console error, uncaught exception, failed request and HTTP error response; the test
  fails on any that it did not expect (``browser_log.allow(...)``). A failing test leaves a
  screenshot in ``tests/browser/screenshots/`` (gitignored).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from ops.world import World
from tests.browser import data
from tests.live import serve

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync",
        "--disable-dev-shm-usage"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(scope="session")
def page_world():
    """A database of the browser tests' own: the queue shows exactly the seeded orders."""
    with World(broker=False) as w:
        yield w


@pytest.fixture(scope="session")
def settings_page(page_world):
    return page_world.settings.model_copy(update={"webhook_dispatch": False})


@pytest.fixture(scope="session")
def page_data(settings_page):
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        return data.seed_page_data(conn)


@pytest.fixture(scope="session")
def live_api(settings_page, page_data):
    """Base URL of the API served by uvicorn in a thread of this process."""
    with serve(settings_page) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `make test` installs it (apt-get install "
                    "chromium); or run `apt-get install -y chromium`")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a shared 2-core machine: allow for slow moments
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # screenshots describe the last run only
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@dataclass
class BrowserLog:
    """What went wrong in the page; ``allow`` a pattern for errors a test provokes on purpose."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)  # every request and console line, for failures

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def add(self, text: str) -> None:
        self.problems.append(text)

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]


@pytest.fixture
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def page(request, browser, live_api, browser_log):
    context = browser.new_context(base_url=live_api, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    pg.on("console", lambda m: browser_log.trace.append(f"console {m.type}: {m.text}"))
    pg.on("request", lambda r: browser_log.trace.append(f"{r.method} {r.url} {r.post_data or ''}"))
    pg.on("console", lambda m: m.type == "error" and browser_log.add(f"console: {m.text}"))
    pg.on("pageerror", lambda e: browser_log.add(f"exception: {e}"))
    pg.on("requestfailed", lambda r: browser_log.add(f"request failed: {r.url} {r.failure}"))
    pg.on("response", lambda r: r.status >= 400 and browser_log.add(f"HTTP {r.status}: {r.url}"))
    yield pg
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = browser_log.unexpected()
    if failed or problems:
        SCREENSHOTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        (SCREENSHOTS / f"{name}.log").write_text("\n".join(browser_log.trace) + "\n")
    context.close()
    if problems:
        pytest.fail("the page logged errors:\n" + "\n".join(problems), pytrace=False)
