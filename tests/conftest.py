"""Shared fixtures: a live app server and headless Chromium for the browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.support import CHROMIUM_FLAGS, IDLE, chromium_path, start_app, stop_app
from bench.support import wait_idle as wait_idle  # re-exported for the tests

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["CHROMIUM_FLAGS", "IDLE", "ROOT", "exception_boxes", "open_page", "wait_idle"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: a second intra-op thread only spins on a shared machine (and slows steps a lot)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def app_url():
    proc, url = start_app()
    yield url
    stop_app(proc)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def open_page(page, url: str) -> None:
    """Go to a page and wait until its script has run to the end once."""
    page.goto(url)
    # The app reports "not running" before its first run starts: wait for content, then idle.
    page.wait_for_selector('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]')
    wait_idle(page)
    page.wait_for_timeout(300)
    wait_idle(page)
    # Every page ends with its "Next idea" link: once it is there, the whole page has been drawn
    # (an idle flag alone can be read between an interrupted run and its rerun on a loaded machine).
    page.locator('[data-testid="stPageLink"]', has_text="Next idea").first.wait_for()
    wait_idle(page)


def exception_boxes(page) -> list[str]:
    """The text of every Streamlit exception box on the page (should be none)."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def pytest_collection_modifyitems(config, items):
    """Everything under tests/browser/ is a browser test."""
    for item in items:
        if "browser" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.browser)
