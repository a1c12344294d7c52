"""Does one person's training stall another person's page?

One app server, two browsers (two sessions). Browser B sits on the Explorer and
presses an arrow key on a slider; we time key press -> every chart shows new data
and the script is idle (the Explorer's own latency measure). That is done
``--presses`` times with nobody training; again while browser A trains a flow on
the Train page (two moons, 1000 points, a long run) and watches it (its page
redraws the curves, density and samples twice a second); and again after A has
left, the training process going on alone. All on the same 2 cores: the server,
the training process and both browsers. The training's speed is read from A's
progress line.

Run: ``.venv/bin/python bench/concurrency.py``; writes bench/results/train_concurrency.json.
The machine is shared: both conditions run in the same process, alternating in
blocks, and the report gives medians and 95th percentiles.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import time_slider_key  # noqa: E402
from tests.conftest import CHROMIUM_FLAGS, IDLE, start_app  # noqa: E402

FINGERPRINT_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => {
  const images = (g.layout && g.layout.images) ? g.layout.images.map(i => i.source.length + ':' + i.source.slice(-48)) : [];
  const traces = (g.data || []).map(t => (t.z ? t.z.length : 0) + ':' + (t.x ? t.x.length : 0)
      + ':' + (t.x && t.x.length ? t.x[0] : '') + ':' + (t.y && t.y.length ? t.y[t.y.length - 1] : ''));
  return images.join('|') + '#' + traces.join(',');
})"""


def wait_idle(page, timeout: float = 60_000) -> None:
    page.wait_for_selector(IDLE, timeout=timeout)


def open_app(page, url: str, path: str = "") -> None:
    page.goto(url + "/" + path)
    wait_idle(page)
    page.wait_for_timeout(500)
    wait_idle(page)


def timed_press(page, slider, key: str, timeout: float = 30_000) -> float:
    """Milliseconds from a key press on a focused slider until the charts changed and the script is idle."""
    before = page.evaluate(FINGERPRINT_JS)
    return time_slider_key(page, slider, key, before, timeout, every=False, fingerprint_js=FINGERPRINT_JS)


_blocks_measured = [0]


def measure(page, slider, presses: int) -> list[float]:
    # One direction in a block, back in the next: every press is a flow not seen just before.
    key = "ArrowLeft" if _blocks_measured[0] % 2 == 0 else "ArrowRight"
    _blocks_measured[0] += 1
    times = []
    for _ in range(presses):
        times.append(timed_press(page, slider, key))
        page.wait_for_timeout(600)  # a pause, as a person looks
    return times


def start_training(page) -> None:
    page.get_by_text("Pick a toy data set").first.click()
    wait_idle(page)
    steps = page.get_by_role("slider", name="Training steps")
    steps.focus()
    steps.press("End")  # the longest run: it keeps training while we measure
    wait_idle(page)
    early = page.get_by_role("checkbox", name="Early stopping on the validation NLL")
    if early.is_checked():  # (a toy set's NLL levels off: the run would stop early, mid-measure)
        early.focus()
        page.keyboard.press("Space")  # (a click may land on the page's sticky header)
        wait_idle(page)
        assert not early.is_checked()
    page.get_by_role("button", name="Start training", exact=True).click()
    page.wait_for_selector("text=/steps\\/s/", timeout=60_000)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def training_pids(server_pid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == server_pid and b"multiprocessing" in command:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU share (in cores) of the server and of its training processes over a measured phase."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.started = time.perf_counter()
        self.server0 = cpu_seconds(server_pid)
        self.training0 = {pid: cpu_seconds(pid) for pid in training_pids(server_pid)}

    def shares(self) -> dict:
        wall = time.perf_counter() - self.started
        server = (cpu_seconds(self.server_pid) - self.server0) / wall
        training = sum(
            cpu_seconds(pid) - self.training0.get(pid, 0.0) for pid in training_pids(self.server_pid)
        )
        return {"server_cores": round(server, 3), "training_cores": round(training / wall, 3)}


def stop_training_processes(server_pid: int) -> None:
    """End the training processes that the bench's own server started (found by parent id)."""
    for pid in training_pids(server_pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(times), "p50_ms": statistics.median(times), "p95_ms": p95, "all_ms": times}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=16, help="key presses per block")
    parser.add_argument("--blocks", type=int, default=2, help="alternating idle/training blocks")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_concurrency.json"))
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    proc, url = start_app()
    idle: list[float] = []
    busy: list[float] = []
    unwatched: list[float] = []
    cpu: dict[str, list[dict]] = {
        "without_training": [],
        "with_training": [],
        "with_training_nobody_watching": [],
    }
    rates: list[float] = []
    try:
        with sync_playwright() as playwright:
            browser_a = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
            )
            browser_b = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS
            )
            trainer_page = browser_a.new_page(viewport={"width": 1400, "height": 1000})
            viewer = browser_b.new_page(viewport={"width": 1400, "height": 1000})
            for page in (trainer_page, viewer):
                page.set_default_timeout(60_000)
            open_app(viewer, url)
            open_app(trainer_page, url)
            open_app(trainer_page, url, "train")
            slider = viewer.get_by_role("slider", name="Planar direction w₁")
            slider.focus()
            measure(viewer, slider, 3)  # warm-up
            for _ in range(args.blocks):
                meter = CpuMeter(proc.pid)
                idle += measure(viewer, slider, args.presses)
                cpu["without_training"].append(meter.shares())
                start_training(trainer_page)
                trainer_page.wait_for_timeout(2000)
                meter = CpuMeter(proc.pid)
                busy += measure(viewer, slider, args.presses)
                cpu["with_training"].append(meter.shares())
                text = trainer_page.locator("text=/steps\\/s/").first.inner_text()
                match = re.search(r"(\d+) steps/s", text)
                if match:
                    rates.append(float(match.group(1)))
                # The trainer leaves: the process trains on, but no page redraws it twice a second.
                trainer_page.goto("about:blank")
                viewer.wait_for_timeout(2000)
                meter = CpuMeter(proc.pid)
                unwatched += measure(viewer, slider, args.presses)
                cpu["with_training_nobody_watching"].append(meter.shares())
                stop_training_processes(proc.pid)
                open_app(trainer_page, url, "train")
            browser_a.close()
            browser_b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    report = {
        "what": "Explorer slider key press -> charts updated and script idle, in a second browser, "
        "without and with another session training on the Train page",
        "without_training": summary(idle),
        "with_training": summary(busy),
        "with_training_nobody_watching": summary(unwatched),
        "training_steps_per_second_seen": rates,
        "cpu_cores_used_per_phase": cpu,
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'':<32}{'p50 ms':>8}{'p95 ms':>8}{'n':>4}{'server':>10}{'training':>10}  (CPU, cores)")
    for name in ("without_training", "with_training", "with_training_nobody_watching"):
        row = report[name]
        shares = cpu[name]
        server = statistics.mean(c["server_cores"] for c in shares) if shares else float("nan")
        training = statistics.mean(c["training_cores"] for c in shares) if shares else float("nan")
        print(
            f"{name:<32}{row['p50_ms']:>8.0f}{row['p95_ms']:>8.0f}{row['n']:>4}"
            f"{server:>10.2f}{training:>10.2f}"
        )
    print(f"training speed seen while measuring: {rates} steps/s")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
