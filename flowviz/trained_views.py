"""The Train page's pictures: of a run being watched (:func:`live_figures`) and of a
finished model (its density, samples, latent codes and trace).


A finished model's pictures are computed once per model and data set and shared: the key is the flow's content
(:func:`flowviz.grid.flow_key`) and the data's bytes, so a model loaded from a file in one
session and trained to the same weights in another share one entry.
"""

from __future__ import annotations

import numpy as np
import torch

from flowviz.flow import Flow
from flowviz.grid import as_float64, evaluate_flow, flow_key, grid_points
from flowviz.memo import array_cache, digest
from flowviz.plots.train import data_window, density_figure, loss_figure, samples_figure

LIVE_RESOLUTION = 96  # a picture redrawn twice a second: coarse, and in the flow's own float32
LIVE_SAMPLES = 800


# At 200² the grid's arrays are about 3 MB, the samples, latent codes and trace some hundred kB:
# 32 MB keeps the last few models (a person switching between a trained and a loaded one).
@array_cache(
    max_bytes=32 * 2**20,
    max_entries=8,
    key=lambda flow, data, resolution: (
        flow_key(flow),
        digest(data if data is not None else "no data"),
        int(resolution),
    ),
)
@torch.no_grad()
def finished_views(flow: Flow, data: np.ndarray | None, resolution: int) -> dict:
    """``window`` (the data's), ``grid`` (:func:`evaluate_flow` at ``resolution``), 2000
    ``samples``, the data's ``latent`` codes f⁻¹(x) when there is data, and the ``trace`` of 600
    base draws through every layer. Shared between sessions: read, never change."""
    flow64 = as_float64(flow)
    window = data_window(data)
    views: dict = {"window": window}
    views["grid"] = evaluate_flow(flow64, {**window, "resolution": resolution})
    views["samples"] = flow64.sample(2000, seed=2).numpy()
    if data is not None:
        views["latent"] = flow64.inverse(torch.as_tensor(data, dtype=torch.float64)).numpy()
    z0 = flow64.sample_base(600, seed=3)
    views["trace"] = [p.numpy() for p in flow64.trace_forward(z0)]
    return views


@torch.no_grad()
def live_grid(flow: Flow, window: dict, resolution: int = LIVE_RESOLUTION) -> dict:
    """The density alone, in the flow's own float32: all a live picture needs, at a third of the cost."""
    xs, ys, points = grid_points({**window, "resolution": resolution})
    log_density = flow.log_prob(points.to(torch.float32)).double().reshape(len(ys), len(xs)).numpy()
    return {"x": xs, "y": ys, "log_density": log_density, "density": np.exp(log_density)}


@torch.no_grad()
def live_figures(flow: Flow, data: np.ndarray, history: list, best_step: int | None) -> dict[str, dict]:
    """The three pictures of a run being watched (loss curves, density, samples), in plotly's
    JSON form (NumPy arrays inside).

    The training process makes them itself, where the flow is, and hands them over whole:
    built in the server, their torch and plotly work (about 100 ms twice a second) would hold
    the interpreter lock that every visitor's script shares, and a slider moved in another
    session would wait for it.
    """
    window = data_window(data)
    samples = as_float64(flow).sample(LIVE_SAMPLES, seed=1).numpy()
    return {
        "loss": loss_figure(history, best_step or None).to_plotly_json(),
        "density": density_figure(live_grid(flow, window), data).to_plotly_json(),
        "samples": samples_figure(samples, data, window).to_plotly_json(),
    }
