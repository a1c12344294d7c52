"""Playing the flow on the Explorer, measured in headless Chromium.

``measure_play(page, url)`` opens an Explorer address, presses Play and, from the
page's own ``requestAnimationFrame``, counts over one pass from p_Z to p_X (a few
seconds) how often the picture the player shows changes (distinct pictures painted per second), and whether
the label and the time scrubber advance. ``strip_costs`` times the torch core's
frame strip for flows never seen before (each spec's parameters are nudged, so no
cache answers). ``main`` runs both over a few flows, prints a table and writes
bench/results/motion_play.json:

    python bench/motion_play.py [--seconds 3] [--look 2]
"""

from __future__ import annotations

import argparse
import copy
import datetime
import itertools
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import CHROMIUM_FLAGS, chromium_path, start_app, stop_app, wait_idle, write_json  # noqa: E402
from flowviz.presets import FLOW_PRESETS  # noqa: E402
from flowviz.spec import canonical_json, encode_token, parse_spec  # noqa: E402

PLAY_BUTTON = re.compile(r"^Play")

# From page JS: every animation frame for ``ms`` milliseconds or until the player stops at p_X,
# which picture the player shows, its label and the scrubber's value.
SAMPLE_JS = """async (ms) => {
  const img = document.querySelector('.fv-play-stage img');
  const scrub = document.querySelector('.fv-play-scrub');
  const now = document.querySelector('.fv-play-now');
  let last = img.getAttribute('src'), changes = 0, rafs = 0;
  const seen = new Set([last]), labels = [], values = [];
  const start = performance.now();
  await new Promise((resolve) => {
    function step(t) {
      rafs += 1;
      const src = img.getAttribute('src');
      if (src !== last) { changes += 1; last = src; seen.add(src); }
      labels.push(now.textContent);
      values.push(Number(scrub.value));
      const playing = document.querySelector('.fv-play-button').getAttribute('aria-label').startsWith('Pause');
      if (playing && performance.now() - start < ms) requestAnimationFrame(step); else resolve();
    }
    requestAnimationFrame(step);
  });
  const elapsed = performance.now() - start;
  return { changes, distinct: seen.size, rafs, elapsed, labels, values, max: Number(scrub.max) };
}"""


def measure_play(page, url: str, seconds: float = 3.0, look_ms: float = 0.0) -> dict:
    """Open ``url`` (an Explorer address), press Play, and watch one pass from p_Z to p_X (at most
    ``seconds``; loop off, so the hold before a loop starts again is not counted as play).
    ``look_ms``: the player is scrolled into view and looked at this long, the pointer away from
    Play, before Play is pressed (0: pressed at once).

    Returns ``pictures_per_second`` (changes of the shown picture per second of play),
    ``distinct_pictures`` (different pictures seen), ``display_fps`` (animation frames per
    second the page got), ``frames_total`` (frames in the strip), ``click_to_first_frame_ms``
    (Play pressed until the first frame is shown: the strip's compute, transfer and decode),
    ``labels_seen`` and ``scrubber_moves`` (how many times the scrubber's value changed).
    """
    page.goto(url)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]')
    wait_idle(page, 60_000)
    page.wait_for_timeout(300)
    wait_idle(page, 60_000)
    button = page.get_by_role("button", name=PLAY_BUTTON)
    button.scroll_into_view_if_needed()
    page.locator(".fv-play-loop").uncheck()
    if look_ms:
        box = page.locator(".fv-play-what").bounding_box()
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 2)  # off Play, below the controls
        page.wait_for_timeout(look_ms)
    start = time.perf_counter()
    button.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('.fv-play-stage img');"
        " return i && i.getAttribute('src') && document.querySelector('.fv-play')?.dataset.frame !== undefined; }",
        polling="raf",
        timeout=60_000,
    )
    first_frame_ms = (time.perf_counter() - start) * 1e3
    sample = page.evaluate(SAMPLE_JS, seconds * 1e3)
    seconds_played = sample["elapsed"] / 1e3
    values = sample["values"]
    return {
        "pictures_per_second": round(sample["changes"] / seconds_played, 1),
        "distinct_pictures": sample["distinct"],
        "display_fps": round(sample["rafs"] / seconds_played, 1),
        "frames_total": int(sample["max"]) + 1,
        "seconds": round(seconds_played, 2),
        "click_to_first_frame_ms": round(first_frame_ms, 1),
        "labels_seen": len(dict.fromkeys(sample["labels"])),
        "scrubber_moves": sum(1 for a, b in itertools.pairwise(values) if a != b),
    }


def nudged(spec: dict, k: int) -> dict:
    """The spec with its view window widened by a hair k times: a flow no cache has seen, the same picture."""
    spec = copy.deepcopy(spec)
    spec["view"]["xlim"] = [spec["view"]["xlim"][0] - 1e-6 * (k + 1), spec["view"]["xlim"][1]]
    return parse_spec(spec)


def strip_costs(specs: dict[str, dict], repeats: int = 3) -> list[dict]:
    """Milliseconds the torch core takes for a strip (median of ``repeats`` uncached runs) and the
    bytes the browser receives, per flow. Uses the app's own cached entry point with a new key each time."""
    import torch

    from flowviz.playback import PREVIEW_RESOLUTION, strip_of_spec
    from flowviz.ui.player import strip_json

    torch.set_num_threads(1)  # as in the app
    rows = []
    for name, spec in specs.items():
        times, cpu, payload = [], [], 0
        for k in range(repeats):
            key = canonical_json(nudged(spec, k + int(time.time() * 1e3) % 100_000))
            start, start_cpu = time.perf_counter(), time.process_time()
            strip = strip_of_spec(key, PREVIEW_RESOLUTION, False)
            times.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
            payload = len(strip_json(strip, False).encode())
        rows.append(
            {
                "flow": name,
                "frames": len(strip["t"]),
                "strip_ms_median": round(statistics.median(times), 1),
                "strip_ms": [round(t, 1) for t in times],
                "strip_cpu_ms_median": round(statistics.median(cpu), 1),
                "ms_per_frame": round(statistics.median(times) / len(strip["t"]), 2),
                "payload_bytes": payload,
            }
        )
    return rows


SWAP_FLOW = parse_spec(
    {
        "base": {"type": "gaussian", "mean": [1.0, 0.0], "cov": [[1.0, 0.0], [0.0, 0.25]]},
        "layers": [{"type": "shift", "shift": [0.5, 1.0]}, {"type": "swap"}, {"type": "tanh"}],
        "view": {"xlim": [-3.0, 3.0], "ylim": [-3.0, 3.0], "resolution": 128},
    }
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--look",
        type=float,
        default=2.0,
        help="seconds the player is looked at before Play, in the second pass",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "motion_play.json")
    args = parser.parse_args()
    specs = {name: spec for name, (_, spec) in FLOW_PRESETS.items()}
    specs["shift, swap, tanh"] = SWAP_FLOW
    costs = strip_costs(specs)

    from playwright.sync_api import sync_playwright

    played = []
    proc, url = start_app()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            for look_ms in (0.0, args.look * 1e3):
                for name in ("unimodal to multimodal", "planar and radial", "shift, swap, tanh"):
                    spec = copy.deepcopy(specs[name])
                    if look_ms:  # another window: nothing of the first pass's strips is cached
                        spec["view"]["xlim"] = [spec["view"]["xlim"][0] - 0.01, spec["view"]["xlim"][1]]
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    address = f"{url}/explore?spec={encode_token(spec)}"
                    result = measure_play(page, address, args.seconds, look_ms)
                    played.append({"flow": name, "looked_ms": look_ms, **result})
                    page.close()
            browser.close()
    finally:
        stop_app(proc)

    print("Play in the browser (one pass from p_Z to p_X at 1×)")
    print(
        f"{'flow':<26} {'looked at':>9} {'pictures/s':>10} {'display fps':>11} {'frames':>7} {'Play→first frame ms':>20}"
    )
    for row in played:
        print(
            f"{row['flow']:<26} {row['looked_ms'] / 1e3:>8.1f}s {row['pictures_per_second']:>10.1f} "
            f"{row['display_fps']:>11.1f} {row['frames_total']:>7} {row['click_to_first_frame_ms']:>20.0f}"
        )
    print("\nFrame strip in the torch core (uncached, one torch thread)")
    print(f"{'flow':<26} {'frames':>7} {'median ms':>10} {'CPU ms':>7} {'ms/frame':>9} {'payload kB':>11}")
    for row in costs:
        print(
            f"{row['flow']:<26} {row['frames']:>7} {row['strip_ms_median']:>10.0f} "
            f"{row['strip_cpu_ms_median']:>7.0f} {row['ms_per_frame']:>9.2f} {row['payload_bytes'] / 1e3:>11.0f}"
        )
    write_json(
        args.out,
        {
            "what": "Play the flow: pictures per second in headless Chromium, and the cost of a frame strip",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "play": played,
            "strip": costs,
            "strip_ms_median_over_flows": round(statistics.median(r["strip_ms_median"] for r in costs), 1),
        },
    )


if __name__ == "__main__":
    main()
