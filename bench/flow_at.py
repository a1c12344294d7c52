"""The cost of one frame of a played flow: ``evaluate_flow(flow.at(t))`` on a 128^2 grid.

A frame is built (``Flow.at(t)``) and evaluated (density, both log-det terms,
forward log-det, mass) for several flows at whole and fractional times. The
blended elementwise layers (exp, tanh, sigmoid, softplus at 0 < s < 1) invert by
a root solve and are the dearest; whole times cost what the flow's prefix costs.
Each figure is the median of ``--repeats`` runs after one warm-up, on one torch thread.

Prints a table and writes bench/results/flow_at.json. Run: ``.venv/bin/python bench/flow_at.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowviz.flow import Flow  # noqa: E402
from flowviz.grid import as_float64, evaluate_flow  # noqa: E402
from flowviz.train import ModelConfig, build_model  # noqa: E402

VIEW = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 128}

EIGHT_LAYERS = {
    "base": {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0.3], [0.3, 1]]},
    "layers": [
        {
            "type": "coupling",
            "condition_on": 0,
            "shift": {"poly": [-1, 0, 1]},
            "log_scale": {"sin": [0.3, 1, 0]},
        },
        {"type": "planar", "w": [2.0, 0.5], "u": [0.8, 0.4], "b": 0.1},
        {"type": "radial", "center": [0.5, 0.0], "alpha": 1.0, "beta": 1.5},
        {"type": "swirl", "center": [0.0, 0.0], "strength": 2.0, "radius": 1.5},
        {"type": "spline", "widths": [1, 2, 1, 3], "heights": [3, 1, 2, 1], "derivatives": [0.4, 3.0, 0.7]},
        {"type": "sinh_arcsinh", "skew": 0.3, "tailweight": 1.4},
        {"type": "rotation", "degrees": 30},
        {"type": "affine", "matrix": [[1.2, 0.3], [-0.2, 0.9]], "shift": [0.1, -0.2]},
    ],
}
ELEMENTWISE = {
    "base": {"type": "gaussian"},
    "layers": [
        {"type": "tanh"},
        {"type": "scale", "scale": [3.0, 3.0]},
        {"type": "exp"},
        {"type": "softplus"},
    ],
}


def _trained() -> Flow:
    """A neural spline flow of 4 couplings with random (non-trivial) weights: the cost, not the fit, matters."""
    flow = build_model(ModelConfig(layers=4))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return as_float64(flow.eval())


def _time(flow: Flow, t: float, repeats: int) -> float:
    evaluate_flow(flow.at(t), VIEW)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate_flow(flow.at(t), VIEW)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    flows = {
        "eight spec layers": (Flow.from_spec(EIGHT_LAYERS), [0.0, 4.0, 4.5, 5.5, 8.0]),
        "tanh, scale, exp, softplus": (Flow.from_spec(ELEMENTWISE), [0.5, 2.5, 3.5, 3.99, 4.0]),
        "trained nsf, 4 couplings": (_trained(), [1.5, 3.5, float(len(_trained().layers))]),
    }
    rows = []
    for name, (flow, times) in flows.items():
        for t in times:
            ms = _time(flow, t, args.repeats)
            rows.append({"flow": name, "t": t, "label": flow.time_label(t), "ms": round(ms, 2)})
            print(f"{name:30s} t = {t:5.2f}  {flow.time_label(t):36s} {ms:8.2f} ms")
    result = {
        "what": "evaluate_flow(flow.at(t)) at 128^2, median ms, one torch thread",
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    out = ROOT / "bench" / "results" / "flow_at.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
