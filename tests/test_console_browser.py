"""The web console in a real browser: Debian's chromium, driven by selenium through chromedriver,
against the application `serve` builds, on a free local port, over a seeded SQLite database.

Sign-in (wrong password refused, right one accepted), every page, every action (pause, resume,
poll now, a one-click Review label), a CSRF refusal and the sign-in limit. Screenshots of every page at desktop (1280×900)
and phone (390×844) width go to tests/artifacts/console/ (git-ignored; CI keeps them as artefacts).

Selenium's calls block, so the server runs in its own thread with its own event loop; the test
reads the database through that loop (:meth:`ConsoleServer.call`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.console.auth import SignInLimiter
from bot.console.site import CONSOLE
from bot.store import models as m
from bot.store.repo import Store
from bot.web import WebServer
from tests.support import newsdb
from tests.support.console_env import PASSWORD, Seeded, console_app, console_settings, seed

pytestmark = pytest.mark.browser

T = TypeVar("T")
ARTIFACTS = Path(os.environ.get("FW_TEST_ARTIFACTS", Path(__file__).parent / "artifacts")) / "console"
DESKTOP = (1280, 900)
PHONE = (390, 844)


class ConsoleServer:
    """The console app on 127.0.0.1:<free port>, served from a thread of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-server", daemon=True)
        self.thread.start()
        self.store: Store | None = None
        self.server: WebServer | None = None
        self.seeded: Seeded | None = None

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout=60)

    def start(self) -> None:
        async def start() -> None:
            settings = console_settings(self.tmp_path)
            self.store = await newsdb.open_store(settings.database_url)
            self.seeded = await seed(self.store)
            self.server = WebServer(console_app(settings, self.store), port=0, host="127.0.0.1")
            await self.server.start()

        self.call(start)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.bound_port}"

    def reset_limiter(self) -> None:
        assert self.server is not None
        self.server.app[CONSOLE].limiter = SignInLimiter()

    def source(self, source_id: int) -> m.Source:
        async def read() -> m.Source:
            assert self.store is not None
            async with self.store.sessions() as session:
                row = await session.get(m.Source, source_id)
                assert row is not None
                return row

        return self.call(read)

    async def review_label(self, story_id: int) -> tuple[str, ...] | None:
        """The console label stored for a story (Review), read through the store."""
        from bot.store.review import ReviewStore

        assert self.store is not None
        item = await ReviewStore(self.store.engine).item(story_id)
        return None if item is None else item.label

    def stop(self) -> None:
        async def stop() -> None:
            if self.server is not None:
                await self.server.stop()
            if self.store is not None:
                await self.store.engine.dispose()

        try:
            self.call(stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    running = ConsoleServer(tmp_path_factory.mktemp("console-browser"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(chromium: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # Without these, chromium on a machine with no outside network hangs on its own connections.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, server: ConsoleServer) -> Iterator[Any]:
    """The browser, signed out, at desktop width, with a fresh sign-in limit."""
    server.reset_limiter()
    browser.get(server.url + "/healthz")  # cookies can only be cleared on the site's own origin
    browser.delete_all_cookies()
    width(browser, DESKTOP)
    yield browser


def width(browser: Any, size: tuple[int, int]) -> None:
    """Emulate a screen of this size (a phone: mobile viewport, so the viewport meta applies)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )


def screenshot(browser: Any, name: str) -> list[Path]:
    """The whole page at desktop and at phone width, as PNG files under ARTIFACTS."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        width(browser, size)
        metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
        height = max(size[1], int(metrics["cssContentSize"]["height"]))
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size[0], "height": min(height, 6000), "scale": 1},
            },
        )
        path = ARTIFACTS / f"{name}-{label}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        saved.append(path)
    width(browser, DESKTOP)
    return saved


def sign_in(browser: Any, server: ConsoleServer, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/sign-in")
    field = browser.find_element(By.ID, "password")
    field.clear()
    field.send_keys(password)
    click_and_wait(browser, "main form button[type=submit]")


def click_and_wait(browser: Any, selector: str, by: str = "css selector") -> None:
    """Click what loads a new page, and wait until it has (a click returns before that)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element("tag name", "html")
    browser.find_element(by, selector).click()

    def loaded(driver: Any) -> bool:
        try:
            old.tag_name  # noqa: B018 (touching it raises once the page it belonged to is gone)
        except WebDriverException:  # stale, or chromium's "node does not belong to the document"
            return bool(driver.execute_script("return document.readyState") == "complete")
        return False

    WebDriverWait(browser, 15).until(loaded)


def text(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "body").text)


# ---------------------------------------------------------------------------------------- tests
def test_sign_in_refuses_a_wrong_password_and_accepts_the_right_one(page: Any, server: ConsoleServer) -> None:
    page.get(server.url + "/sources")
    assert page.current_url.startswith(server.url + "/sign-in?next=")
    assert "Sign in" in text(page)
    screenshot(page, "01-sign-in")
    sign_in(page, server, "not the password")
    assert "Wrong password." in text(page) and "/sign-in" in page.current_url
    sign_in(page, server)
    assert page.current_url == server.url + "/sources"
    assert "Dead Feed" in text(page)
    cookie = page.get_cookie("fw_console")
    assert cookie is not None and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"


def test_every_page_renders_at_desktop_and_phone_width(page: Any, server: ConsoleServer) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert server.seeded is not None
    sign_in(page, server)
    page.get(server.url + "/sources")
    body = text(page)
    for word in ("healthy", "backing off", "broken", "paused", "new", "HTTP 503 Service Unavailable"):
        assert word in body, word
    shots = screenshot(page, "02-sources")
    assert all(path.stat().st_size > 10_000 for path in shots)

    page.get(server.url + "/stories")
    Select(page.find_element(By.NAME, "topic")).select_by_value("distillation")
    click_and_wait(page, "form.filter button")
    body = text(page)
    assert "DeepSeek accused of distilling a frontier model" in body and "Routine AI policy" not in body
    page.find_element(By.CSS_SELECTOR, f"#story-{server.seeded.lead_story} details summary").click()
    assert "discord #ai-news" in text(page)
    screenshot(page, "03-stories-distillation")
    page.get(server.url + "/stories?q=export+controls&official=yes")
    assert "Commerce tightens export controls" in text(page)
    page.get(server.url + "/stories")
    assert "page 1 of 3" in text(page)
    screenshot(page, "04-stories-all")

    page.get(server.url + "/channels")
    body = text(page)
    assert "discord #ai-news" in body and "slack #policy" in body and "unreachable" in body
    screenshot(page, "05-channels")
    click_and_wait(page, "discord #ai-news", By.LINK_TEXT)
    assert page.current_url.endswith(f"/channels/{server.seeded.discord}")
    assert "Commerce tightens export controls" in text(page)
    page.find_element(By.CSS_SELECTOR, ".preview details summary").click()
    assert '"embeds"' in text(page)
    screenshot(page, "06-channel-preview")


def test_pause_resume_and_poll_now_buttons(page: Any, server: ConsoleServer) -> None:
    from selenium.webdriver.common.by import By

    seeded = server.seeded
    assert seeded is not None
    sign_in(page, server)
    page.get(server.url + "/sources")
    click_and_wait(page, f"#source-{seeded.healthy} button[value=pause]")
    assert "Paused Reuters" in text(page)
    assert server.source(seeded.healthy).paused_by == "the web console"
    row = page.find_element(By.ID, f"source-{seeded.healthy}")
    assert row.get_attribute("data-state") == "paused"
    screenshot(page, "07-sources-after-pause")
    click_and_wait(page, f"#source-{seeded.healthy} button[value=resume]")
    assert "Resumed Reuters: due for a poll now." in text(page)
    assert server.source(seeded.healthy).paused_at is None

    assert server.source(seeded.broken).next_poll_at > datetime.now(UTC) + timedelta(hours=1)
    click_and_wait(page, f"#source-{seeded.broken} button[value=poll-now]")
    assert "Dead Feed is due now" in text(page)
    assert server.source(seeded.broken).next_poll_at <= datetime.now(UTC)


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(page: Any, server: ConsoleServer) -> None:

    seeded = server.seeded
    assert seeded is not None
    sign_in(page, server)
    for tamper in (
        "f.querySelector('input[name=csrf_token]').value = 'forged';",
        "f.querySelector('input[name=csrf_token]').remove();",
    ):
        page.get(server.url + "/sources")
        page.execute_script(
            f"const f = document.querySelector('#source-{seeded.fresh} form[action$=\"/pause\"]'); {tamper}"
        )
        click_and_wait(page, f"#source-{seeded.fresh} button[value=pause]")
        body = text(page)
        assert "Form refused" in body and "HTTP 403" in body
        assert server.source(seeded.fresh).paused_at is None
    screenshot(page, "08-csrf-refused")


def test_sign_in_is_limited_after_five_wrong_passwords(page: Any, server: ConsoleServer) -> None:
    for _ in range(5):
        sign_in(page, server, "guess")
        assert "Wrong password." in text(page)
    sign_in(page, server)  # the right password, but too late
    body = text(page)
    assert "Too many attempts" in body and "HTTP 429" in body
    screenshot(page, "09-sign-in-limited")
    page.get(server.url + "/sources")
    assert "/sign-in" in page.current_url


def test_review_labels_a_story_with_one_click(page: Any, server: ConsoleServer) -> None:
    from selenium.webdriver.common.by import By

    seeded = server.seeded
    assert seeded is not None
    sign_in(page, server)
    click_and_wait(page, "Review", By.LINK_TEXT)
    assert page.current_url == server.url + "/review"
    body = text(page)
    assert "frontierwatch train --feedback" in body
    assert "Model weights posted to a torrent site" in body and "Chatbot wins a chess tournament" in body
    assert "reader-7" in body and "not relevant" in body
    screenshot(page, "10-review-queues")
    click_and_wait(page, f"#near-{seeded.closest_story} button[name=label][value=release]")
    assert page.current_url == server.url + "/review"
    assert "Labelled “Model weights posted to a torrent site”: release." in text(page)
    assert not page.find_elements(By.ID, f"near-{seeded.closest_story}")  # it left the queue
    assert page.find_elements(By.ID, f"near-{seeded.lead_story}")  # the others stay
    labels = server.call(lambda: server.review_label(seeded.closest_story))
    assert labels == ("release",)
    screenshot(page, "10-review-after-label")


def test_trends_shows_the_chart_and_its_tables(page: Any, server: ConsoleServer) -> None:
    from selenium.webdriver.common.by import By

    sign_in(page, server)
    click_and_wait(page, "Trends", By.LINK_TEXT)
    assert page.current_url == server.url + "/trends"
    chart = page.find_element(By.ID, "trend-chart")
    loaded = page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart)
    assert loaded == 1000  # the PNG route answered the signed-in browser with a real image
    assert chart.get_attribute("alt").startswith("Events per topic per day, last 90 days")
    body = text(page)
    assert "Top outlets and names per topic" in body and "Policy Digest" in body
    outlets = page.find_elements(By.CSS_SELECTOR, "#topic-natsec table.outlets tbody tr")
    assert outlets and all(row.text.strip() for row in outlets)
    assert len(page.find_elements(By.CSS_SELECTOR, "table.daily tbody tr")) == 90
    screenshot(page, "11-trends-90-days")
    click_and_wait(page, "last 30 days", By.LINK_TEXT)
    chart = page.find_element(By.ID, "trend-chart")
    assert page.execute_script("return arguments[0].naturalWidth", chart) == 1000
    page.find_element(By.CSS_SELECTOR, "details.data summary").click()
    assert len(page.find_elements(By.CSS_SELECTOR, "table.daily tbody tr")) == 30
    screenshot(page, "11-trends-30-days-numbers")
