"""What a first-time user meets in the browser: training controls, the JSON editor, the Share panel,
a phone's width, and a server log free of noise."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from bench.support import start_app, stop_app
from flowviz.spec import decode_token
from tests.conftest import exception_boxes, open_page, wait_idle

NOISE = ("No static folder found", "no static folder found", "missing ScriptRunContext")

# The bounding boxes of chosen SVG elements of every plotly chart, per chart.
BOXES_JS = """(selector) => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g =>
  Array.from(g.querySelectorAll(selector)).map(e => { const r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom, e.textContent]; }).filter(b => b[2] > b[0]))"""


def _overlaps(a, b, slack: float = 1.0) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def _button(page, name: str):
    return page.get_by_test_id("stMainBlockContainer").get_by_role("button", name=name, exact=True)


def test_training_controls_follow_the_job_and_the_log_stays_quiet(browser):
    """Pause is enabled while the job runs (not only after an unrelated rerun); a fresh server and a
    training run log no warnings; no chart logs NaN paths on first load."""
    proc, url = start_app()
    console: list[str] = []
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        open_page(page, url + "/explore")
        page.wait_for_selector(".js-plotly-plot .main-svg")
        open_page(page, url + "/train")
        steps = page.get_by_role("slider", name="Training steps")
        steps.focus()
        steps.press("End")  # a long run: there is time to pause it
        wait_idle(page)
        _button(page, "Start training").click()
        page.wait_for_function(
            """() => Array.from(document.querySelectorAll('[data-testid="stMainBlockContainer"] button'))
                 .some(b => b.innerText.trim() === 'Pause' && !b.disabled)""",
            timeout=60_000,
        )
        _button(page, "Pause").click()
        page.get_by_text("Paused: step").first.wait_for(timeout=30_000)
        assert _button(page, "Resume").is_enabled()
        _button(page, "Stop").click()
        page.get_by_text("4 · What the flow learned").wait_for(timeout=120_000)
        wait_idle(page)
        assert exception_boxes(page) == []
        context.close()
    finally:
        stop_app(proc)
    log = proc.stderr.read().decode(errors="replace")
    assert not [line for line in log.splitlines() if any(n in line for n in NOISE)], log[-3000:]
    assert not [line for line in console if "NaN" in line], console


def test_discarding_a_bad_json_edit_restores_the_text_and_share_has_room(page, app_url):
    open_page(page, app_url + "/explore")
    page.get_by_role("button", name="JSON", exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="Flow spec (JSON): edit and press Ctrl+Enter to apply")
    good = box.input_value()
    box.fill(good + "} oops")
    box.press("Control+Enter")
    page.get_by_text("Not applied").first.wait_for()
    page.get_by_role("button", name="Discard my edit").click()
    wait_idle(page)
    page.wait_for_timeout(300)
    wait_idle(page)
    assert page.get_by_text("Not applied").count() == 0
    box = page.get_by_role("textbox", name="Flow spec (JSON): edit and press Ctrl+Enter to apply")
    token = parse_qs(urlparse(page.url).query)["spec"][0]
    assert json.loads(box.input_value()) == decode_token(token)  # the flow's own text, not the bad edit
    # Share: the whole width, labels that fit, a link in a few lines
    page.get_by_role("button", name="Share", exact=True).click()
    wait_idle(page)
    panel = page.locator(".st-key-fv_share")
    assert panel.bounding_box()["width"] > 800  # the controls column was about 400
    for name in ("Download spec (JSON)", "Download as Python", "Export as Python"):
        button = panel.get_by_role("button", name=name)
        assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), name
    link = panel.locator('[data-testid="stCode"]').first
    assert link.bounding_box()["height"] < 200  # six lines at most (it was twelve)
    assert exception_boxes(page) == []


def test_a_phone_width_shows_every_title_label_and_formula_whole(browser, app_url):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        open_page(page, app_url + "/explore")
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.wait_for_timeout(500)
        texts = page.evaluate(BOXES_JS, ".annotation, .g-xtitle, .g-ytitle")
        assert texts and len(texts[0]) >= 6, texts  # four panel titles and axis titles
        for chart in texts:
            for i, a in enumerate(chart):
                for b in chart[i + 1 :]:
                    assert not _overlaps(a, b), (a, b)
        open_page(page, app_url + "/1d")
        page.wait_for_selector(".js-plotly-plot .main-svg")
        page.wait_for_timeout(500)
        (legend,) = page.evaluate(BOXES_JS, ".legend")[0]
        panels = page.evaluate(BOXES_JS, ".nsewdrag")[0]
        assert len(panels) == 3
        assert not [p for p in panels if _overlaps(legend, p)], (legend, panels)
        labels = page.evaluate(BOXES_JS, ".annotation, .g-xtitle, .g-ytitle")[0]
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not _overlaps(a, b), (a, b)
        cut = page.evaluate(
            "() => Array.from(document.querySelectorAll('.katex-display'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 4).map(e => e.textContent.slice(0, 60))"
        )
        assert cut == []
        # the readouts at text size, not in a metric's large type
        sizes = page.evaluate(
            "() => Array.from(document.querySelectorAll('[data-testid=\"stMetricValue\"]'))"
            ".map(e => parseFloat(getComputedStyle(e).fontSize))"
        )
        assert sizes and max(sizes) <= 18, sizes
        assert exception_boxes(page) == []
    finally:
        context.close()
