"""The 1D page in headless Chromium: presets, a slider moved by keyboard, the numbers on screen."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import exception_boxes, open_page, wait_idle

PRESETS = [
    ("Volume preserving (|f'| = 1)", 1.0),
    ("Compressing (|f'| < 1: density rises)", 2.0),
    ("Expanding (|f'| > 1: density falls)", 0.5),
]


def metric(page, label: str) -> float:
    label_box = page.locator(
        '[data-testid="stMetricLabel"]', has_text=re.compile("^" + re.escape(label) + "$")
    )
    box = page.locator('[data-testid="stMetric"]', has=label_box)
    return float(box.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def wait_for_metric(page, label: str, done, timeout: float = 20.0) -> float:
    """Poll a metric until ``done(value)``; then wait for the script to be idle."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = metric(page, label)
            if done(value):
                wait_idle(page)
                return value
        except (ValueError, Exception) as error:  # not rendered yet
            if time.monotonic() > deadline:
                raise AssertionError(f"metric {label!r} never appeared") from error
        if time.monotonic() > deadline:
            raise AssertionError(f"metric {label!r} stayed at {value}")
        page.wait_for_timeout(50)


def check_numbers(page) -> None:
    assert exception_boxes(page) == []
    mass_z = metric(page, "Probability in [z, z+dz] (base CDF)")
    mass_x = metric(page, "Probability in [x, x+dx] (quadrature of p_X)")
    assert abs(mass_z - mass_x) <= 1e-6
    inverse = metric(page, "d f⁻¹/dx (autograd of the inverse)")
    reciprocal = metric(page, "1 / f′(z) (autograd of the forward)")
    assert abs(inverse - reciprocal) <= 1e-8 * max(1.0, abs(inverse))


def test_presets_show_the_classic_densities(page, app_url):
    open_page(page, app_url + "/1d")
    assert page.locator("h1", has_text="Change of variables on a line").count() == 1
    check_numbers(page)
    for label, density in PRESETS:
        page.get_by_role("button", name=label).click()
        wait_for_metric(page, "p_X(x)", lambda v, d=density: v == pytest.approx(d, rel=1e-9))
        check_numbers(page)
        assert metric(page, "p_Z(z)") == 1.0
        assert metric(page, "Probability in [z, z+dz] (base CDF)") == pytest.approx(0.25, abs=1e-9)


def test_keyboard_moves_the_probe_and_the_interval(page, app_url):
    open_page(page, app_url + "/1d")
    page.get_by_role("button", name=PRESETS[1][0]).click()  # compressing: x = 0.5 z + 0.25
    wait_for_metric(page, "p_X(x)", lambda v: v == pytest.approx(2.0))
    before = metric(page, "z = f⁻¹(x)")
    probe = page.get_by_role("slider", name="Probe point x")
    probe.focus()
    probe.press("ArrowRight")
    after = wait_for_metric(page, "z = f⁻¹(x)", lambda v: v != before)
    assert after > before
    check_numbers(page)
    width = page.get_by_role("slider", name="Interval width dz")
    old_mass = metric(page, "Probability in [z, z+dz] (base CDF)")
    width.focus()
    for _ in range(3):
        width.press("ArrowRight")
    wait_for_metric(page, "Probability in [z, z+dz] (base CDF)", lambda v: v > old_mass)
    check_numbers(page)
