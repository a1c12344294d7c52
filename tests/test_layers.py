"""Every layer type, one table: exact inverses and log-dets against autograd, on whole grids.

One row per layer type (``CASES``) gives a seeded draw of valid parameters, a
reference forward map written from the formula of ``flow-spec.md`` (NumPy, not
the layer's code), and the edge points where bugs hide. Each row is checked on
a 25 x 25 grid of [-6, 6]^2 plus its edge points for

- the forward map against the reference,
- the inverse round trip,
- log|det J| against ``slogdet`` of autograd's Jacobian, forward at z and inverse at x = f(z),
- log|det J_{f^{-1}}(f(z))| = -log|det J_f(z)|,
- the declared ``jacobian`` structure against the autograd Jacobian.

A new layer type fails ``test_table_covers_every_layer_type`` until it has a row.
The saturated and far-tail branches, where autograd itself breaks down, are
checked against mpmath at high precision further below.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import numpy as np
import pytest
import torch

from flowviz.flow import Flow
from flowviz.layers import LAYER_CLASSES, Bijector, build_layer
from flowviz.spec import parse_spec

GRID = np.linspace(-6.0, 6.0, 25)
DRAWS = 18
ROUND_TRIP_TOL = 1e-9
LOG_DET_TOL = 1e-8


def canonical_layer(layer: dict) -> dict:
    """The canonical form of one layer, through the spec parser (so every draw is a valid spec)."""
    return parse_spec({"base": {"type": "gaussian"}, "layers": [layer]})["layers"][0]


# --------------------------------------------------------------------------- parameter draws


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _signed(rng: np.random.Generator, low: float, high: float) -> float:
    return _log_uniform(rng, low, high) * float(rng.choice([-1.0, 1.0]))


def draw_affine(rng: np.random.Generator, i: int) -> dict:
    while True:
        matrix = rng.normal(0.0, 1.5, (2, 2))
        if i == 1:  # nearly singular: det about 1e-3 of the entries' scale
            matrix[1] = matrix[0] * 0.7 + 1e-3 * rng.normal(size=2)
        det = matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0]
        if i == 1 or abs(det) > 0.05:
            break
    return {"type": "affine", "matrix": matrix.tolist(), "shift": rng.normal(0.0, 1.0, 2).tolist()}


def draw_shift(rng: np.random.Generator, i: int) -> dict:
    return {"type": "shift", "shift": rng.normal(0.0, 2.0, 2).tolist()}


def draw_scale(rng: np.random.Generator, i: int) -> dict:
    return {"type": "scale", "scale": [_signed(rng, 0.05, 20.0), _signed(rng, 0.05, 20.0)]}


def draw_rotation(rng: np.random.Generator, i: int) -> dict:
    fixed = [0.0, 90.0, 180.0, -270.0]
    return {"type": "rotation", "degrees": fixed[i] if i < len(fixed) else float(rng.uniform(-360, 360))}


def draw_leaky_relu(rng: np.random.Generator, i: int) -> dict:
    fixed = [0.05, 1.0, 5.0, 1e-3, 100.0]
    slope = fixed[i] if i < len(fixed) else _log_uniform(rng, 0.01, 100.0)
    return {"type": "leaky_relu", "negative_slope": slope}


def draw_sinh_arcsinh(rng: np.random.Generator, i: int) -> dict:
    return {
        "type": "sinh_arcsinh",
        "skew": float(rng.uniform(-2, 2)),
        "tailweight": _log_uniform(rng, 0.2, 4.0),
    }


def draw_planar(rng: np.random.Generator, i: int) -> dict:
    w, u = rng.normal(0.0, 1.5, 2), rng.normal(0.0, 1.5, 2)
    # Near the limit w.u -> -1 the map is nearly singular where w.z + b = 0.
    targets = {0: -1.0 + 1e-4, 1: -1.0 + 1e-2, 2: 20.0, 3: 0.0}
    wu = float(w @ u)
    target = targets.get(i, wu if wu > -0.98 else -0.98)
    u = u + (target - wu) * w / float(w @ w)
    return {"type": "planar", "w": w.tolist(), "u": u.tolist(), "b": float(rng.normal(0.0, 1.0))}


def draw_radial(rng: np.random.Generator, i: int) -> dict:
    alpha = _log_uniform(rng, 0.1, 5.0)
    betas = {0: -alpha * (1.0 - 1e-4), 1: 10.0, 2: -alpha * 0.9}
    beta = betas.get(i, float(rng.uniform(-alpha, 5.0)))
    return {"type": "radial", "center": rng.uniform(-2, 2, 2).tolist(), "alpha": alpha, "beta": beta}


def _scalar_function(rng: np.random.Generator, amplitude: float, slope: float, curve: float) -> dict:
    out = {}
    if rng.uniform() < 0.8:
        out["sin"] = [
            float(rng.uniform(-amplitude, amplitude)),
            float(rng.uniform(-2, 2)),
            float(rng.uniform(-3, 3)),
        ]
    if rng.uniform() < 0.8 or not out:
        out["poly"] = [
            float(rng.uniform(-1, 1)),
            float(rng.uniform(-slope, slope)),
            float(rng.uniform(-curve, curve)),
        ]
    return out


def draw_coupling(rng: np.random.Generator, i: int) -> dict:
    if i == 0:  # the banana of the spec
        return {"type": "coupling", "condition_on": 0, "shift": {"poly": [-1, 0, 1]}}
    return {
        "type": "coupling",
        "condition_on": i % 2,
        "shift": _scalar_function(rng, 2.0, 1.0, 0.3),
        # |g_s| stays below about 4 on the grid, so the scales stay within e^{+-4}.
        "log_scale": _scalar_function(rng, 1.0, 0.3, 0.05),
    }


def draw_swirl(rng: np.random.Generator, i: int) -> dict:
    return {
        "type": "swirl",
        "center": rng.uniform(-2, 2, 2).tolist(),
        "strength": float(rng.uniform(-8, 8)),
        "radius": _log_uniform(rng, 0.2, 4.0),
    }


DIMS_CYCLE = ([0, 1], [0], [1])


def draw_spline(rng: np.random.Generator, i: int) -> dict:
    bins = {0: 1, 1: 2, 2: 20, 3: 8, 4: 5}.get(i, int(rng.integers(1, 13)))
    widths = [_log_uniform(rng, 0.05, 1.0) for _ in range(bins)]
    heights = [_log_uniform(rng, 0.05, 1.0) for _ in range(bins)]
    derivatives = [_log_uniform(rng, 0.05, 20.0) for _ in range(bins - 1)]
    if i == 3:  # tiny bins beside large ones: bin sizes spread over three decades
        widths[2], heights[5] = 1e-3, 1e-3
    if i == 4:  # extreme slopes at the inner knots
        derivatives = [1e-3, 1e3, 1e-3, 1e3]
    return {
        "type": "spline",
        "dims": DIMS_CYCLE[i % 3],
        "bound": float(rng.uniform(1.0, 5.0)),
        "widths": widths,
        "heights": heights,
        "derivatives": derivatives,
    }


def draw_piecewise_linear(rng: np.random.Generator, i: int) -> dict:
    count = int(rng.integers(1, 7))
    knots = np.sort(rng.uniform(-5, 5, count))
    knots = knots + 0.05 * np.arange(count)  # at least 0.05 apart
    slopes = [_log_uniform(rng, 0.05, 20.0) for _ in range(count + 1)]
    return {"type": "piecewise_linear", "dims": DIMS_CYCLE[i % 3], "knots": knots.tolist(), "slopes": slopes}


def no_parameters(type_name: str) -> Callable[[np.random.Generator, int], dict]:
    return lambda rng, i: {"type": type_name}


# --------------------------------------------------------------------------- reference maps (from flow-spec.md)


def _rotate(d: np.ndarray, theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], -1)


def _scalar(g: dict, t: np.ndarray) -> np.ndarray:
    out = np.zeros_like(t)
    if "sin" in g:
        amplitude, frequency, phase = g["sin"]
        out += amplitude * np.sin(frequency * t + phase)
    if "poly" in g:
        c0, c1, c2 = g["poly"]
        out += c0 + c1 * t + c2 * t**2
    return out


def ref_coupling(p: dict, z: np.ndarray) -> np.ndarray:
    c, o = p["condition_on"], 1 - p["condition_on"]
    x = z.copy()
    x[:, o] = z[:, o] * np.exp(_scalar(p["log_scale"], z[:, c])) + _scalar(p["shift"], z[:, c])
    return x


def ref_swirl(p: dict, z: np.ndarray) -> np.ndarray:
    c = np.asarray(p["center"])
    r2 = ((z - c) ** 2).sum(-1)
    return c + _rotate(z - c, p["strength"] * np.exp(-r2 / (2 * p["radius"] ** 2)))


def ref_radial(p: dict, z: np.ndarray) -> np.ndarray:
    d = z - np.asarray(p["center"])
    r = np.sqrt((d**2).sum(-1, keepdims=True))
    return z + p["beta"] * d / (p["alpha"] + r)


def _on_dims(p: dict, z: np.ndarray, h: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    x = z.copy()
    for d in p["dims"]:
        x[:, d] = h(z[:, d])
    return x


def ref_piecewise_linear(p: dict, z: np.ndarray) -> np.ndarray:
    """h(t) = t_0 + the integral of the slope from t_0 to t (signed), segment by segment."""
    knots, slopes = np.asarray(p["knots"]), np.asarray(p["slopes"])
    edges = np.concatenate([[-np.inf], knots, [np.inf]])

    def h(t: np.ndarray) -> np.ndarray:
        out = np.full_like(t, knots[0])
        for k, s in enumerate(slopes):
            lo, hi = edges[k], edges[k + 1]
            above = np.clip(t, lo, hi) - np.clip(knots[0], lo, hi)  # signed length of [t_0, t] in segment k
            out += s * above
        return out

    return _on_dims(p, z, h)


REFERENCE: dict[str, Callable[[dict, np.ndarray], np.ndarray] | None] = {
    "affine": lambda p, z: z @ np.asarray(p["matrix"]).T + np.asarray(p["shift"]),
    "shift": lambda p, z: z + np.asarray(p["shift"]),
    "scale": lambda p, z: z * np.asarray(p["scale"]),
    "rotation": lambda p, z: _rotate(z, np.full(len(z), math.radians(p["degrees"]))),
    "swap": lambda p, z: z[:, ::-1].copy(),
    "exp": lambda p, z: np.exp(z),
    "tanh": lambda p, z: np.tanh(z),
    "sigmoid": lambda p, z: 1.0 / (1.0 + np.exp(-z)),
    "softplus": lambda p, z: np.logaddexp(0.0, z),
    "leaky_relu": lambda p, z: np.where(z >= 0, z, p["negative_slope"] * z),
    "sinh_arcsinh": lambda p, z: np.sinh((np.arcsinh(z) + p["skew"]) * p["tailweight"]),
    "planar": lambda p, z: z + np.asarray(p["u"]) * np.tanh(z @ np.asarray(p["w"]) + p["b"])[:, None],
    "radial": ref_radial,
    "coupling": ref_coupling,
    "swirl": ref_swirl,
    "spline": None,  # pinned down by its knots, knot slopes and the identity outside: test_spline_knots
    "piecewise_linear": ref_piecewise_linear,
}


# --------------------------------------------------------------------------- edge points


def spline_knots(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Knot positions and values as the spec defines them: bin sizes rescaled to sum to 2 * bound."""
    bound = p["bound"]

    def knots(sizes: list[float]) -> np.ndarray:
        sizes = np.asarray(sizes) * (2 * bound / np.sum(sizes))
        inner = np.cumsum(sizes)[:-1] - bound
        return np.concatenate([[-bound], inner, [bound]])

    return knots(p["widths"]), knots(p["heights"])


def _pairs(values: np.ndarray) -> np.ndarray:
    """Every value on both coordinates and on the diagonal."""
    values = np.asarray(values, dtype=np.float64)
    zeros = np.zeros_like(values)
    return np.concatenate(
        [np.stack([values, zeros], -1), np.stack([zeros, values], -1), np.stack([values, values[::-1]], -1)]
    )


# Types whose forward image of |z| <= 50 stays well inside float64 and inside the open image.
FAR_OK = {
    "affine", "shift", "scale", "rotation", "swap", "exp", "softplus", "leaky_relu", "sinh_arcsinh",
    "planar", "radial", "swirl", "spline", "piecewise_linear",
}  # fmt: skip


def edge_points(p: dict) -> np.ndarray:
    kind = p["type"]
    points = [_pairs([0.0, -0.0, 1e-300, -1e-300, 1e-12, -1e-12, 1.0, -1.0])]
    if kind in FAR_OK:
        points.append(_pairs([50.0, -50.0, 17.5, -23.25]))
    if kind in ("radial", "swirl"):
        c = np.asarray(p["center"])
        offsets = [[0, 0], [1e-12, 0], [0, -1e-9], [1e-6, 1e-6], [-1e-4, 3e-4], [0.01, -0.02]]
        points.append(c + np.asarray(offsets, dtype=np.float64))
    if kind == "spline":
        knots_x, _ = spline_knots(p)
        b = p["bound"]
        points.append(_pairs(np.concatenate([knots_x, [b + 1e-9, -b - 1e-9, b + 0.5, -b - 0.5]])))
    if kind == "piecewise_linear":
        knots = np.asarray(p["knots"])
        points.append(_pairs(np.concatenate([knots, knots + 1e-9, knots - 1e-9])))
    if kind == "planar":  # the hyperplane w.z + b = 0, where a nearly singular map is most singular
        w = np.asarray(p["w"])
        foot = -p["b"] * w / (w @ w)
        along = np.array([-w[1], w[0]]) / np.linalg.norm(w)
        points.append(foot + np.linspace(-4, 4, 9)[:, None] * along)
    return np.concatenate(points)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    draw: Callable[[np.random.Generator, int], dict]
    draws: int = DRAWS


CASES: dict[str, Case] = {
    "affine": Case(draw_affine),
    "shift": Case(draw_shift),
    "scale": Case(draw_scale),
    "rotation": Case(draw_rotation),
    "swap": Case(no_parameters("swap"), draws=1),
    "exp": Case(no_parameters("exp"), draws=1),
    "tanh": Case(no_parameters("tanh"), draws=1),
    "sigmoid": Case(no_parameters("sigmoid"), draws=1),
    "softplus": Case(no_parameters("softplus"), draws=1),
    "leaky_relu": Case(draw_leaky_relu),
    "sinh_arcsinh": Case(draw_sinh_arcsinh),
    "planar": Case(draw_planar),
    "radial": Case(draw_radial),
    "coupling": Case(draw_coupling),
    "swirl": Case(draw_swirl),
    "spline": Case(draw_spline, draws=24),
    "piecewise_linear": Case(draw_piecewise_linear),
}

ROWS = [(kind, i) for kind, case in CASES.items() for i in range(case.draws)]
ROW_IDS = [f"{kind}-{i}" for kind, i in ROWS]

# The path of each layer from the identity, layer.at(s), goes through the same checks: the
# first draws (the hardest: nearly singular, extreme slopes) at s near 0, near the flip of an
# orientation-reversing layer on both sides, and near 1.
PATH_S = (1e-6, 0.37, 0.5 - 1e-9, 0.5, 0.5 + 1e-9, 1.0 - 1e-6)
PATH_DRAWS = {"spline": (0, 2, 3, 4)}
PATH_ROWS = [
    (kind, i, s)
    for kind, case in CASES.items()
    for i in PATH_DRAWS.get(kind, range(min(case.draws, 3)))
    for s in PATH_S
]
ALL_ROWS = [(kind, i, None) for kind, i in ROWS] + PATH_ROWS
ALL_ROW_IDS = ROW_IDS + [f"{kind}-{i}-at-{s:.9g}" for kind, i, s in PATH_ROWS]

VOLUME_PRESERVING = {"shift", "rotation", "swap", "swirl"}


@functools.cache
def layer_params(kind: str, i: int) -> dict:
    rng = np.random.default_rng([20240, list(CASES).index(kind), i])
    return canonical_layer(CASES[kind].draw(rng, i))


def test_table_covers_every_layer_type():
    assert set(CASES) == set(LAYER_CLASSES)
    assert set(REFERENCE) == set(LAYER_CLASSES)


@dataclass
class Evaluation:
    layer: Bijector
    z: torch.Tensor
    x: torch.Tensor
    log_det_forward: torch.Tensor
    z_back: torch.Tensor
    log_det_inverse: torch.Tensor
    jacobian_forward: torch.Tensor
    jacobian_inverse: torch.Tensor


def autograd_jacobian(map_: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    """(n, 2, 2): the Jacobian of a pointwise map at each point, by reverse-mode autograd.

    Each point goes in as a batch of one, shape (1, 2), so a layer that indexes a
    table with a per-point index sees a batched index rather than a 0-d one (which
    vmap cannot turn into a Python number).
    """
    return torch.func.vmap(torch.func.jacrev(lambda v: map_(v.unsqueeze(0)).squeeze(0)))(points)


@functools.cache
def evaluation(kind: str, i: int, s: float | None = None) -> Evaluation:
    """The table's checks for draw i of a layer type, or for that layer at(s) on its path."""
    params = layer_params(kind, i)
    layer = build_layer(params) if s is None else build_layer(params).at(s)
    gx, gy = np.meshgrid(GRID, GRID)
    points = np.concatenate([np.stack([gx.ravel(), gy.ravel()], -1), edge_points(params)])
    z = torch.from_numpy(points)
    x, log_det_forward = layer.forward_and_log_det(z)
    z_back, log_det_inverse = layer.inverse_and_log_det(x)
    return Evaluation(
        layer,
        z,
        x,
        log_det_forward,
        z_back,
        log_det_inverse,
        autograd_jacobian(layer.forward, z),
        autograd_jacobian(layer.inverse, x),
    )


def assert_below(error: torch.Tensor, tol: float, points: torch.Tensor) -> None:
    """Every error <= tol (NaN fails); otherwise report the worst point."""
    error = torch.nan_to_num(error, nan=math.inf)
    k = int(error.argmax())
    if not float(error[k]) <= tol:
        pytest.fail(f"error {float(error[k]):.3g} > {tol:g} at {points[k].tolist()}", pytrace=False)


REFERENCE_ROWS = [row for row in ROWS if REFERENCE[row[0]] is not None]


@pytest.mark.parametrize(("kind", "i"), REFERENCE_ROWS, ids=[f"{kind}-{i}" for kind, i in REFERENCE_ROWS])
def test_forward_matches_the_formula(kind, i):
    reference = REFERENCE[kind]
    e = evaluation(kind, i)
    expected = torch.from_numpy(reference(layer_params(kind, i), e.z.numpy()))
    error = ((e.x - expected).abs() / expected.abs().clamp(min=1.0)).amax(-1)
    assert_below(error, 1e-12, e.z)


@pytest.mark.parametrize(("kind", "i", "s"), ALL_ROWS, ids=ALL_ROW_IDS)
def test_inverse_round_trip(kind, i, s):
    e = evaluation(kind, i, s)
    assert torch.isfinite(e.x).all() and torch.isfinite(e.z_back).all()
    error = ((e.z_back - e.z).abs() / e.z.abs().clamp(min=1.0)).amax(-1)
    assert_below(error, ROUND_TRIP_TOL, e.z)


def _log_det_error(analytic: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    sign, log_abs_det = torch.linalg.slogdet(jacobian)
    assert torch.all(sign != 0), "autograd finds a singular Jacobian"
    return (analytic - log_abs_det).abs() / log_abs_det.abs().clamp(min=1.0)


@pytest.mark.parametrize(("kind", "i", "s"), ALL_ROWS, ids=ALL_ROW_IDS)
def test_forward_log_det_matches_autograd(kind, i, s):
    e = evaluation(kind, i, s)
    assert e.log_det_forward.shape == e.z.shape[:-1]
    error = _log_det_error(e.log_det_forward, e.jacobian_forward)
    assert_below(error, LOG_DET_TOL, e.z)


@pytest.mark.parametrize(("kind", "i", "s"), ALL_ROWS, ids=ALL_ROW_IDS)
def test_inverse_log_det_matches_autograd(kind, i, s):
    e = evaluation(kind, i, s)
    assert e.log_det_inverse.shape == e.x.shape[:-1]
    error = _log_det_error(e.log_det_inverse, e.jacobian_inverse)
    assert_below(error, LOG_DET_TOL, e.x)


@pytest.mark.parametrize(("kind", "i", "s"), ALL_ROWS, ids=ALL_ROW_IDS)
def test_log_dets_of_the_two_directions_are_negatives(kind, i, s):
    e = evaluation(kind, i, s)
    error = (e.log_det_inverse + e.log_det_forward).abs() / e.log_det_forward.abs().clamp(min=1.0)
    assert_below(error, LOG_DET_TOL, e.z)


@pytest.mark.parametrize(("kind", "i", "s"), ALL_ROWS, ids=ALL_ROW_IDS)
def test_jacobian_tag_holds(kind, i, s):
    """The declared sparsity is true of the autograd Jacobian (structural zeros are exact zeros)."""
    e = evaluation(kind, i, s)
    tag = type(e.layer).jacobian
    for jacobian in (e.jacobian_forward, e.jacobian_inverse):
        if tag == "diagonal":
            assert torch.all(jacobian[:, 0, 1] == 0) and torch.all(jacobian[:, 1, 0] == 0)
        elif tag == "triangular":
            c = layer_params(kind, i)["condition_on"]
            assert torch.all(jacobian[:, c, 1 - c] == 0), "the passed coordinate depends on the other"
            assert torch.all(jacobian[:, c, c] == 1)
        elif tag == "permutation":
            assert torch.all((jacobian == 0) | (jacobian == 1))
            assert torch.all(jacobian.sum(-1) == 1) and torch.all(jacobian.sum(-2) == 1)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_jacobian_tag_is_the_sparsest_true_one(kind):
    """Across the draws the Jacobian does use the entries its tag leaves free."""
    tag = LAYER_CLASSES[kind].jacobian
    jacobians = torch.cat([evaluation(kind, i).jacobian_forward for i in range(CASES[kind].draws)])
    off_upper, off_lower = jacobians[:, 0, 1] != 0, jacobians[:, 1, 0] != 0
    if tag == "full":
        assert off_upper.any() and off_lower.any()
    elif tag == "triangular":
        assert (off_upper | off_lower).any()
    elif tag == "diagonal":
        assert (jacobians[:, 0, 0] != 1).any() or (jacobians[:, 1, 1] != 1).any() or kind == "shift"


@pytest.mark.parametrize("kind", sorted(CASES))
def test_class_declares_its_math(kind):
    cls = LAYER_CLASSES[kind]
    assert cls.type_name == kind
    assert cls.jacobian in {"diagonal", "triangular", "permutation", "full"}
    assert set(cls.latex) >= {"forward", "inverse", "log_det"}
    assert all(isinstance(v, str) and v.strip() for v in cls.latex.values())
    assert cls.volume_preserving == (kind in VOLUME_PRESERVING)


@pytest.mark.parametrize("kind", sorted(VOLUME_PRESERVING))
def test_volume_preserving_layers_have_log_det_exactly_zero(kind):
    for i in range(CASES[kind].draws):
        e = evaluation(kind, i)
        assert torch.all(e.log_det_forward == 0) and torch.all(e.log_det_inverse == 0)


# --------------------------------------------------------------------------- spline and piecewise-linear knots


SPLINE_ROWS = [i for kind, i in ROWS if kind == "spline"]


@pytest.mark.parametrize("i", SPLINE_ROWS)
def test_spline_knots(i):
    """The spline passes through its knots with the given slopes, and is the identity outside."""
    p = layer_params("spline", i)
    layer = build_layer(p)
    knots_x, knots_y = spline_knots(p)
    slopes = np.concatenate([[1.0], p["derivatives"], [1.0]])
    for d in p["dims"]:
        z = torch.zeros(len(knots_x), 2, dtype=torch.float64)
        z[:, d] = torch.from_numpy(knots_x)
        x = layer.forward(z)
        np.testing.assert_allclose(x[:, d].numpy(), knots_y, rtol=0, atol=1e-12)
        if 1 - d not in p["dims"]:
            np.testing.assert_array_equal(x[:, 1 - d].numpy(), z[:, 1 - d].numpy())
        back = layer.inverse(torch.from_numpy(np.stack([knots_y, knots_y], -1)))
        np.testing.assert_allclose(back[:, d].numpy(), knots_x, rtol=0, atol=1e-12)
        jacobian = autograd_jacobian(layer.forward, z)
        np.testing.assert_allclose(jacobian[:, d, d].numpy(), slopes, rtol=1e-10)
    b = p["bound"]
    outside = torch.tensor([[b + 1e-9, -b - 1e-9], [-1e6, 1e6], [b * 1.5, -b * 2]], dtype=torch.float64)
    for method in (layer.forward_and_log_det, layer.inverse_and_log_det):
        out, log_det = method(outside)
        assert torch.equal(out, outside) and torch.all(log_det == 0)


@pytest.mark.parametrize("i", range(CASES["piecewise_linear"].draws))
def test_piecewise_linear_is_anchored_at_its_first_knot(i):
    p = layer_params("piecewise_linear", i)
    t0 = p["knots"][0]
    x = build_layer(p).forward(torch.tensor([[t0, t0]], dtype=torch.float64))
    assert torch.all(x == t0)


# --------------------------------------------------------------------------- saturated branches, against mpmath


def _one_d(kind: str, direction: str, values: list[float], **params) -> tuple[np.ndarray, np.ndarray]:
    """The scalar map of a diagonal layer (``forward_1d`` / ``inverse_1d``) and its log-derivative."""
    layer = build_layer(canonical_layer({"type": kind, **params}))
    method = layer.forward_1d if direction == "forward" else layer.inverse_1d
    out, log_deriv = method(torch.tensor(values, dtype=torch.float64))
    return out.numpy(), log_deriv.numpy()


def _close(actual: np.ndarray, expected: list, rel: float = 1e-12) -> None:
    for a, e in zip(actual, expected, strict=True):
        e = float(e)
        assert math.isfinite(a), f"{a} should be {e}"
        assert abs(a - e) <= rel * max(1.0, abs(e)), f"{a} should be {e}"


def _close_or_overflow(actual: np.ndarray, expected: list, rel: float = 1e-12) -> None:
    """Close where the true value fits in float64; an infinity of the right sign where it does not."""
    for a, e in zip(actual, expected, strict=True):
        if abs(e) < 1e307:
            assert abs(a - float(e)) <= rel * abs(float(e)), f"{a} should be {e}"
        else:
            assert a == math.copysign(math.inf, float(e)), f"{a} should overflow to {float(e)}"


@pytest.mark.parametrize("sign", [1, -1])
def test_saturated_tanh_log_det(sign):
    """At |z| >= 20, tanh(z) = +-1 in float64 and autograd gives log 0; the analytic log-det stays exact."""
    zs = [sign * v for v in (20.0, 30.0, 300.0)]
    _, log_det = _one_d("tanh", "forward", zs)
    with mpmath.workdps(400):
        expected = [mpmath.log(1 - mpmath.tanh(mpmath.mpf(z)) ** 2) for z in zs]
    _close(log_det, expected)


def test_sigmoid_and_softplus_at_large_inputs():
    zs = [-1000.0, -700.0, -100.0, -40.0, 40.0, 100.0, 700.0, 1000.0]
    _, sigmoid_log_det = _one_d("sigmoid", "forward", zs)
    softplus_x, softplus_log_det = _one_d("softplus", "forward", zs)
    with mpmath.workdps(600):
        sigma = [1 / (1 + mpmath.exp(-mpmath.mpf(z))) for z in zs]
        _close(sigmoid_log_det, [mpmath.log(s * (1 - s)) for s in sigma])
        _close(softplus_log_det, [mpmath.log(s) for s in sigma])
        expected_x = [mpmath.log(1 + mpmath.exp(mpmath.mpf(z))) for z in zs]
    for a, e in zip(softplus_x, expected_x, strict=True):
        assert abs(a - float(e)) <= 1e-15 * float(e) or (float(e) < 1e-300 and a < 1e-300)


def test_inverse_branches_near_the_edge_of_the_image():
    tiny = [5e-324, 1e-300, 1e-10, 0.25, 1 - 2.0**-30, 1 - 2.0**-53]
    with mpmath.workdps(100):
        ys = [mpmath.mpf(y) for y in tiny]
        logit = [mpmath.log(y / (1 - y)) for y in ys]
        logit_log_det = [-mpmath.log(y * (1 - y)) for y in ys]
        artanh = [mpmath.atanh(y) for y in ys]
        artanh_log_det = [-mpmath.log(1 - y * y) for y in ys]
        large = [mpmath.mpf(y) for y in (5e-324, 1e-300, 1e-10, 1.0, 40.0, 1e3, 1e300)]
        softplus_inverse = [mpmath.log(mpmath.expm1(y)) for y in large]
        softplus_log_det = [y - mpmath.log(mpmath.expm1(y)) for y in large]
    z, log_det = _one_d("sigmoid", "inverse", tiny)
    _close(z, logit)
    _close(log_det, logit_log_det)
    z, log_det = _one_d("tanh", "inverse", tiny)
    _close(z, artanh)
    _close(log_det, artanh_log_det)
    z, log_det = _one_d("softplus", "inverse", [float(y) for y in large])
    _close(z, softplus_inverse)
    _close(log_det, softplus_log_det)
    z, log_det = _one_d("exp", "inverse", [5e-324, 1e-300, 1e300])
    _close(z, [math.log(5e-324), math.log(1e-300), math.log(1e300)])
    _close(log_det, [-math.log(5e-324), -math.log(1e-300), -math.log(1e300)])


@pytest.mark.parametrize(("skew", "tailweight"), [(0.5, 1.7), (-1.0, 0.4), (2.0, 3.0)])
def test_sinh_arcsinh_far_tails(skew, tailweight):
    zs = [1e8, -1e8, 1e100, -1e100, 1e300, -1e300]
    x, log_det = _one_d("sinh_arcsinh", "forward", zs, skew=skew, tailweight=tailweight)
    with mpmath.workdps(60):
        expected_x, expected_log_det = [], []
        for z in map(mpmath.mpf, zs):
            u = (mpmath.asinh(z) + skew) * tailweight
            expected_x.append(mpmath.sinh(u))
            expected_log_det.append(mpmath.log(mpmath.cosh(u) * tailweight / mpmath.sqrt(1 + z * z)))
    _close(log_det, expected_log_det)
    _close_or_overflow(x, expected_x)
    ys = [1e10, -1e10, 1e300, -1e300]
    z, log_det = _one_d("sinh_arcsinh", "inverse", ys, skew=skew, tailweight=tailweight)
    with mpmath.workdps(60):
        expected_z, expected_log_det = [], []
        for y in map(mpmath.mpf, ys):
            v = mpmath.asinh(y) / tailweight - skew
            expected_z.append(mpmath.sinh(v))
            expected_log_det.append(mpmath.log(mpmath.cosh(v) / (tailweight * mpmath.sqrt(1 + y * y))))
    _close_or_overflow(z, expected_z, rel=1e-11)
    _close(log_det, expected_log_det)


def test_exp_at_large_inputs():
    x, log_det = _one_d("exp", "forward", [-700.0, 700.0, 709.0])
    _close(log_det, [-700.0, 700.0, 709.0])
    _close(x / np.exp([-700.0, 700.0, 709.0]), [1.0, 1.0, 1.0])


OUTSIDE_IMAGE = {
    "exp": [0.0, -0.0, -1e-300, -1.0, -math.inf],
    "softplus": [0.0, -0.0, -1e-300, -1.0, -math.inf],
    "tanh": [1.0, -1.0, 1.5, -2.0, math.inf],
    "sigmoid": [0.0, 1.0, -0.5, 1.5, -1e-300],
}


@pytest.mark.parametrize("kind", sorted(OUTSIDE_IMAGE))
def test_inverse_outside_the_image_is_nan(kind):
    values = OUTSIDE_IMAGE[kind]
    layer = build_layer(canonical_layer({"type": kind}))
    inside_value = {"exp": 2.0, "softplus": 2.0, "tanh": 0.5, "sigmoid": 0.5}[kind]
    x = torch.tensor([[v, inside_value] for v in values], dtype=torch.float64)
    z, log_det = layer.inverse_and_log_det(x)
    assert torch.all(torch.isnan(z[:, 0])) and torch.all(torch.isnan(log_det))
    assert torch.all(torch.isfinite(z[:, 1]))
    # The flow reads NaN as "outside the image": density 0.
    flow = Flow({"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}, [layer])
    log_prob = flow.log_prob(x)
    assert torch.all(log_prob == -math.inf)
