"""Bounded work per visitor: the largest valid specs, three sessions at once, memory over a day.

Three parts, one command:

1. **Worst valid specs.** For each of the spec's limits, the largest valid spec at the
   finest grid it may ask for (``bench.support.worst_valid_specs``): the time to
   evaluate its grid, its layer-by-layer view, and the whole Explorer page (Streamlit
   AppTest: controls drawn, every view rendered), against the plainest flow at the
   largest grid (the budget's own case) and the budget ``flowviz.spec.ANSWER_SECONDS``;
   and every frame of a grabbed slider (``flowviz.strips``, 161 values).
   Also how fast the specs that once held the server for minutes are now refused.
2. **No visitor starves another.** One app server, three Chromium browsers: A presses
   an arrow key on an Explorer slider (``bench/concurrency.py``'s pieces: key press ->
   a chart shows new data and the script is idle); B opens worst valid links one after
   another (each slightly different, so no cache answers); C trains a flow on the Train
   page and watches it. A's p50 and p95 alone, with C, with B and C (the target: p95
   within 2x alone), and with B alone.
3. **Memory.** The same server opens many distinct specs at many resolutions in turn
   (a browser tab goes from link to link); the server's resident memory is read from
   /proc after each, and its peak compared with the ceiling stated below.

    python bench/worst_case.py            # the full run (about 15 minutes on 2 cores)
    python bench/worst_case.py --quick    # a short run of every part (about 4 minutes)
    python bench/worst_case.py --skip specs memory --others-elsewhere --interleave 5 --presses 30
        # part 2 with the load switched on and off every 5 presses (about 2 minutes): the
        # machine's speed drifts over minutes, so phases minutes apart compare two machines

Prints a table per part and writes bench/results/worst_case.json. Timings on a shared
machine are noisy: every figure is a median (or a p95) of repeats, each condition is
measured in the same process as its baseline, and the load average is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import concurrency  # noqa: E402  (bench/concurrency.py: its measure, training and CPU pieces)
import torch  # noqa: E402

from bench.support import (  # noqa: E402
    CHROMIUM_FLAGS,
    chromium_path,
    start_app,
    stop_app,
    worst_valid_specs,
    write_json,
)
from flowviz.errors import SpecError  # noqa: E402
from flowviz.spec import (  # noqa: E402
    ANSWER_SECONDS,
    MAX_GRID_WORK,
    MAX_KNOTS,
    MAX_LAYERS,
    MAX_MIXTURE_COMPONENTS,
    MAX_RESOLUTION,
    MAX_SPLINE_BINS,
    decode_token,
    encode_token,
    max_resolution,
    parse_spec,
    point_cost,
)

PAGE = str(ROOT / "app_pages" / "explore.py")
ALL_VIEWS = ["Change-of-variables terms", "Layer by layer"]
MEMORY_CEILING_MB = 1536  # stated: the server's resident memory stays below this across the loop
OUT = ROOT / "bench" / "results" / "worst_case.json"


def nudged(spec: dict, k: int) -> dict:
    """The same spec with its window moved by a hair: a distinct flow, so no cache answers."""
    return {**spec, "view": {**spec["view"], "xlim": [-4.0, 4.0 + 1e-6 * (k + 1)]}}


# --------------------------------------------------------------------------- part 1


def time_core(spec: dict) -> tuple[float, float]:
    """Seconds to evaluate the Explorer's grid arrays and its layer-by-layer view."""
    from flowviz.explorer import explorer_fields, explorer_steps
    from flowviz.spec import canonical_json

    key = canonical_json(spec)
    start = time.perf_counter()
    explorer_fields(key)
    middle = time.perf_counter()
    explorer_steps(key, tuple("t" * (1 + len(spec["layers"]))))
    return middle - start, time.perf_counter() - middle


# the number a person would grab first in each worst spec: its first layer's first slider
GRAB = {"rotation": (("degrees",), -180, 180, 1), "spline": (("bound",), 0.5, 5, 0.1),
        "piecewise_linear": (("slopes", 0), 0.1, 4, 0.05), "planar": (("b",), -3, 3, 0.05)}  # fmt: skip


def time_strip(spec: dict) -> float:
    """Seconds to make every frame of a grabbed slider (flowviz.strips: 161 values)."""
    from flowviz.strips import explorer_strip, strip_values

    canonical = parse_spec(spec)
    tail, low, high, step = GRAB[canonical["layers"][0]["type"]]
    start = time.perf_counter()
    explorer_strip(canonical, ("layers", 0, *tail), strip_values(low, high, step))
    return time.perf_counter() - start


def time_page(spec: dict) -> float:
    """Seconds for the Explorer to open the spec's link with every view shown (AppTest)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=300)
    at.query_params["spec"] = encode_token(parse_spec(spec))
    at.session_state["fv_extra"] = ALL_VIEWS
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the page failed: {at.exception}")
    return seconds


def worst_specs_table(repeats: int) -> list[dict]:
    torch.set_num_threads(1)  # as the app does
    specs = worst_valid_specs()
    time_page(nudged(specs["plain, largest grid"], 999))  # imports and first-run costs
    rows, k = [], 0
    for name, spec in specs.items():
        fields_s, steps_s, page_s, strip_s = [], [], [], []
        for _ in range(repeats):
            k += 1
            a, b = time_core(nudged(spec, k))
            fields_s.append(a)
            steps_s.append(b)
            k += 1
            page_s.append(time_page(nudged(spec, k)))
            k += 1
            strip_s.append(time_strip(nudged(spec, k)))
        canonical = parse_spec(spec)
        rows.append(
            {
                "spec": name,
                "resolution": canonical["view"]["resolution"],
                "point_cost": point_cost(canonical),
                "grid_work": point_cost(canonical) * canonical["view"]["resolution"] ** 2,
                "evaluate_s": statistics.median(fields_s),
                "layer_by_layer_s": statistics.median(steps_s),
                "page_s": statistics.median(page_s),
                "slider_strip_s": statistics.median(strip_s),
                "page_all_s": page_s,
            }
        )
    plain = rows[0]["page_s"]
    for row in rows:
        row["page_vs_plain"] = row["page_s"] / plain
    return rows


def refusals() -> list[dict]:
    """The specs that once kept the server busy past 100 s: how long refusing them takes."""
    gaussian = {"type": "gaussian"}
    cases = {
        "mixture of 2000": {
            "base": {"type": "mixture", "components": [{"mean": [0.001 * i, 0]} for i in range(2000)]},
            "layers": [],
        },
        "spline of 10000 bins": {
            "base": gaussian,
            "layers": [
                {
                    "type": "spline",
                    "widths": [1] * 10_000,
                    "heights": [1] * 10_000,
                    "derivatives": [1] * 9_999,
                }
            ],
        },
        "piecewise of 10000 knots": {
            "base": gaussian,
            "layers": [{"type": "piecewise_linear", "knots": list(range(10_000)), "slopes": [1] * 10_001}],
        },
        "2048² grid": {"base": gaussian, "layers": [], "view": {"resolution": 2048}},
    }
    out = []
    for name, spec in cases.items():
        token = encode_token(spec)
        start = time.perf_counter()
        try:
            decode_token(token)
            message = "accepted"
        except SpecError as error:
            message = str(error)
        out.append({"spec": name, "refused_in_ms": (time.perf_counter() - start) * 1e3, "message": message})
    return out


# --------------------------------------------------------------------------- part 2


def open_without_waiting(page, url: str) -> None:
    page.goto(url, wait_until="commit")


def busy(page) -> bool:
    return page.evaluate(
        "() => { const a = document.querySelector('[data-testid=\"stApp\"]');"
        " return !a || a.getAttribute('data-test-script-state') !== 'notRunning'; }"
    )


PHASES = ("alone", "with_training", "with_training_and_worst_links", "with_worst_links")


def niced_chromium(folder: Path) -> str:
    """A Chromium that yields the processors to everything else here: the browser of a visitor
    whose computer is not this one, so that drawing their pages does not count against the server.

    Two steps, both needed. Linux first shares the processors between sessions (autogroups, on
    here: /proc/sys/kernel/sched_autogroup_enabled), and Playwright starts each browser in a
    session of its own, so a browser takes its session's full share, whatever the priority of its
    processes: the wrapper sets its session's autogroup to nice 19 (which its processes share).
    Within the session, every process runs in the idle scheduling class (``chrt --idle``). Not
    ``nice``: Chromium sets its renderers' nice value itself (back to 0), but a process in the
    idle class stays there, whatever its nice value."""
    wrapper = folder / "chromium-idle"
    wrapper.write_text(
        "#!/bin/sh\n"
        "echo 19 > /proc/self/autogroup 2>/dev/null\n"  # absent where autogroups are off
        f'exec chrt --idle 0 "{chromium_path()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def training_progress(page) -> str:
    """C's progress line as its page shows it now ("Training: step 1234 of 10000 · ...")."""
    line = page.get_by_text(re.compile(r"^(Training|Paused|Done|Stopped|Stopped early|Failed): step")).first
    try:
        return line.inner_text(timeout=5_000).split(" · ")[0]
    except Exception as error:  # the benchmark goes on; the record says what was seen
        return f"(no progress line: {type(error).__name__})"


def worst_link_source(url: str, seed: int):
    """A function giving the address of the next worst valid link (each nudged, so no cache
    answers), and the list whose one entry counts the links given."""
    specs = list(worst_valid_specs().values())
    opened = [0]

    def next_link() -> str:
        opened[0] += 1
        spec = nudged(specs[opened[0] % len(specs)], seed + opened[0])
        return f"{url}/explore?spec={encode_token(parse_spec(spec))}"

    return next_link, opened


def three_sessions(playwright, url: str, others_elsewhere: bool):
    """A's, B's and C's browsers (B's and C's in the idle class when ``others_elsewhere``), their
    pages open on the Explorer, the Explorer and the Train page, and A's slider focused and warm."""
    import tempfile

    other = (
        niced_chromium(Path(tempfile.mkdtemp(prefix="flowviz-bench-")))
        if others_elsewhere
        else chromium_path()
    )
    browsers = [
        playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        for path in (chromium_path(), other, other)  # A (the viewer), B (worst links), C (training)
    ]
    viewer, opener, trainer = (b.new_page(viewport={"width": 1400, "height": 1000}) for b in browsers)
    for page in (viewer, opener, trainer):
        page.set_default_timeout(120_000)
    concurrency.open_app(viewer, url)
    concurrency.open_app(opener, url)
    concurrency.open_app(trainer, url, "train")
    slider = viewer.get_by_role("slider", name="Planar direction w₁")
    slider.focus()
    concurrency.measure(viewer, slider, 3)  # warm-up
    return browsers, viewer, opener, trainer, slider


def starvation(url: str, server_pid: int, presses: int, blocks: int, others_elsewhere: bool = False) -> dict:
    """A's slider latency alone, while C trains, while C trains and B opens worst links, and
    while B alone opens them; the target is the third against the first.

    ``others_elsewhere``: B's and C's browsers run in the idle scheduling class, as if on their own computers (the
    three visitors of a real server each draw their pages on their own machine; here all three
    browsers share the server's two cores). A's browser and the server keep their priority.
    """
    from playwright.sync_api import sync_playwright

    next_link, opened = worst_link_source(url, 5000)
    times: dict[str, list[float]] = {phase: [] for phase in PHASES}
    cpu: dict[str, list[dict]] = {phase: [] for phase in PHASES}
    links: dict[str, list[int]] = {phase: [] for phase in PHASES}
    progress: dict[str, list[str]] = {phase: [] for phase in PHASES if "training" in phase}
    with sync_playwright() as playwright:
        browsers, viewer, opener, trainer, slider = three_sessions(playwright, url, others_elsewhere)

        def phase(name: str, worst_links: bool) -> None:
            meter = concurrency.CpuMeter(server_pid)
            before = opened[0]
            if worst_links:
                open_without_waiting(opener, next_link())
            # one direction for the whole phase, as concurrency.measure does: every press a new flow
            key = "ArrowLeft" if concurrency._blocks_measured[0] % 2 == 0 else "ArrowRight"
            concurrency._blocks_measured[0] += 1
            for _ in range(presses):
                if worst_links and not busy(opener):  # B has its answer: B opens the next worst link
                    open_without_waiting(opener, next_link())
                times[name].append(concurrency.timed_press(viewer, slider, key))
                viewer.wait_for_timeout(600)  # a pause, as a person looks
            cpu[name].append(meter.shares())
            links[name].append(opened[0] - before)
            if "training" in name:  # the load is real only while C's run is still training
                progress[name].append(training_progress(trainer))
            if worst_links:
                concurrency.wait_idle(opener, 120_000)

        for _ in range(blocks):
            phase("alone", False)
            concurrency.start_training(trainer)
            trainer.wait_for_timeout(2000)
            phase("with_training", False)
            phase("with_training_and_worst_links", True)
            concurrency.stop_training_processes(server_pid)
            concurrency.open_app(trainer, url, "train")
            phase("with_worst_links", True)
        for browser in browsers:
            browser.close()
    out = {name: concurrency.summary(values) for name, values in times.items()}
    alone = out["alone"]
    for name in PHASES[1:]:
        out[name]["p95_ratio"] = out[name]["p95_ms"] / alone["p95_ms"]
        out[name]["p50_ratio"] = out[name]["p50_ms"] / alone["p50_ms"]
    out["p95_ratio"] = out["with_training_and_worst_links"]["p95_ratio"]
    out["other_browsers"] = "idle class (elsewhere)" if others_elsewhere else "same priority as A's"
    out["worst_links_opened"] = links
    out["cpu_cores_used"] = cpu
    out["training_at_phase_end"] = progress
    return out


def interleaved(
    url: str, server_pid: int, presses: int, block: int, others_elsewhere: bool, load: str = "both"
) -> dict:
    """A's slider with and without the load, in alternating blocks of ``block`` presses.

    The machine's speed drifts (by up to 2x over minutes here), so conditions measured in
    phases minutes apart also compare two machines. Here the load is switched on and off
    within seconds: C pauses and resumes its training run with the Train page's buttons
    (the server itself holds and lets go of training processes, so a signal from here
    would be undone), and B opens worst links only in the "loaded" blocks (a block starts
    once B's last page is done).
    """
    from playwright.sync_api import sync_playwright

    next_link, opened = worst_link_source(url, 9000)
    trainer_page = []

    def hold(training: bool) -> None:
        page = trainer_page[0]
        button = page.get_by_role("button", name="Resume" if training else "Pause", exact=True)
        if button.is_enabled():
            button.click()
            concurrency.wait_idle(page, 120_000)

    times: dict[str, list[float]] = {"alone": [], "loaded": []}
    with sync_playwright() as playwright:
        browsers, viewer, opener, trainer, slider = three_sessions(playwright, url, others_elsewhere)
        trainer_page.append(trainer)
        concurrency.start_training(trainer)
        trainer.wait_for_timeout(2000)
        key = "ArrowLeft"
        blocks = 0
        while min(len(v) for v in times.values()) < presses:
            loaded = blocks % 2 == 1
            blocks += 1
            hold(training=loaded and load != "links")
            links = loaded and load != "training"
            if links:
                open_without_waiting(opener, next_link())
            else:
                concurrency.wait_idle(opener, 120_000)
            viewer.wait_for_timeout(300)
            for _ in range(block):
                if links and not busy(opener):
                    open_without_waiting(opener, next_link())
                times["loaded" if loaded else "alone"].append(concurrency.timed_press(viewer, slider, key))
                viewer.wait_for_timeout(600)
            if blocks % 4 == 0:  # back and forth: every press a new flow
                key = "ArrowRight" if key == "ArrowLeft" else "ArrowLeft"
        hold(training=True)
        concurrency.stop_training_processes(server_pid)
        for browser in browsers:
            browser.close()
    out = {name: concurrency.summary(values) for name, values in times.items()}
    out["p95_ratio"] = out["loaded"]["p95_ms"] / out["alone"]["p95_ms"]
    out["p50_ratio"] = out["loaded"]["p50_ms"] / out["alone"]["p50_ms"]
    out["block"] = block
    out["load"] = load
    out["worst_links_opened"] = opened[0]
    out["other_browsers"] = "idle class (elsewhere)" if others_elsewhere else "same priority as A's"
    return out


# --------------------------------------------------------------------------- part 3


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_specs(count: int) -> list[dict]:
    """Distinct flows at many resolutions, the heaviest each may ask for among them."""
    worst = list(worst_valid_specs().values())
    resolutions = [64, 128, 200, 256, 384, 512, 768, MAX_RESOLUTION]
    out = []
    for k in range(count):
        spec = nudged(worst[k % len(worst)], 10_000 + k)
        finest = max_resolution(parse_spec(spec))
        wanted = resolutions[(k // len(worst)) % len(resolutions)]
        out.append({**spec, "view": {**spec["view"], "resolution": min(wanted, finest)}})
    return out


def memory_loop(url: str, server_pid: int, count: int) -> dict:
    from playwright.sync_api import sync_playwright

    samples = [resident_mb(server_pid)]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        for k, spec in enumerate(memory_specs(count)):
            page.goto(f"{url}/explore?spec={encode_token(parse_spec(spec))}")
            concurrency.wait_idle(page, 120_000)
            page.wait_for_timeout(200)
            concurrency.wait_idle(page, 120_000)
            samples.append(resident_mb(server_pid))
            if k % 25 == 24:
                print(f"  {k + 1} specs opened, server {samples[-1]:.0f} MB", file=sys.stderr, flush=True)
        browser.close()
    return {
        "specs_opened": count,
        "resident_mb_start": samples[0],
        "resident_mb_peak": max(samples),
        "resident_mb_end": samples[-1],
        "resident_mb_by_tenth": samples[:: max(1, len(samples) // 10)],
        "ceiling_mb": MEMORY_CEILING_MB,
        "below_ceiling": max(samples) < MEMORY_CEILING_MB,
    }


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run of every part")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["specs", "starvation", "memory"],
        help="parts not to run; their figures in --out are kept",
    )
    parser.add_argument("--presses", type=int, help="slider presses per phase (10 quick, 20 full)")
    parser.add_argument(
        "--others-elsewhere",
        action="store_true",
        help="B's and C's browsers in the idle scheduling class, as if on their own computers (figures under starvation_elsewhere)",
    )
    parser.add_argument(
        "--interleave",
        type=int,
        metavar="K",
        help="instead of the phases: alone and loaded (training and worst links) in alternating blocks of K presses",
    )
    parser.add_argument(
        "--load",
        choices=["both", "training", "links"],
        default="both",
        help="with --interleave, what the loaded blocks hold (a diagnosis: the target is for both)",
    )
    parser.add_argument("--loop", type=int, help="specs opened in the memory loop (40 quick, 300 full)")
    args = parser.parse_args(argv)
    repeats, presses, blocks, loop = (1, 10, 1, 40) if args.quick else (3, 20, 2, 300)
    presses, loop = args.presses or presses, args.loop or loop

    previous = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    report: dict = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "budget_s": ANSWER_SECONDS,
        "limits": {
            "resolution": MAX_RESOLUTION,
            "layers": MAX_LAYERS,
            "mixture_components": MAX_MIXTURE_COMPONENTS,
            "spline_bins": MAX_SPLINE_BINS,
            "piecewise_knots": MAX_KNOTS,
            "grid_work": MAX_GRID_WORK,
        },
        "load_average_before": os.getloadavg(),
    }
    if "specs" not in args.skip:
        report["worst_valid_specs"] = rows = worst_specs_table(repeats)
        report["refused"] = refused = refusals()
        print(f"Worst valid specs (median of {repeats}; budget {ANSWER_SECONDS} s on a quiet 2-core machine)")
        print(
            f"{'spec':<30}{'N':>6}{'cost/pt':>9}{'evaluate s':>12}{'layer-by-layer s':>18}{'page s':>8}{'÷ plain':>9}{'strip s':>9}"
        )
        for row in rows:
            print(
                f"{row['spec']:<30}{row['resolution']:>6}{row['point_cost']:>9.0f}{row['evaluate_s']:>12.2f}"
                f"{row['layer_by_layer_s']:>18.2f}{row['page_s']:>8.2f}{row['page_vs_plain']:>9.2f}{row['slider_strip_s']:>9.2f}"
            )
        for row in refused:
            print(f"refused in {row['refused_in_ms']:6.1f} ms: {row['spec']}: {row['message'][:90]}")
    if "starvation" not in args.skip or "memory" not in args.skip:
        proc, url = start_app()
        try:
            if "starvation" not in args.skip and args.interleave:
                key = "starvation_interleaved" + ("_elsewhere" if args.others_elsewhere else "")
                if args.load != "both":
                    key += "_" + args.load + "_only"
                report[key] = s = interleaved(
                    url, proc.pid, presses, args.interleave, args.others_elsewhere, args.load
                )
                for kept in ("starvation", "starvation_elsewhere"):
                    if kept in previous:
                        report[kept] = previous[kept]
                print(f"other visitors' browsers: {s['other_browsers']}; blocks of {s['block']} presses")
                for name in ("alone", "loaded"):
                    row = s[name]
                    print(f"{name:<10}{row['p50_ms']:>8.0f}{row['p95_ms']:>8.0f}{row['n']:>5}")
                print(
                    f"target: p95 loaded within 2x alone: {s['p95_ratio']:.2f} ({s['worst_links_opened']} worst links)"
                )
            elif "starvation" not in args.skip:
                key = "starvation_elsewhere" if args.others_elsewhere else "starvation"
                report[key] = s = starvation(url, proc.pid, presses, blocks, args.others_elsewhere)
                print(f"other visitors' browsers: {s['other_browsers']}")
                kept = "starvation" if args.others_elsewhere else "starvation_elsewhere"
                if kept in previous:  # the figures of the other way of running are kept
                    report[kept] = previous[kept]
                print("Session A's slider, key press -> chart updated (ms)")
                print(f"{'':<34}{'p50':>8}{'p95':>8}{'n':>5}{'p95 ÷ alone':>13}{'B links':>9}")
                for name in PHASES:
                    row = s[name]
                    print(
                        f"{name:<34}{row['p50_ms']:>8.0f}{row['p95_ms']:>8.0f}{row['n']:>5}"
                        f"{row.get('p95_ratio', 1.0):>13.2f}{sum(s['worst_links_opened'][name]):>9}"
                    )
                print(f"target: p95 with training and worst links within 2x alone: {s['p95_ratio']:.2f}")
                print(f"C's run at the end of each phase with training: {s['training_at_phase_end']}")
            if "memory" not in args.skip:
                report["memory"] = m = memory_loop(url, proc.pid, loop)
                print(
                    f"Server memory over {m['specs_opened']} distinct specs: start {m['resident_mb_start']:.0f} MB, "
                    f"peak {m['resident_mb_peak']:.0f} MB, end {m['resident_mb_end']:.0f} MB "
                    f"(ceiling {m['ceiling_mb']} MB)"
                )
        finally:
            stop_app(proc)
    report["load_average_after"] = os.getloadavg()
    for part, keys in (
        ("specs", ("worst_valid_specs", "refused")),
        ("starvation", tuple(key for key in previous if key.startswith("starvation"))),
        ("memory", ("memory",)),
    ):
        if part in args.skip:  # a part not run this time keeps its earlier figures
            report.update({key: previous[key] for key in keys if key in previous})
    write_json(Path(args.out), report)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
