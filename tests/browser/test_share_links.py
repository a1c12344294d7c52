"""Share links in headless Chromium: a 1D picture and the Explorer's view options reopen as they were."""

from __future__ import annotations

import re

from tests.conftest import exception_boxes, open_page, wait_idle

# every trace's x and y of the first chart (plotly's base64 arrays read as numbers): the curves,
# the interval, the probe, the histogram; null until the chart shows the last figure it was sent
CURVES_JS = """() => {
  const g = document.querySelector('.js-plotly-plot');
  if (!g || !g.data || g.__flowvizDrawn !== g.__flowvizFigure) return null;
  const numbers = (x) => {
    if (!x || x.bdata === undefined) return Array.from(x || []);
    const raw = atob(x.bdata), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const typed = { f4: Float32Array, f8: Float64Array, i4: Int32Array, u1: Uint8Array }[x.dtype];
    return Array.from(new typed(bytes.buffer));
  };
  return JSON.stringify(g.data.map(t => [t.name || '', numbers(t.x), numbers(t.y)]));
}"""


def curves(page) -> str:
    return page.wait_for_function(CURVES_JS).json_value()


PX_IS_TWO = """() => Array.from(document.querySelectorAll('[data-testid="stMetric"]')).some(
  m => m.innerText.startsWith('p_X(x)') && m.querySelector('[data-testid="stMetricValue"]').innerText === '2')"""


def metrics(page) -> dict[str, str]:
    """Every st.metric on the page: label -> the value as shown."""
    boxes = page.locator('[data-testid="stMetric"]')
    return {
        box.locator('[data-testid="stMetricLabel"]').inner_text(): box.locator(
            '[data-testid="stMetricValue"]'
        ).inner_text()
        for box in boxes.all()
    }


def shared_link(page) -> str:
    code = page.locator('[data-testid="stCode"]', has_text="?spec=").last
    return re.sub(r"\s+", "", code.inner_text())


def press(page, label: str, key: str, times: int) -> None:
    slider = page.get_by_role("slider", name=label)
    slider.focus()
    for _ in range(times):
        slider.press(key)
    wait_idle(page)
    page.wait_for_timeout(300)
    wait_idle(page)


def test_a_1d_share_link_reopens_the_same_numbers_and_curves(page, browser, app_url):
    open_page(page, app_url + "/1d")
    page.get_by_role("button", name="Compressing (|f'| < 1: density rises)").click()
    page.wait_for_function(PX_IS_TWO)
    wait_idle(page)
    press(page, "Probe point x", "ArrowRight", 4)
    press(page, "Interval width dz", "ArrowLeft", 3)
    shown = metrics(page)
    assert shown["p_X(x)"] == "2"  # x = 0.5 z + 0.25 on U[0, 1]: p_X = 1 / 0.5
    probe_x = (float(shown["z = f⁻¹(x)"]) * 0.5) + 0.25
    assert probe_x > 0.65  # the probe moved right of the preset's x = 0.65
    assert float(shown["Probability in [z, z+dz] (base CDF)"]) < 0.25  # the interval narrowed
    link = shared_link(page)
    assert link.startswith(app_url + "/1d?spec=")
    shown_curves = curves(page)
    assert len(shown_curves) > 10_000  # numbers, not empty arrays
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        open_page(fresh, link)
        assert exception_boxes(fresh) == []
        assert metrics(fresh) == shown
        assert curves(fresh) == shown_curves
        assert shared_link(fresh) == link
    finally:
        fresh.context.close()


def test_the_explorers_view_options_reopen_from_its_link(page, browser, app_url):
    open_page(page, app_url + "/explore")
    page.locator("label", has=page.get_by_role("switch", name="Log scale")).click()
    wait_idle(page)
    page.get_by_role("button", name="Change-of-variables terms").click()
    page.get_by_text("The change of variables, term by term").wait_for()
    wait_idle(page)
    assert re.search(r"[?&]log=1(&|$)", page.url) and "views=terms" in page.url
    page.get_by_role("button", name="Share", exact=True).click()
    wait_idle(page)
    link = shared_link(page)
    assert "&log=1" in link and "&views=terms" in link
    fresh = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        open_page(fresh, link)
        assert exception_boxes(fresh) == []
        assert fresh.get_by_role("switch", name="Log scale").is_checked()
        fresh.get_by_text("The change of variables, term by term").wait_for()
        assert (
            fresh.get_by_role("button", name="Change-of-variables terms").get_attribute("aria-pressed")
            == "true"
        )
        assert fresh.get_by_role("button", name="Layer by layer").get_attribute("aria-pressed") == "false"
    finally:
        fresh.context.close()
