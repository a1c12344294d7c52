"""The arrays behind the Explorer's extra views, against the grid evaluation and the layers themselves."""

from __future__ import annotations

import math

import numpy as np
import torch

import flowviz
from flowviz.explorer import explorer_steps, steps_of_flow
from flowviz.flow import Flow
from flowviz.presets import FLOW_PRESETS
from flowviz.spec import canonical_json, parse_spec


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


# --------------------------------------------------------------------------- what the mass readout can be trusted for


def _notes(spec: dict) -> list[str]:
    import json

    from flowviz.explorer import explorer_fields, explorer_samples, inside_fraction, mass_notes

    canonical = canonical_json(spec)
    fields = explorer_fields(canonical)
    inside = inside_fraction(explorer_samples(canonical, 2000)[1], json.loads(canonical)["view"])
    return [text for _, text in mass_notes(float(fields["mass"]), fields["log_det_forward"], inside)]


def _spec(base: dict, layers: list, resolution: int = 96) -> dict:
    return {
        "base": base,
        "layers": layers,
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": resolution},
    }


def test_a_mass_above_one_is_called_no_probability():
    """Correlation 1 - 1e-16: the grid sum reads millions (it read 1,076,221 silently)."""
    cov = [[1, 1 - 1e-16], [1 - 1e-16, 1]]
    (note,) = _notes(_spec({"type": "gaussian", "mean": [0, 0], "cov": cov}, []))
    assert "more than 1: not a probability" in note


def test_a_near_singular_map_is_named_with_its_squeeze():
    """An affine map of det 1e-11 squeezes area by 1e-11 (log|det J_f| = log 1e-11 on the whole grid)."""
    notes = _notes(_spec({"type": "gaussian"}, [{"type": "affine", "matrix": [[1e-5, 0], [0, 1e-6]]}]))
    assert notes[0].startswith("The map is near-singular: it squeezes area by a factor of up to 1e-11 ")
    assert "widen the view" not in " ".join(notes)


def test_widening_is_advised_only_where_it_helps():
    """A narrow peak between grid points reads ~0 but every sample lands in the window: not 'widen';
    a wide Gaussian (sigma 3) really has a third of its mass outside [-4, 4]^2: 'widen'."""
    narrow = _notes(
        _spec({"type": "gaussian", "mean": [0.0123, 0.0123], "cov": [[1e-5, 0], [0, 1e-5]]}, [], 64)
    )
    assert len(narrow) == 1 and "widening the view would not help" in narrow[0]
    wide = _notes(_spec({"type": "gaussian", "cov": [[9, 0], [0, 9]]}, [], 64))
    inside = math.erf(4 / (3 * math.sqrt(2))) ** 2  # the window's probability, closed form: 0.668
    (note,) = wide
    assert note.startswith("Part of the mass lies outside the window (only ") and note.endswith(
        "widen the view."
    )
    shown = float(note.split("only ")[1].split("%")[0]) / 100
    assert abs(shown - inside) < 0.015  # a 64^2 grid sum of the closed form
    assert _notes(_spec({"type": "gaussian"}, [{"type": "rotation", "degrees": 30}])) == []
