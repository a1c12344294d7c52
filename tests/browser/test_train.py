"""The Train page in Chromium: draw points by clicking the canvas, train briefly, watch the density change."""

from __future__ import annotations

import math

from tests.conftest import exception_boxes, open_page, wait_idle

DENSITY_IMAGE_JS = """() => {
  const plot = Array.from(document.querySelectorAll('.js-plotly-plot')).find(
      g => g.layout && g.layout.title && String(g.layout.title.text).includes('Learned density'));
  if (!plot || !plot.layout.images || !plot.layout.images.length) return null;
  const source = plot.layout.images[0].source;
  return source.length + ':' + source.slice(-64);
}"""


def _density_image(page) -> str | None:
    return page.evaluate(DENSITY_IMAGE_JS)


def test_draw_by_clicking_train_and_watch_the_density_change(app_url, page):
    open_page(page, app_url + "/train")
    page.get_by_text("Draw on a canvas", exact=True).click()
    wait_idle(page)
    canvas = page.locator("canvas.upper-canvas").first
    box = canvas.bounding_box()
    assert box and box["width"] >= 400
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    clicks = 30
    for i in range(clicks):
        angle = 2 * math.pi * i / clicks
        radius = 150 if i % 2 else 75  # two rings
        page.mouse.click(centre_x + radius * math.cos(angle), centre_y + radius * math.sin(angle))
        page.wait_for_timeout(60)
    page.wait_for_timeout(800)
    wait_idle(page)
    page.get_by_text(f"Your data: {clicks} points").first.wait_for(timeout=30_000)

    steps = page.get_by_role("slider", name="Training steps")
    steps.focus()
    steps.press("Home")
    for _ in range(3):  # 1000 steps: long enough to watch (the shortest can end before a second picture)
        steps.press("ArrowRight")
    wait_idle(page)
    page.get_by_role("button", name="Start training", exact=True).click()

    page.wait_for_function(f"({DENSITY_IMAGE_JS})() !== null", timeout=60_000)
    first = _density_image(page)
    # the density picture changes while the live loss curve and samples are drawn beside it
    page.wait_for_function(
        f"""(first) => {{
            const now = ({DENSITY_IMAGE_JS})();
            const titles = Array.from(document.querySelectorAll('.js-plotly-plot'))
                .map(g => String(g.layout && g.layout.title && g.layout.title.text));
            return now !== null && now !== first && titles.some(t => t.startsWith("NLL"))
                && titles.some(t => t.startsWith("Samples"));
        }}""",
        arg=first,
        timeout=60_000,
    )
    assert page.get_by_text("The chart could not be drawn").count() == 0
    page.get_by_text("4 · What the flow learned").wait_for(timeout=120_000)
    wait_idle(page)
    assert page.get_by_role("button", name="Open in Explorer").is_visible()
    assert exception_boxes(page) == []


def _training_processes(server_pid: int) -> list[int]:
    """The server's training processes (spawned children), zombies included."""
    import subprocess

    found = subprocess.run(
        ["pgrep", "-P", str(server_pid), "-f", "spawn_main"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def test_a_reload_does_not_leave_its_training_run_behind(browser):
    """The run belongs to the page's session: after a reload (a new session) it is closed within seconds,
    not left to train for minutes with nobody able to see or stop it."""
    import time

    from bench.support import start_app, stop_app

    # its own server (the process to watch is this server's child), whose runs outlive their page 2 s
    proc, url = start_app(env={"FLOWVIZ_TRAINING_GRACE_S": "2"})
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        open_page(page, f"{url}/train")
        steps = page.get_by_role("slider", name="Training steps")
        steps.focus()
        page.keyboard.press("End")  # 10,000 steps: far longer than this test
        wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("steps/s").first.wait_for(timeout=90_000)
        assert len(_training_processes(proc.pid)) == 1
        page.reload()
        start = time.monotonic()
        while _training_processes(proc.pid) and time.monotonic() - start < 60:
            time.sleep(0.5)
        assert _training_processes(proc.pid) == []  # closed and reaped (no zombie either)
        assert time.monotonic() - start < 15  # the owner's grace (2 s here) and a visit of the supervisor
    finally:
        context.close()
        stop_app(proc)
