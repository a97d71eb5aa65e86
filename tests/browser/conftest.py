from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.browser.harness import CHROMIUM_ARGS, PageServer, chromium_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile: empty storage, no cache."""
    created = browser.new_context()
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def console(page: Page) -> list[str]:
    """Everything the page's frames wrote to the console, and every uncaught error, as text."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        seen.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"pageerror: {error}"))
    return seen


@pytest.fixture
def pages() -> Iterator[PageServer]:
    server = PageServer()
    server.start()
    yield server
    server.stop()
