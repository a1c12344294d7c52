"""The Explorer in real headless Chromium: links, sliders, presets, uploads, no exception boxes."""

from __future__ import annotations

import copy
import json
import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

import flowviz
from bench.support import chart_fingerprints, start_app, stop_app, time_slider_key
from flowviz.presets import FLOW_PRESETS, LAYER_DEFAULTS
from flowviz.spec import LAYER_TYPES, decode_token, encode_token, parse_spec
from tests.conftest import exception_boxes, open_page, wait_idle

SPEC = {
    "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
    "layers": [
        {"type": "rotation", "degrees": 30},
        {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0},
    ],
    "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 128},
}


def mass_text(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Mass in view")
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def shown_images(page) -> list[str]:
    """The pictures the chart panels display (their <image> elements' data), in page order."""
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot image')).map(i => i.getAttribute('href'))"
    )


def spec_in_address(page) -> dict:
    token = parse_qs(urlparse(page.url).query)["spec"][0]
    return decode_token(token)


def wait_for_spec(page, predicate, timeout: float = 20.0) -> dict:
    """Poll the address bar until its spec satisfies ``predicate`` and the script is idle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            spec = spec_in_address(page)
        except (KeyError, ValueError):
            spec = None
        if spec is not None and predicate(spec):
            wait_idle(page)
            page.wait_for_timeout(300)
            wait_idle(page)
            return spec_in_address(page)
        page.wait_for_timeout(100)
    raise AssertionError(f"the address never showed the expected spec: {page.url}")


def test_link_round_trip(page, app_url):
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(SPEC))}")
    assert mass_text(page) == f"{float(flowviz.evaluate(SPEC)['mass']):.4f}"
    slider = page.get_by_role("slider", name="Rotation angle (degrees)")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    edited = wait_for_spec(page, lambda spec: spec["layers"][0]["degrees"] == 33)
    shown = mass_text(page)
    assert shown == f"{float(flowviz.evaluate(edited)['mass']):.4f}"
    # the address bar reproduces the screen: open it anew
    copy = page.context.new_page()
    open_page(copy, page.url)
    assert mass_text(copy) == shown
    value = copy.get_by_role("slider", name="Rotation angle (degrees)").input_value()
    assert float(value) == edited["layers"][0]["degrees"]
    # the same picture: every panel shows the same image, pixel for pixel
    drawn = shown_images(page)
    assert len(drawn) >= 4
    copy.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot image').length >= n", arg=len(drawn)
    )
    assert shown_images(copy) == drawn
    assert exception_boxes(page) == [] and exception_boxes(copy) == []


def test_slider_changes_every_view(page, app_url):
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(SPEC))}")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_timeout(500)
    slider = page.get_by_role("slider", name="Rotation angle (degrees)")
    before = chart_fingerprints(page)
    assert before, "no chart on the page"
    elapsed = time_slider_key(page, slider, "ArrowRight", before)
    assert elapsed < 10_000
    assert all(a != b for a, b in zip(before, chart_fingerprints(page), strict=True))
    assert exception_boxes(page) == []


@pytest.mark.parametrize("first", ["/1d", "/explore", "/train"])
def test_first_visit_to_a_fresh_server_gets_the_app(browser, first):
    """Whatever address a fresh server sees first, it answers through app.py's navigation."""
    proc, url = start_app()
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        for path in (first, "/explore", "/"):
            open_page(page, url + path)
            assert page.get_by_text("Page not found").count() == 0, path
            # the top navigation of app.py, not a folder listing
            assert page.get_by_role("link", name="Explorer (2D)").count() >= 1, path
            assert exception_boxes(page) == [], path
        assert page.get_by_text("Mass in view").count() >= 1
        # the root opens the Explorer at its own address, marked in the navigation, link kept
        token = encode_token(parse_spec(SPEC))
        open_page(page, f"{url}/?spec={token}")
        assert urlparse(page.url).path == "/explore"
        assert parse_qs(urlparse(page.url).query)["spec"] == [token]
        assert page.get_by_role("link", name="Explorer (2D)").get_attribute("aria-current") == "page"
        assert mass_text(page) == f"{float(flowviz.evaluate(SPEC)['mass']):.4f}"
        context.close()
    finally:
        stop_app(proc)


def test_presets_load_without_errors(page, app_url):
    open_page(page, f"{app_url}/explore")
    for name in FLOW_PRESETS:
        page.get_by_role("button", name=name.capitalize(), exact=True).click()
        wait_for_spec(page, lambda spec, name=name: spec == FLOW_PRESETS[name][1])
        assert exception_boxes(page) == [], name


def test_bad_token_shows_message_and_default_flow(page, app_url):
    open_page(page, f"{app_url}/explore?spec=%%%not-base64")
    assert page.get_by_text("could not be opened").count() >= 1
    assert mass_text(page)
    assert exception_boxes(page) == []


@pytest.mark.parametrize("good", [True, False])
def test_upload_spec_file(page, app_url, tmp_path, good):
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(SPEC))}")
    page.get_by_role("button", name="Share", exact=True).click()
    wait_idle(page)
    page.wait_for_timeout(300)
    target = {**SPEC, "layers": [{"type": "swirl", "strength": 2.5}]}
    if not good:
        target = {**SPEC, "layers": [{"type": "radial", "alpha": 1, "beta": -3}]}
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(target))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    if good:
        wait_for_spec(page, lambda spec: spec == parse_spec(target))
    else:
        page.get_by_text("That file was not loaded").wait_for(timeout=20_000)
        assert page.get_by_text("beta").count() >= 1
        assert spec_in_address(page) == parse_spec(SPEC)
    assert exception_boxes(page) == []


OVERLAYS_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const decode = (src) => src.startsWith('data:image/svg+xml;base64,') ? atob(src.split(',')[1]) : '';
  const shown = Array.from(gd.querySelectorAll('image')).map(
    (el) => el.getAttribute('href') || el.getAttributeNS('http://www.w3.org/1999/xlink', 'href'));
  const sources = gd.layout.images.map((im) => im.source);
  const count = (src) => (decode(src).match(/<circle/g) || []).length;
  return {
    circles: sources.map(count),
    shownCircles: shown.map(count),
    inSync: sources.every((s) => shown.includes(s)),
  };
}"""


def test_samples_and_slider_moves_keep_every_panel_its_own_picture(page, app_url):
    """The chart swaps images in place while a slider moves: each panel must keep its own."""
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(SPEC))}")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.get_by_text("Samples", exact=True).click()
    wait_idle(page)
    page.wait_for_timeout(800)
    slider = page.get_by_role("slider", name="Rotation angle (degrees)")
    for _ in range(3):
        time_slider_key(page, slider, "ArrowRight", chart_fingerprints(page))
        page.wait_for_timeout(400)
    state = page.evaluate(OVERLAYS_JS)
    assert state["inSync"], state
    # samples over the z- and the x-density panel only, both in the figure and on screen
    for key in ("circles", "shownCircles"):
        circles = [n for n in state[key] if n]
        assert len(circles) == 2 and all(n == 500 for n in circles), state
    assert exception_boxes(page) == []


def test_every_layer_formula_renders_and_fits(browser, app_url):
    """Each layer type's forward, inverse and log-det typeset without a KaTeX error, inside the
    panel beside the sliders, on a laptop-sized window."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    layers = [copy.deepcopy(LAYER_DEFAULTS[kind]) for kind in LAYER_TYPES]
    spec = {"base": {"type": "gaussian"}, "layers": layers, "view": {"resolution": 64}}
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(spec))}")
    sidebar = page.locator('[data-testid="stSidebar"]')
    for i, kind in enumerate(LAYER_TYPES, start=1):
        sidebar.get_by_role("radio", name=re.compile(rf"^{i} · ")).check(force=True)
        wait_idle(page)
        page.wait_for_timeout(200)
        wait_idle(page)
        displays = page.locator('[data-testid="stMain"] .katex-display')
        # the headline formula, then the layer's forward, inverse and log-det
        assert displays.count() == 4, kind
        assert page.locator(".katex-error").count() == 0, kind
        for j in range(1, 4):
            width, room = displays.nth(j).evaluate("el => [el.scrollWidth, el.clientWidth]")
            assert width <= room + 2, f"{kind}: formula {j} is {width} px wide in a {room} px panel"
    assert exception_boxes(page) == []
    page.context.close()


def test_whole_new_base_from_inside_the_views_redraws_the_sidebar(page, app_url):
    """ "Ring of 8" replaces the base from inside the live part: the sidebar's controls must follow,
    so that the next change of the window is applied, not lost."""
    spec = {
        "base": {
            "type": "mixture",
            "components": [{"mean": [1, 0], "cov": [[1, 0], [0, 1]]}],
            "weights": [1],
        },
        "layers": [{"type": "rotation", "degrees": 10}],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    }
    open_page(page, f"{app_url}/explore?spec={encode_token(parse_spec(spec))}")
    page.locator('[data-testid="stSidebar"]').get_by_role("radio", name=re.compile("^Base")).check(force=True)
    wait_idle(page)
    page.get_by_role("button", name="Ring of 8").click()
    wait_for_spec(page, lambda s: len(s["base"]["components"]) == 8)
    low = page.get_by_role("slider", name="View x-range").first
    low.focus()
    low.press("ArrowRight")
    shown = wait_for_spec(page, lambda s: s["view"]["xlim"] == [-3.5, 4.0])
    assert len(shown["base"]["components"]) == 8
    assert exception_boxes(page) == []
