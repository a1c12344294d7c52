"""Playing the flow on the Explorer in headless Chromium: pictures per second, the label, the scrubber."""

from __future__ import annotations

import base64
import re

from bench.motion_play import measure_play
from flowviz.playback import PREVIEW_RESOLUTION, frame_png, strip_of_spec
from flowviz.spec import canonical_json, encode_token, parse_spec
from tests.conftest import exception_boxes, open_page, wait_idle

SPEC = parse_spec(
    {
        "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
        "layers": [
            {"type": "rotation", "degrees": 30},
            {"type": "swap"},
            {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0},
        ],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 96},
    }
)
SHOWN_PNG_JS = """async () => {
  const response = await fetch(document.querySelector('.fv-play-stage img').src);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let text = '';
  bytes.forEach((b) => { text += String.fromCharCode(b); });
  return btoa(text);
}"""


def now_text(page) -> str:
    return page.locator(".fv-play-now").inner_text()


def test_play_paints_at_least_twenty_pictures_a_second(page, app_url):
    url = f"{app_url}/explore?spec={encode_token(SPEC)}"
    result = measure_play(page, url, seconds=2.0)
    assert result["frames_total"] == 3 * 24 + 1
    assert result["pictures_per_second"] >= 20, result
    assert result["labels_seen"] >= 20 and result["scrubber_moves"] >= 20, result
    # while it plays the button pauses; paused, its name begins with "Play" again
    pause = page.get_by_role("button", name=re.compile(r"^Pause"))
    pause.click()
    assert page.get_by_role("button", name=re.compile(r"^Play")).count() == 1
    frame = page.get_by_role("slider", name="Flow time t").input_value()
    page.wait_for_timeout(300)
    assert page.get_by_role("slider", name="Flow time t").input_value() == frame
    # another flow: the old frames go, and Play computes the new ones
    page.get_by_role("slider", name="Rotation angle (degrees)").press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.fv-play').dataset.frame === undefined")
    assert page.locator(".fv-play-placeholder").is_visible()
    page.get_by_role("button", name=re.compile(r"^Play")).click()
    page.wait_for_function(
        "() => document.querySelector('.fv-play').dataset.frame !== undefined", timeout=60_000
    )
    assert not page.locator(".fv-play-placeholder").is_visible()
    assert exception_boxes(page) == []


def test_scrubber_steps_one_frame_per_arrow_key_and_shows_the_exact_frame(page, app_url):
    open_page(page, f"{app_url}/explore?spec={encode_token(SPEC)}")
    strip = strip_of_spec(canonical_json(SPEC), PREVIEW_RESOLUTION, False)
    scrubber = page.get_by_role("slider", name="Flow time t")
    scrubber.focus()
    scrubber.press("ArrowRight")  # the first touch asks the server for the frames
    page.wait_for_function("() => document.querySelector('.fv-play')?.dataset.frame === '1'", timeout=60_000)
    assert now_text(page).startswith("1 · rotation, 4 %")
    # a drag to the middle of the swap layer, then keys again
    scrubber.evaluate("s => { s.value = '36'; s.dispatchEvent(new Event('input', { bubbles: true })); }")
    assert scrubber.input_value() == "36"
    assert now_text(page).startswith("2 · swap, 50 %")
    shown = base64.b64decode(page.evaluate(SHOWN_PNG_JS))
    assert shown == frame_png(strip, 36)
    # swap reverses orientation: the page says once why it flips in one step
    flip = page.locator(".fv-play-flip")
    assert flip.is_visible() and "det J would have to pass through 0" in flip.inner_text()
    scrubber.press("ArrowLeft")
    assert scrubber.input_value() == "35" and now_text(page).startswith("2 · swap, 45 %")
    assert base64.b64decode(page.evaluate(SHOWN_PNG_JS)) == frame_png(strip, 35)
    scrubber.press("Home")
    assert now_text(page).startswith("base p_Z") and not flip.is_visible()
    scrubber.press("End")
    assert now_text(page).startswith("3 · planar, 100 %")
    assert exception_boxes(page) == []


RUNS_WATCH_JS = """() => {
  window.__runs = 0;
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__runs += 1;
  }).observe(app, { attributes: true, attributeFilter: ['data-test-script-state'] });
}"""


def test_a_still_page_with_the_player_in_view_has_the_frames_before_play(page, app_url):
    """The frames are asked for ahead, once the player is in view and the page still; then Play asks
    the server for nothing: every frame it shows was in the page already."""
    open_page(page, f"{app_url}/explore?spec={encode_token(SPEC)}")
    assert page.evaluate("() => document.querySelector('.fv-play').dataset.frame") is None
    page.locator(".fv-play-stage").scroll_into_view_if_needed()
    box = page.locator(".fv-play-what").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)  # near the player, not on Play
    page.wait_for_function("() => document.querySelector('.fv-play').dataset.frame === '0'", timeout=60_000)
    # the stage shows p_Z, the first frame, exactly; nothing says it is computing
    assert not page.locator(".fv-play-placeholder").is_visible()
    assert page.locator(".fv-play-status").inner_text() == ""
    assert now_text(page).startswith("base p_Z")
    strip = strip_of_spec(canonical_json(SPEC), PREVIEW_RESOLUTION, False)
    assert base64.b64decode(page.evaluate(SHOWN_PNG_JS)) == frame_png(strip, 0)
    wait_idle(page)
    page.evaluate(RUNS_WATCH_JS)
    page.get_by_role("button", name=re.compile(r"^Play")).click()
    page.wait_for_function("() => Number(document.querySelector('.fv-play').dataset.frame) >= 10")
    assert page.evaluate("() => window.__runs") == 0
    # a visitor who plays gets each new flow's frames ahead too, once the page is still again
    page.get_by_role("slider", name="Rotation angle (degrees)").press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.fv-play').dataset.frame === undefined")
    page.locator(".fv-play-what").scroll_into_view_if_needed()
    box = page.locator(".fv-play-what").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)  # keys no longer in use; not onto Play
    page.wait_for_function("() => document.querySelector('.fv-play').dataset.frame === '0'", timeout=60_000)
    assert now_text(page).startswith("base p_Z")
    assert exception_boxes(page) == []
