"""Views that follow a drag, measured in headless Chromium; and, if present, playing the flow.

Explorer (default flow, default resolution): the mouse drags "Planar direction w₁" for
2 seconds, from where its thumb is to a value at the other side, several times (each
drag ends at another value, so no release is answered by a cache). The page's own
requestAnimationFrame counts the distinct pictures of p_X painted while the button is
down, checks that each is the strip frame of a value inside the thumb's sweep, and
times button-up to the exact picture. The first drag finds no strip in the page (it
is asked for when the thumb is grabbed); the later ones find it, as a person's next
drag does. 1D page: the same with "Slope between the knots" and the p_X curve.

Also: the cost of a frame strip in the core (a fresh process has nothing cached), and,
when bench/motion_play.py is there, its ``measure_play`` (Play on the Explorer).

    python bench/motion.py [--drags 5] [--seconds 2] [--only 1d]

Prints a table and writes bench/results/motion.json. On a shared machine the figures
move with the load: rerun this one command to measure again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import (  # noqa: E402
    CHROMIUM_FLAGS,
    chromium_path,
    drag_slider,
    start_app,
    stop_app,
    wait_idle,
    write_json,
)
from flowviz.presets import default_spec  # noqa: E402
from flowviz.spec import encode_token  # noqa: E402

EXPLORER_SLIDER = "Planar direction w₁"  # default flow: w = (3, 0), u = (1.1, 0); invertible for w₁ > -0.909
EXPLORER_PICTURE = {
    "kind": "image",
    "chart": "Base and pushed-forward densities, volume change",
    "name": "panel1",
}
EXPLORER_ENDS = [0.0, 3.5, -0.3, 3.8, 0.2, 3.3, -0.5, 3.9]  # w₁ where each drag lets go
LINE_SLIDER = "Slope between the knots"  # default 1D map: piecewise linear, this slope in [0.1, 3]
LINE_PICTURE = {"kind": "trace", "meta": "p_X"}
LINE_ENDS = [2.6, 0.4, 2.4, 0.6, 2.8, 0.3, 2.2, 0.8]


def open_settled(browser, address: str):
    """A new page at ``address``, once its runs are over and its charts have settled."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(address)
    wait_idle(page, 60_000)
    page.wait_for_timeout(1500)
    wait_idle(page)
    return page


def fraction(value: float, low: float, high: float) -> float:
    return (value - low) / (high - low)


def drags(page, label: str, picture: dict, limits: tuple[float, float], ends: list[float], seconds: float):
    rows = []
    for end in ends:
        now = float(page.get_by_role("slider", name=label).input_value())
        row = drag_slider(
            page, label, picture, fraction(now, *limits), fraction(end, *limits), duration_ms=seconds * 1e3
        )
        row["from"] = now
        rows.append(row)
        page.wait_for_timeout(400)
    return rows


def summary(rows: list[dict]) -> dict:
    warm = rows[1:]
    released = [r["release_ms"] for r in warm if r["release_ms"] is not None]
    return {
        "first_drag": {k: rows[0][k] for k in ("fps", "frames", "matched", "first_frame_ms", "release_ms")},
        "later_drags": len(warm),
        "fps_median": round(statistics.median(r["fps"] for r in warm), 1),
        "fps_min": round(min(r["fps"] for r in warm), 1),
        "all_matched": all(r["matched"] for r in rows),
        "release_ms_median": round(statistics.median(released), 1) if released else None,
        "release_ms_max": round(max(released), 1) if released else None,
        "input_events_per_s_median": round(statistics.median(r["passed"] for r in warm) / 2, 1),
        "drags": rows,
    }


def exact_equals_address(browser, url: str, page) -> bool:
    """The picture after the last release equals the one a fresh page at the address shows."""
    ours = page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot image')).map(i => i.getAttribute('href'))"
    )
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    other.goto(page.url)
    wait_idle(other, 60_000)
    other.wait_for_function(
        "n => document.querySelectorAll('.js-plotly-plot image').length >= n", arg=len(ours)
    )
    wait_idle(other)
    theirs = other.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot image')).map(i => i.getAttribute('href'))"
    )
    other.close()
    return ours == theirs


def strip_costs(repeats: int = 3) -> list[dict]:
    """Time each chunk of a strip in this process, cold (caches cleared before each repeat)."""
    import torch

    from flowviz.strips import (
        STRIP_LEVELS,
        _line_strip_cached,
        _strip_cached,
        explorer_strip,
        line_strip,
        strip_chunk,
    )

    torch.set_num_threads(1)  # as the app
    spec = default_spec()
    rows = []
    cases = [
        (
            "Explorer w₁ (64² frames)",
            lambda v: explorer_strip(spec, ("layers", 0, "w", 0), v),
            (-4.0, 4.0, 0.05, 3.0),
            _strip_cached,
        ),
        (
            "1D slope (curves)",
            lambda v: line_strip(
                ("uniform", {"low": -2.0, "high": 2.0}),
                ("piecewise_linear", {"knots": [-1.0, 1.0], "slopes": [2.0, 0.5, 1.5]}),
                "map",
                ("slopes", 1),
                v,
            ),
            (0.1, 3.0, 0.01, 0.5),
            _line_strip_cached,
        ),
    ]
    for name, build, limits, cache in cases:  # limits: low, high, step, the value grabbed
        build(strip_chunk(*limits[:3], 0, limits[3])[:2])  # imports and first-call costs out of the way
        have: list[float] = []
        for level in range(STRIP_LEVELS):  # as a drag downward from the value grabbed asks for them
            values = strip_chunk(*limits[:3], level, limits[3], -1 if level else 0, have)
            have += values
            if not values:
                continue
            times = []
            for _ in range(repeats):
                cache.cache_clear()
                start = time.perf_counter()
                frames = build(values)
                times.append((time.perf_counter() - start) * 1e3)
            ms = statistics.median(times)
            rows.append(
                {
                    "strip": name,
                    "chunk": level,
                    "frames": len(values),
                    "ms": round(ms, 1),
                    "ms_per_frame": round(ms / len(values), 2),
                    "bytes": len(json.dumps(frames)),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drags", type=int, default=5, help="drags per slider (the first one cold)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: bench/results/motion.json (motion_1d.json with --only 1d)",
    )
    parser.add_argument("--only", choices=["1d"], default=None, help="measure the 1D page's drag alone")
    parser.add_argument(
        "--cold",
        type=int,
        default=4,
        help="first drags of the Explorer slider on fresh pages of as many other flows, each way of grabbing",
    )
    args = parser.parse_args()
    if args.out is None:
        args.out = ROOT / "bench" / "results" / ("motion_1d.json" if args.only else "motion.json")

    from playwright.sync_api import sync_playwright

    costs = [] if args.only else strip_costs()
    play = explorer = None
    proc, url = start_app()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            if not args.only:
                explorer = measure_explorer(browser, url, args)
                explorer["cold"] = cold_drags(browser, url, args)
            page = open_settled(browser, f"{url}/1d")
            line = summary(
                drags(page, LINE_SLIDER, LINE_PICTURE, (0.1, 3.0), LINE_ENDS[: args.drags], args.seconds)
            )
            page.close()
            if not args.only and (ROOT / "bench" / "motion_play.py").exists():
                sys.path.insert(0, str(ROOT / "bench"))
                from motion_play import measure_play

                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                play = measure_play(page, f"{url}/explore?spec={encode_token(default_spec())}")
                page.close()
            browser.close()
    finally:
        stop_app(proc)
    report(args, explorer, line, costs, play)


def measure_explorer(browser, url: str, args) -> dict:
    page = open_settled(browser, f"{url}/explore?spec={encode_token(default_spec())}")
    explorer = summary(
        drags(page, EXPLORER_SLIDER, EXPLORER_PICTURE, (-4.0, 4.0), EXPLORER_ENDS[: args.drags], args.seconds)
    )
    explorer["exact_equals_address"] = exact_equals_address(browser, url, page)
    page.close()
    return explorer


def cold_spec(k: int) -> dict:
    """The default flow with its second layer's push u₂ changed: a flow no strip was made for."""
    spec = default_spec()
    spec["layers"][1]["u"][1] = round(1.1 - 0.05 * (k + 1), 2)
    return spec


def cold_drags(browser, url: str, args) -> dict:
    """First drags only: each on a fresh page of a flow whose strips nobody asked for yet, the
    pointer either jumping onto the thumb and pressing at once, or coming down onto it from the
    slider's label in 0.3 s, as a hand does (the strip is asked for when the pointer rests on the
    slider, so the hand's approach gives it a head start)."""
    out = {}
    for name, approach in (("jump", 0.0), ("approach_300ms", 300.0)):
        rows = []
        for k in range(args.cold):
            index = k if name == "jump" else args.cold + k
            page = open_settled(browser, f"{url}/explore?spec={encode_token(cold_spec(index))}")
            now = float(page.get_by_role("slider", name=EXPLORER_SLIDER).input_value())
            row = drag_slider(
                page,
                EXPLORER_SLIDER,
                EXPLORER_PICTURE,
                fraction(now, -4.0, 4.0),
                fraction(EXPLORER_ENDS[0], -4.0, 4.0),
                duration_ms=args.seconds * 1e3,
                approach_ms=approach,
            )
            rows.append({k: row[k] for k in ("fps", "frames", "matched", "first_frame_ms", "release_ms")})
            page.close()
        out[name] = {
            "fps_median": round(statistics.median(r["fps"] for r in rows), 1),
            "fps_min": round(min(r["fps"] for r in rows), 1),
            "first_frame_ms_median": round(
                statistics.median(r["first_frame_ms"] or math.inf for r in rows), 1
            ),
            "all_matched": all(r["matched"] for r in rows),
            "drags": rows,
        }
    return out


def report(args, explorer: dict | None, line: dict, costs: list[dict], play: dict | None) -> None:
    print(
        f"Drag a slider for {args.seconds:g} s: distinct pictures painted per second while the button is down"
    )
    print(
        f"{'page':>9} {'first drag':>11} {'later p50':>10} {'later min':>10} {'matched':>8} {'release p50':>12} {'max':>6}"
    )
    for name, result in (("Explorer", explorer), ("1D", line)):
        if result is None:
            continue
        first = result["first_drag"]
        print(
            f"{name:>9} {first['fps']:>8.1f}/s {result['fps_median']:>8.1f}/s {result['fps_min']:>8.1f}/s "
            f"{result['all_matched']!s:>8} {result['release_ms_median']:>9.0f} ms {result['release_ms_max']:>5.0f}"
        )
    if explorer is not None:
        for name, cold in explorer["cold"].items():
            print(
                f"Explorer first drags ({name}, {len(cold['drags'])} flows): median {cold['fps_median']:.1f}/s, "
                f"min {cold['fps_min']:.1f}/s, first picture after {cold['first_frame_ms_median']:.0f} ms, "
                f"matched {cold['all_matched']}"
            )
        print(
            "Explorer: the exact picture after release equals the shared address's: "
            f"{explorer['exact_equals_address']}"
        )
    print(f"{'strip':>26} {'chunk':>6} {'frames':>7} {'ms':>7} {'ms/frame':>9} {'kB':>7}")
    for row in costs:
        print(
            f"{row['strip']:>26} {row['chunk']:>6} {row['frames']:>7} {row['ms']:>7.0f} "
            f"{row['ms_per_frame']:>9.2f} {row['bytes'] / 1e3:>7.0f}"
        )
    if play is not None:
        print("Play:", json.dumps(play))
    write_json(
        args.out,
        {
            "what": "Pictures that follow a mouse drag of a slider, in headless Chromium; strip costs; Play",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
            "seconds_per_drag": args.seconds,
            "explorer": None if explorer is None else {"slider": EXPLORER_SLIDER, **explorer},
            "one_d": {"slider": LINE_SLIDER, **line},
            "strip_costs": costs,
            "play": play,
        },
    )


if __name__ == "__main__":
    main()
