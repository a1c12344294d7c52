"""The arrays behind the Explorer's extra views, against the grid evaluation and the layers themselves."""

from __future__ import annotations

import numpy as np
import torch

import flowviz
from flowviz.flow import Flow
from flowviz.presets import FLOW_PRESETS
from flowviz.spec import canonical_json, parse_spec
from flowviz.views import explorer_steps, steps_of_flow


def test_each_step_is_the_density_after_the_first_k_layers():
    spec = parse_spec(FLOW_PRESETS["planar and radial"][1])
    flow = Flow.from_spec(spec)
    titles = [f"step {k}" for k in range(len(flow.layers) + 1)]
    steps, xs, ys = steps_of_flow(flow, spec["view"], titles, resolution=48, n_points=50)
    assert [s.title for s in steps] == titles
    # the last step is the flow's density (evaluate on the same grid); the first is the base
    last = flowviz.evaluate({**spec, "view": {**spec["view"], "resolution": 48}})
    np.testing.assert_allclose(steps[-1].density, last["density"], rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(xs, last["x"])
    gx, gy = np.meshgrid(xs, ys)
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], -1))
    base = torch.exp(flow.base(torch.float64).log_prob(points)).reshape(48, 48).numpy()
    np.testing.assert_allclose(steps[0].density, base, rtol=1e-12)
    # the samples move layer by layer
    z = torch.from_numpy(steps[0].points)
    for k, layer in enumerate(flow.layers, start=1):
        z = layer.forward(z)
        np.testing.assert_allclose(steps[k].points, z.numpy(), rtol=1e-12, atol=1e-12)


def test_steps_are_cached_by_the_canonical_spec():
    spec = parse_spec(FLOW_PRESETS["banana"][1])
    titles = ("a", "b")
    assert explorer_steps(canonical_json(spec), titles) is explorer_steps(canonical_json(spec), titles)
