"""Grid evaluation against the naive route: analytic log-dets versus autograd Jacobians.

For an eight-layer stack (coupling, planar, radial, swirl, spline, sinh-arcsinh,
rotation, affine) this times, at 128^2, 256^2 and 512^2 points,

- ``evaluate``: everything ``flowviz.evaluate`` computes (density, both log-det
  terms, the forward log-det, mass) through ``flowviz.grid.evaluate_flow`` on a
  freshly built Flow, so no cache is involved;
- ``naive``: the forward log-det alone, by autograd, ``torch.func.vmap(torch.func.jacrev(flow.forward))``
  and ``torch.linalg.slogdet``, on the same points.

Prints a table and writes bench/results/grid.json. Run: ``.venv/bin/python bench/grid.py``.
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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowviz.flow import Flow  # noqa: E402
from flowviz.grid import evaluate_flow, grid_points  # noqa: E402

SPEC = {
    "base": {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0.3], [0.3, 1]]},
    "layers": [
        {
            "type": "coupling",
            "condition_on": 0,
            "shift": {"poly": [-1, 0, 0.5]},
            "log_scale": {"sin": [0.3, 1, 0]},
        },
        {"type": "planar", "w": [1.5, -0.5], "u": [0.8, 0.9], "b": 0.2},
        {"type": "radial", "center": [0.3, -0.2], "alpha": 0.7, "beta": 1.4},
        {"type": "swirl", "center": [0, 0.5], "strength": 2.5, "radius": 1.5},
        {
            "type": "spline",
            "bound": 3,
            "widths": [1, 2, 1, 3],
            "heights": [2, 1, 3, 1],
            "derivatives": [0.5, 2, 1],
        },
        {"type": "sinh_arcsinh", "skew": 0.3, "tailweight": 0.9},
        {"type": "rotation", "degrees": 20},
        {"type": "affine", "matrix": [[1.1, 0.3], [-0.2, 0.9]], "shift": [0.1, 0]},
    ],
    "view": {"xlim": [-5, 5], "ylim": [-5, 5], "resolution": 256},
}
RESOLUTIONS = (128, 256, 512)


def time_evaluate(view: dict) -> float:
    start = time.perf_counter()
    evaluate_flow(Flow.from_spec(SPEC), view)
    return time.perf_counter() - start


def time_naive(view: dict) -> float:
    flow = Flow.from_spec(SPEC)
    _, _, points = grid_points(view)
    start = time.perf_counter()
    jacobians = torch.func.vmap(torch.func.jacrev(flow.forward))(points)
    torch.linalg.slogdet(jacobians)
    return time.perf_counter() - start


def check_agreement(view: dict) -> float:
    """Largest |analytic - autograd| forward log-det on the grid: both routes compute the same thing."""
    flow = Flow.from_spec(SPEC)
    _, _, points = grid_points(view)
    analytic = evaluate_flow(flow, view)["log_det_forward"].ravel()
    autograd = torch.linalg.slogdet(torch.func.vmap(torch.func.jacrev(flow.forward))(points))[1].numpy()
    return float(np.max(np.abs(analytic - autograd)))


def measure_pair(view: dict, repeats: int) -> dict[str, list[float]]:
    """Timings in ms, evaluate and naive alternating, so that both meet the same machine load."""
    time_evaluate(view)  # warm-up: first calls pay for allocation and dispatch caches
    time_naive(view)
    samples: dict[str, list[float]] = {"evaluate": [], "naive": []}
    for _ in range(repeats):
        samples["evaluate"].append(1000.0 * time_evaluate(view))
        samples["naive"].append(1000.0 * time_naive(view))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="timed runs per cell (median reported)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "grid.json"))
    args = parser.parse_args()

    rows = []
    print(
        f"{'resolution':>10} {'evaluate ms':>12} {'naive ms':>10} {'naive / evaluate':>17}   (median; min in brackets)"
    )
    for n in RESOLUTIONS:
        view = {**SPEC["view"], "resolution": n}
        repeats = args.repeats if n < 512 else max(3, args.repeats // 2)
        samples = measure_pair(view, repeats)
        evaluate_ms, naive_ms = statistics.median(samples["evaluate"]), statistics.median(samples["naive"])
        rows.append(
            {
                "resolution": n,
                "points": n * n,
                "evaluate_ms": round(evaluate_ms, 2),
                "naive_forward_log_det_ms": round(naive_ms, 2),
                "naive_over_evaluate": round(naive_ms / evaluate_ms, 3),
                "evaluate_min_ms": round(min(samples["evaluate"]), 2),
                "naive_min_ms": round(min(samples["naive"]), 2),
                "repeats": repeats,
            }
        )
        print(
            f"{f'{n}^2':>10} {evaluate_ms:7.1f} ({min(samples['evaluate']):5.1f}) "
            f"{naive_ms:7.1f} ({min(samples['naive']):5.1f}) {naive_ms / evaluate_ms:10.2f}"
        )

    max_difference = check_agreement({**SPEC["view"], "resolution": 64})
    print(f"analytic vs autograd forward log-det at 64^2: max |difference| = {max_difference:.2e}")
    result = {
        "benchmark": "grid evaluation of an eight-layer stack: flowviz evaluate_flow vs autograd Jacobians",
        "stack": [layer["type"] for layer in SPEC["layers"]],
        "spec": SPEC,
        "rows": rows,
        "timing": "median of alternating runs (evaluate, naive, evaluate, ...) after one warm-up of each",
        "target": "at 256^2, evaluate (all arrays) takes no longer than the naive forward log-det alone",
        "target_met": next(r for r in rows if r["resolution"] == 256)["naive_over_evaluate"] >= 1.0,
        "max_abs_log_det_difference_64": max_difference,
        "machine": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
