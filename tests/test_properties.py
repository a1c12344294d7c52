"""Properties of random valid specs (hypothesis): the contract holds for every stack, not just chosen ones.

Random bases, 0 to 6 random layers of every type with random valid parameters
(optional fields sometimes left out, integers sometimes where floats are
expected, some layers switched off), random small views. For each:

- ``flowviz.evaluate`` keeps the contract: no NaN but in ``log_det_inverse`` outside
  the image; density = exp(log_density); log_density = base_log_prob + log_det_inverse
  where both are finite; mass is the Riemann sum;
- the canonical spec survives a URL token and a second parse unchanged.
"""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowviz
from flowviz import decode_token, encode_token, parse_spec
from flowviz.layers import LAYER_CLASSES

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def number(lo: float, hi: float) -> st.SearchStrategy:
    """A finite number in [lo, hi], sometimes written as an integer."""
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return (
        st.one_of(floats, st.integers(math.ceil(lo), math.floor(hi)))
        if math.floor(hi) >= math.ceil(lo)
        else floats
    )


def positive(lo: float, hi: float) -> st.SearchStrategy:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def point(lo: float = -3.0, hi: float = 3.0) -> st.SearchStrategy:
    return st.lists(number(lo, hi), min_size=2, max_size=2)


def scalar_function() -> st.SearchStrategy:
    three = st.lists(number(-2, 2), min_size=3, max_size=3)
    return st.fixed_dictionaries({}, optional={"sin": three, "poly": three})


def spec_layer(kind: str, required: dict, optional: dict | None = None) -> st.SearchStrategy:
    return st.fixed_dictionaries({"type": st.just(kind), **required}, optional=optional or {})


@st.composite
def affine(draw) -> dict:
    matrix = draw(
        st.lists(st.lists(number(-3, 3), min_size=2, max_size=2), min_size=2, max_size=2).filter(
            lambda m: abs(m[0][0] * m[1][1] - m[0][1] * m[1][0]) > 0.05
        )
    )
    layer = {"type": "affine", "matrix": matrix}
    if draw(st.booleans()):
        layer["shift"] = draw(point())
    return layer


@st.composite
def planar(draw) -> dict:
    w, u = draw(point()), draw(point())
    if w[0] * u[0] + w[1] * u[1] <= -0.999:
        u = [-u[0], -u[1]]  # w.u >= 0.999 now
    layer = {"type": "planar", "w": w, "u": u}
    if draw(st.booleans()):
        layer["b"] = draw(number(-2, 2))
    return layer


@st.composite
def radial(draw) -> dict:
    alpha = draw(positive(0.05, 3))
    beta = draw(st.floats(-alpha * 0.999, 4, allow_nan=False))
    layer = {"type": "radial", "beta": beta, "alpha": alpha}
    if draw(st.booleans()):
        layer["center"] = draw(point(-2, 2))
    return layer


DIMS = st.sampled_from([[0], [1], [0, 1], [1, 0]])


@st.composite
def spline(draw) -> dict:
    bins = draw(st.integers(1, 8))
    sizes = st.lists(positive(0.05, 5), min_size=bins, max_size=bins)
    layer = {
        "type": "spline",
        "widths": draw(sizes),
        "heights": draw(sizes),
        "derivatives": draw(st.lists(positive(0.05, 10), min_size=bins - 1, max_size=bins - 1)),
    }
    if draw(st.booleans()):
        layer["bound"] = draw(positive(0.5, 5))
    if draw(st.booleans()):
        layer["dims"] = draw(DIMS)
    return layer


@st.composite
def piecewise_linear(draw) -> dict:
    knots = sorted(set(draw(st.lists(number(-4, 4), min_size=1, max_size=5))))
    slopes = draw(st.lists(positive(0.05, 10), min_size=len(knots) + 1, max_size=len(knots) + 1))
    layer = {"type": "piecewise_linear", "knots": knots, "slopes": slopes}
    if draw(st.booleans()):
        layer["dims"] = draw(DIMS)
    return layer


LAYERS: dict[str, st.SearchStrategy] = {
    "affine": affine(),
    "shift": spec_layer("shift", {"shift": point()}),
    "scale": spec_layer(
        "scale",
        {
            "scale": st.lists(
                st.one_of(positive(0.1, 5), positive(0.1, 5).map(lambda v: -v)), min_size=2, max_size=2
            )
        },
    ),
    "rotation": spec_layer("rotation", {"degrees": number(-720, 720)}),
    "swap": st.just({"type": "swap"}),
    "exp": st.just({"type": "exp"}),
    "tanh": st.just({"type": "tanh"}),
    "sigmoid": st.just({"type": "sigmoid"}),
    "softplus": st.just({"type": "softplus"}),
    "leaky_relu": spec_layer("leaky_relu", {}, {"negative_slope": positive(0.01, 10)}),
    "sinh_arcsinh": spec_layer("sinh_arcsinh", {}, {"skew": number(-2, 2), "tailweight": positive(0.1, 3)}),
    "planar": planar(),
    "radial": radial(),
    "coupling": spec_layer(
        "coupling",
        {},
        {"condition_on": st.sampled_from([0, 1]), "shift": scalar_function(), "log_scale": scalar_function()},
    ),
    "swirl": spec_layer(
        "swirl", {"strength": number(-10, 10)}, {"center": point(-2, 2), "radius": positive(0.1, 4)}
    ),
    "spline": spline(),
    "piecewise_linear": piecewise_linear(),
}


@st.composite
def layer(draw) -> dict:
    out = dict(draw(st.sampled_from(sorted(LAYERS)).flatmap(lambda kind: LAYERS[kind])))
    switch = draw(st.sampled_from([None, None, None, True, False]))
    if switch is not None:
        out["enabled"] = switch
    return out


@st.composite
def gaussian(draw, with_type: bool = True) -> dict:
    a, c = draw(positive(0.2, 2)), draw(positive(0.2, 2))
    b = draw(number(-1.5, 1.5))
    base = {"type": "gaussian"} if with_type else {}
    if draw(st.booleans()):
        base["mean"] = draw(point(-2, 2))
    if draw(st.booleans()):
        base["cov"] = [[a * a, a * b], [b * a, b * b + c * c]]  # L L^T: symmetric, positive definite
    return base


@st.composite
def uniform(draw) -> dict:
    low = draw(point(-3, 2))
    width = draw(st.lists(positive(0.1, 4), min_size=2, max_size=2))
    return {"type": "uniform", "low": low, "high": [low[0] + width[0], low[1] + width[1]]}


@st.composite
def mixture(draw) -> dict:
    components = draw(st.lists(gaussian(with_type=draw(st.booleans())), min_size=1, max_size=3))
    base = {"type": "mixture", "components": components}
    if draw(st.booleans()):
        base["weights"] = draw(
            st.lists(positive(0.1, 10), min_size=len(components), max_size=len(components))
        )
    return base


@st.composite
def view(draw) -> dict | None:
    if draw(st.booleans()):
        return None
    x0, y0 = draw(number(-6, 1)), draw(number(-6, 1))
    w, h = draw(positive(0.5, 10)), draw(positive(0.5, 10))
    return {"xlim": [x0, x0 + w], "ylim": [y0, y0 + h], "resolution": draw(st.integers(2, 14))}


@st.composite
def specs(draw) -> dict:
    spec = {
        "base": draw(st.one_of(gaussian(), uniform(), mixture())),
        "layers": draw(st.lists(layer(), max_size=6)),
    }
    chosen_view = draw(view())
    if chosen_view is not None:
        spec["view"] = chosen_view
    if draw(st.booleans()):
        spec["version"] = 1
    return spec


def test_strategies_cover_every_layer_type():
    assert set(LAYERS) == set(LAYER_CLASSES)


@SETTINGS
@given(specs())
def test_evaluate_keeps_the_contract(spec):
    canonical = parse_spec(spec)
    resolution = canonical["view"]["resolution"]
    arrays = flowviz.evaluate(spec, resolution=min(resolution, 14))
    n = len(arrays["x"])
    assert all(
        arrays[k].shape == (n, n) for k in ("density", "log_density", "base_log_prob", "log_det_inverse")
    )
    assert np.isfinite(arrays["x"]).all() and np.isfinite(arrays["y"]).all()
    for key in ("density", "log_density", "base_log_prob", "log_det_forward"):
        assert not np.isnan(arrays[key]).any(), key
    assert np.all(arrays["density"] >= 0)
    assert not (arrays["log_density"] == np.inf).any() and not (arrays["base_log_prob"] == np.inf).any()

    outside = arrays["base_log_prob"] == -np.inf
    ldi = arrays["log_det_inverse"]
    not_finite = ~np.isfinite(ldi)
    assert np.all(outside[not_finite]), "log_det_inverse is not finite at a point inside the image"
    assert np.all(np.isnan(ldi[not_finite]) | (ldi[not_finite] == -np.inf))
    assert np.all(arrays["log_density"][outside] == -np.inf) and np.all(arrays["density"][outside] == 0)

    both = np.isfinite(arrays["base_log_prob"]) & np.isfinite(ldi)
    np.testing.assert_allclose(
        arrays["log_density"][both], arrays["base_log_prob"][both] + ldi[both], rtol=1e-12, atol=1e-12
    )
    assert np.all(arrays["log_density"][~both] == -np.inf)
    np.testing.assert_allclose(arrays["density"], np.exp(arrays["log_density"]), rtol=1e-13, atol=0)

    (x0, x1), (y0, y1) = canonical["view"]["xlim"], canonical["view"]["ylim"]
    cell = (x1 - x0) / (n - 1) * (y1 - y0) / (n - 1)
    assert math.isclose(float(arrays["mass"]), arrays["density"].sum() * cell, rel_tol=1e-12, abs_tol=1e-300)


@SETTINGS
@given(specs())
def test_token_round_trip_and_idempotent_parse(spec):
    canonical = parse_spec(spec)
    assert decode_token(encode_token(canonical)) == canonical
    assert decode_token(encode_token(spec)) == canonical
    assert parse_spec(canonical) == canonical
    assert parse_spec(json.dumps(spec)) == canonical
    # The canonical JSON is stable text: the same spec gives the same cache key.
    assert json.dumps(parse_spec(json.loads(json.dumps(canonical)))) == json.dumps(canonical)
