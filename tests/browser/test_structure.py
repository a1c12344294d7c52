"""The structure page in headless Chromium: the layer table, determinants, a keyboard move, the timing."""

from __future__ import annotations

import math

import pytest

from flowviz.layers import LAYER_CLASSES
from tests.browser.test_one_d import metric, wait_for_metric
from tests.conftest import exception_boxes, open_page, wait_idle


def metrics(page, label: str) -> list[float]:
    values = page.locator('[data-testid="stMetric"]', has_text=label).locator('[data-testid="stMetricValue"]')
    return [float(v.replace(",", "").rstrip("×")) for v in values.all_inner_texts()]


def check_determinants(page) -> None:
    assert exception_boxes(page) == []
    for label in ("det J of the dense autograd Jacobian", "Product of the diagonal"):
        page.locator('[data-testid="stMetric"]', has_text=label).nth(1).wait_for()
    dense = metrics(page, "det J of the dense autograd Jacobian")
    diagonal = metrics(page, "Product of the diagonal")
    assert len(dense) == len(diagonal) == 2
    for d, p in zip(dense, diagonal, strict=True):
        assert d == pytest.approx(p, rel=1e-10)
    assert metrics(page, "Largest |entry| above the diagonal") == [0.0, 0.0]


def test_table_and_determinants(page, app_url):
    open_page(page, app_url + "/structure")
    rows = page.locator("table tbody tr")
    assert rows.count() == len(LAYER_CLASSES)
    table_text = page.locator("table").first.inner_text()
    for name in LAYER_CLASSES:
        assert name in table_text
    assert "✗" not in table_text
    check_determinants(page)
    dimension = page.get_by_role("slider", name="Dimension D of the two layers")
    dimension.focus()
    dimension.press("ArrowRight")
    page.get_by_text("Affine coupling, D = 7").first.wait_for()
    wait_idle(page)
    check_determinants(page)


def test_cost_experiment_shows_progress_and_slopes(page, app_url):
    open_page(page, app_url + "/structure")
    # The run takes about a second: record whether a progress bar was ever on the page.
    page.evaluate(
        """() => {
            window.sawProgress = false;
            new MutationObserver(() => {
                if (document.querySelector('[data-testid="stProgress"]')) window.sawProgress = true;
            }).observe(document.body, {childList: true, subtree: true});
        }"""
    )
    page.get_by_role("button", name="Run the timing").click()
    dense = wait_for_metric(page, "Measured slope, dense LU (slogdet)", math.isfinite, timeout=60)
    triangular = metric(page, "Measured slope, triangular (sum of log-diagonal)")
    assert math.isfinite(triangular)
    assert dense > triangular
    assert exception_boxes(page) == []
    assert page.evaluate("window.sawProgress"), "no progress bar while the timing ran"
    assert page.locator('[data-testid="stProgress"]').count() == 0  # cleared when done
