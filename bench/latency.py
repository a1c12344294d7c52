"""Slider latency of the Explorer in headless Chromium.

For each resolution: open /explore with the default flow at that resolution, press
an arrow key on a slider (always the same direction, so each press is a flow not
seen before and nothing comes from a cache), and time until every chart shows new
data and the script is idle again. Prints p50/p95 per resolution and writes
bench/results/latency.json.

    python bench/latency.py [--presses 24] [--resolutions 128 256 512]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import (  # noqa: E402
    CHROMIUM_FLAGS,
    chart_fingerprints,
    chromium_path,
    start_app,
    stop_app,
    time_slider_key,
    wait_idle,
    write_json,
)
from flowviz.presets import default_spec  # noqa: E402
from flowviz.spec import encode_token  # noqa: E402

SLIDER = "Planar direction w₁"  # the first layer of the default flow: every view depends on it


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = q * (len(ordered) - 1)
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def measure(browser, url: str, resolution: int, presses: int, warmup: int = 3) -> list[float]:
    spec = default_spec()
    spec["view"]["resolution"] = resolution
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/explore?spec={encode_token(spec)}")
    wait_idle(page, 60_000)
    page.wait_for_timeout(1500)
    wait_idle(page)
    slider = page.get_by_role("slider", name=SLIDER).first
    times = []
    for i in range(presses + warmup):
        before = chart_fingerprints(page)
        # One direction only: every press is a new flow, never one already in a cache.
        elapsed = time_slider_key(page, slider, "ArrowLeft", before)
        if i >= warmup:
            times.append(elapsed)
        page.wait_for_timeout(600)  # a pause, as a person looks: deferred hover data lands in it
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=24)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency.json")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    proc, url = start_app()
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            for resolution in args.resolutions:
                times = measure(browser, url, resolution, args.presses)
                rows.append(
                    {
                        "resolution": resolution,
                        "presses": len(times),
                        "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(percentile(times, 0.95), 1),
                        "max_ms": round(max(times), 1),
                        "times_ms": [round(t, 1) for t in times],
                    }
                )
            browser.close()
    finally:
        stop_app(proc)

    print(f"Explorer slider latency ('{SLIDER}', key press to every chart updated and the script idle)")
    print(f"{'grid':>8} {'presses':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for row in rows:
        grid = f"{row['resolution']}²"
        print(
            f"{grid:>8} {row['presses']:>8} {row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f} {row['max_ms']:>8.0f}"
        )
    write_json(
        args.out,
        {
            "what": "Explorer slider latency in headless Chromium: key press to every chart updated, script idle",
            "slider": SLIDER,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()},
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
