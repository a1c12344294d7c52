"""The Train page's pictures of a finished model: its density, samples, latent codes and trace.

They are computed once per model and data set and shared: the key is the flow's content
(:func:`flowviz.grid.flow_key`) and the data's bytes, so a model loaded from a file in one
session and trained to the same weights in another share one entry.
"""

from __future__ import annotations

import numpy as np
import torch

from flowviz.flow import Flow
from flowviz.grid import as_float64, evaluate_flow, flow_key
from flowviz.memo import array_cache, digest
from flowviz.plots.train import data_window


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
