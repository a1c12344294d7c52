"""The flow at time t: every layer's path from the identity, ``Flow.at(t)``, ``evaluate(spec, t=...)``, ``--t``.

The paths' forward, inverse and log-dets go through the layer tables themselves
(``at(s)`` rows in tests/test_layers.py and tests/test_learned_layers.py). Here:
the ends of each path (exactly the identity, exactly the layer), continuity in s,
the orientation flip, whole times equal to the first k layers, and, at fractional
times, samples pushed through the flow against the density on the grid.
"""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest
import scipy.stats
import torch

import flowviz
from flowviz.cli import main
from flowviz.flow import Flow
from flowviz.layers import build_layer
from flowviz.layers.base import FLIP_AT
from tests.test_layers import GRID, ROWS, canonical_layer, edge_points, evaluation, layer_params
from tests.test_learned_layers import LAYERS as LEARNED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROW_IDS = [f"{kind}-{i}" for kind, i in ROWS]


def _points(kind: str, i: int, edges: bool = True) -> torch.Tensor:
    gx, gy = np.meshgrid(GRID, GRID)
    points = [np.stack([gx.ravel(), gy.ravel()], -1)]
    if edges:
        points.append(edge_points(layer_params(kind, i)))
    return torch.from_numpy(np.concatenate(points))


# --------------------------------------------------------------------------- the ends of each path


@pytest.mark.parametrize(("kind", "i"), ROWS, ids=ROW_IDS)
def test_path_starts_at_the_identity_exactly_and_ends_at_the_layer_itself(kind, i):
    layer = build_layer(layer_params(kind, i))
    z = _points(kind, i)
    start = layer.at(0.0)
    for x, log_det in (start.forward_and_log_det(z), start.inverse_and_log_det(z)):
        assert torch.equal(x, z)
        assert torch.all(log_det == 0)
    assert not start.reverses_orientation
    assert layer.at(1.0) is layer
    assert layer.at(1) is layer


@pytest.mark.parametrize("name", sorted(LEARNED))
def test_learned_path_starts_at_the_identity_exactly_and_ends_at_the_layer_itself(name):
    layer = LEARNED[name].double().eval()
    z = 3.0 * torch.randn(500, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    start = layer.at(0.0)
    assert type(start) is type(layer)
    for x, log_det in (start.forward_and_log_det(z), start.inverse_and_log_det(z)):
        assert torch.equal(x, z)
        assert torch.all(log_det == 0)
    assert layer.at(1.0) is layer


@pytest.mark.parametrize("s", [-1e-12, 1.0 + 1e-12, math.nan, math.inf, -math.inf])
def test_a_fraction_outside_the_unit_interval_is_refused(s):
    layer = build_layer({"type": "rotation", "degrees": 30.0})
    with pytest.raises(ValueError, match=r"must be a finite number in \[0, 1\]"):
        layer.at(s)


# --------------------------------------------------------------------------- continuity and orientation

STEP = 1e-7
# Starting points of [s, s + STEP]: none crosses FLIP_AT, one ends at 1 (the layer itself).
CONTINUITY_S = (0.0, 0.2, FLIP_AT - 2 * STEP, FLIP_AT, 0.8, 1.0 - STEP)
CONTINUITY_ROWS = [(kind, i) for kind, i in ROWS if i < 3 or kind == "spline"]


def _change(layer, s: float, step: float, z: torch.Tensor) -> float:
    """The largest move of a point (relative to 1 + |x|) or of its log-det when s grows by ``step``."""
    x0, log_det0 = layer.at(s).forward_and_log_det(z)
    x1, log_det1 = layer.at(s + step).forward_and_log_det(z)
    moved = ((x1 - x0).abs() / (1.0 + x0.abs())).max()
    return float(max(moved, (log_det1 - log_det0).abs().max()))


@pytest.mark.parametrize(("kind", "i"), CONTINUITY_ROWS, ids=[f"{k}-{i}" for k, i in CONTINUITY_ROWS])
def test_path_is_continuous_in_s(kind, i):
    """A step in s moves points and log-dets in proportion to the step: small, and 100 times smaller for a 100 times smaller step.

    Along every path the parameters are smooth in s, so the change is the step
    times a bounded derivative (on this grid at most about 1 / sech^2(6) = 4e4, the
    log-det of the blend with tanh near s = 1): below 1e-2 for a step of 1e-7. A jump would not shrink with the step;
    the second bound allows for round-off (1e-11) besides.
    """
    layer = build_layer(layer_params(kind, i))
    z = _points(kind, i, edges=False)
    for s in CONTINUITY_S:
        coarse, fine = _change(layer, s, STEP, z), _change(layer, s, STEP / 100, z)
        assert coarse <= 1e-2, (s, coarse)
        assert fine <= 0.05 * coarse + 1e-11, (s, coarse, fine)


@pytest.mark.parametrize(("kind", "i"), ROWS, ids=ROW_IDS)
def test_orientation_flag_is_the_sign_of_det_j_and_flips_at_the_middle(kind, i):
    """reverses_orientation agrees with autograd's det J at every point, at s = 1 and on both sides of the flip."""
    layer = build_layer(layer_params(kind, i))
    signs = torch.linalg.slogdet(evaluation(kind, i).jacobian_forward).sign
    assert torch.all(signs == (-1.0 if layer.reverses_orientation else 1.0))
    if i < 3:
        before, after = evaluation(kind, i, FLIP_AT - 1e-9), evaluation(kind, i, FLIP_AT)
        assert torch.all(torch.linalg.slogdet(before.jacobian_forward).sign == 1.0)
        assert not before.layer.reverses_orientation
        assert after.layer.reverses_orientation == layer.reverses_orientation


def test_orientation_reversing_layers_are_the_mirrors():
    reversing = [
        {"type": "swap"},
        {"type": "scale", "scale": [2.0, -0.5]},
        {"type": "affine", "matrix": [[1.0, 2.0], [0.5, -1.5]]},
    ]
    keeping = [
        {"type": "scale", "scale": [-2.0, -0.5]},  # a half turn
        {"type": "affine", "matrix": [[1.0, 2.0], [-0.5, 1.5]]},
        {"type": "rotation", "degrees": 180.0},
        {"type": "leaky_relu", "negative_slope": 0.1},
    ]
    assert all(build_layer(canonical_layer(p)).reverses_orientation for p in reversing)
    assert not any(build_layer(canonical_layer(p)).reverses_orientation for p in keeping)


F64 = torch.float64


def test_named_paths_in_closed_form():
    """Half a rotation is half the angle, a quarter of a planar push a quarter of u, the blend is (1 - s) z + s e^z, ..."""
    z = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-3.0, 4.0]], dtype=F64)
    c = math.cos(math.pi / 4)
    eighth_turn = torch.tensor([[c, -c], [c, c]], dtype=F64)
    half = build_layer(canonical_layer({"type": "rotation", "degrees": 90.0})).at(0.5)
    torch.testing.assert_close(half.forward(z), z @ eighth_turn.T, rtol=0, atol=1e-15)

    w, u = torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([0.4, -0.2], dtype=F64)
    planar = build_layer(canonical_layer({"type": "planar", "w": w.tolist(), "u": u.tolist(), "b": 0.5})).at(
        0.25
    )
    torch.testing.assert_close(
        planar.forward(z), z + 0.25 * u * torch.tanh(z @ w + 0.5)[:, None], rtol=0, atol=1e-15
    )

    blend = build_layer(canonical_layer({"type": "exp"})).at(0.3)
    x, log_det = blend.forward_and_log_det(z)
    torch.testing.assert_close(x, 0.7 * z + 0.3 * torch.exp(z), rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(log_det, torch.log(0.7 + 0.3 * torch.exp(z)).sum(-1), rtol=1e-14, atol=1e-14)

    scale = build_layer(canonical_layer({"type": "scale", "scale": [4.0, -9.0]}))
    torch.testing.assert_close(scale.at(0.5).forward(z), z * torch.tensor([2.0, -3.0], dtype=F64))
    torch.testing.assert_close(scale.at(0.5 - 1e-12).forward(z), z * torch.tensor([2.0, 3.0], dtype=F64))

    # A = [[0, -4], [1, 0]] = R(90 degrees) diag(1, 4): halfway, R(45 degrees) diag(1, 2) and half the shift.
    affine = build_layer(
        canonical_layer({"type": "affine", "matrix": [[0.0, -4.0], [1.0, 0.0]], "shift": [2.0, 2.0]})
    )
    expected = z @ (eighth_turn @ torch.diag(torch.tensor([1.0, 2.0], dtype=F64))).T + 1.0
    torch.testing.assert_close(affine.at(0.5).forward(z), expected, rtol=0, atol=1e-14)

    spline = build_layer(
        canonical_layer({"type": "spline", "widths": [1, 3], "heights": [3, 1], "derivatives": [4.0]})
    )
    halfway = spline.at(0.5)  # bound 3: equal bins are 3 wide; the layer's are 1.5 and 4.5
    torch.testing.assert_close(halfway.widths, torch.tensor([2.25, 3.75], dtype=F64))
    torch.testing.assert_close(halfway.heights, torch.tensor([3.75, 2.25], dtype=F64))
    torch.testing.assert_close(halfway.derivatives, torch.tensor([1.0, 2.0, 1.0], dtype=F64))


# --------------------------------------------------------------------------- the flow at time t

SPEC = {
    "base": {"type": "gaussian", "mean": [0.2, -0.1], "cov": [[1.0, 0.3], [0.3, 0.8]]},
    "layers": [
        {"type": "rotation", "degrees": 40},
        {"type": "planar", "w": [2.0, 0.5], "u": [0.9, 0.4], "b": 0.2},
        {"type": "swap"},
        {"type": "exp", "enabled": False},
        {"type": "swirl", "center": [0.3, 0.0], "strength": 2.5, "radius": 1.2},
        {
            "type": "coupling",
            "condition_on": 0,
            "shift": {"poly": [-0.5, 0, 0.5]},
            "log_scale": {"sin": [0.4, 1, 0]},
        },
        {"type": "spline", "widths": [1, 2, 1, 3], "heights": [3, 1, 2, 1], "derivatives": [0.4, 3.0, 0.7]},
        {"type": "scale", "scale": [1.3, -0.8]},
        {"type": "softplus"},
    ],
    "view": {"xlim": [-5.0, 5.0], "ylim": [-5.0, 5.0], "resolution": 61},
}
ACTIVE = [layer for layer in SPEC["layers"] if layer.get("enabled", True)]
K = len(ACTIVE)


def _first_layers(k: int) -> dict:
    """SPEC with only its first k active layers switched on."""
    layers, seen = [], 0
    for layer in SPEC["layers"]:
        active = layer.get("enabled", True)
        layers.append({**layer, "enabled": active and seen < k})
        seen += active
    return {**SPEC, "layers": layers}


def test_flow_at_a_whole_time_is_its_first_layers_exactly():
    flow = Flow.from_spec(SPEC)
    assert len(flow.layers) == K
    for k in range(K + 1):
        at_k = flow.at(k)
        assert len(at_k.layers) == k
        assert all(a is b for a, b in zip(at_k.layers, flow.layers, strict=False))
        assert at_k._bases is flow._bases


@pytest.mark.parametrize("k", range(K + 1))
def test_evaluate_at_a_whole_time_equals_the_spec_cut_after_k_layers(k):
    at_k = flowviz.evaluate(SPEC, t=k)
    cut = flowviz.evaluate(_first_layers(k))
    assert set(at_k) == set(cut)
    for key in cut:
        np.testing.assert_allclose(at_k[key], cut[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_evaluate_at_time_t_is_the_flow_at_t():
    t = 4.35
    arrays = flowviz.evaluate(SPEC, t=t)
    xs, ys = np.meshgrid(arrays["x"], arrays["y"])
    points = torch.from_numpy(np.stack([xs.ravel(), ys.ravel()], -1))
    with torch.no_grad():
        log_p = Flow.from_spec(SPEC).at(t).log_prob(points).numpy().reshape(xs.shape)
    np.testing.assert_array_equal(arrays["log_density"], log_p)
    assert not np.array_equal(arrays["log_density"], flowviz.evaluate(SPEC, t=4)["log_density"])
    assert not np.array_equal(arrays["log_density"], flowviz.evaluate(SPEC, t=5)["log_density"])


def test_density_is_continuous_in_t_but_at_a_mirror():
    """A step in t changes the density in proportion to the step, except across the flip of swap (t = 2.5).

    Steps of 1e-7 and 1e-9: the second change is at most 1/20 of the first (plus
    round-off), as for any differentiable path; a jump would not shrink.
    """

    def change(t: float, step: float) -> float:
        a = flowviz.evaluate(SPEC, t=t)["density"]
        return float(np.abs(flowviz.evaluate(SPEC, t=min(t + step, K))["density"] - a).max() / a.max())

    for t in (0.0, 0.5, 1.3, 2.2, 3.7, 4.5, 5.5, 6.2, 6.5, 7.6, K - 1e-7):
        coarse, fine = change(t, 1e-7), change(t, 1e-9)
        assert coarse <= 1e-4, (t, coarse)
        assert fine <= 0.05 * coarse + 1e-12, (t, coarse, fine)
    assert change(2.5 - 1e-9, 1e-9) > 0.1  # the mirror is one step


def test_time_labels():
    flow = Flow.from_spec(SPEC)
    assert flow.time_label(0) == "base p_Z"
    assert flow.time_label(0.0) == "base p_Z"
    assert flow.time_label(1.4) == "2 · planar, 40 %"
    assert flow.time_label(2.4) == "3 · swap, 40 %"
    assert flow.time_label(3) == "3 · swap, 100 %"
    assert flow.time_label(3.999) == "4 · swirl, 99 %"
    assert flow.time_label(K) == f"{K} · softplus, 100 %"
    trained = flowviz.Flow(flow.base_spec, [LEARNED["nsf_c0"], LEARNED["actnorm"]])
    assert trained.time_label(1.5) == "2 · actnorm, 50 %"


@pytest.mark.parametrize("t", [-1e-9, K + 1e-9, math.nan, math.inf, "soon", None])
def test_a_bad_time_is_refused(t):
    flow = Flow.from_spec(SPEC)
    with pytest.raises(ValueError, match=rf"must be a finite number in \[0, {K}\]"):
        flow.at(t)
    with pytest.raises(ValueError, match=rf"must be a finite number in \[0, {K}\]"):
        flow.time_label(t)
    if t is not None:
        with pytest.raises(flowviz.SpecError, match=rf"^t: .*must be a finite number from 0 to {K} "):
            flowviz.evaluate(SPEC, t=t)


# --------------------------------------------------------------------------- samples against the density

SAMPLES = 200_000
CELLS = 20  # histogram cells per axis over the view
SUBDIVISIONS = 10  # quadrature points per cell and axis (midpoint rule)


@pytest.mark.parametrize("t", [1.55, 2.3, 3.5, 4.7, 5.45, 6.8, 7.5])
def test_samples_at_time_t_follow_its_density(t):
    """Counts of base draws pushed through Flow.at(t) against the density's cell masses: a chi-square test.

    Expected counts come from the density on a fine grid (midpoint rule, 10 x 10
    points a cell). For the cells with an expected count of at least 5 (and the
    rest of the window lumped into one more), the Pearson statistic is compared
    with the chi-square quantile at 1 - 1e-6 (Poisson counts, one degree of freedom
    a cell): a true density fails one time in a million (the seed is fixed besides),
    a wrong log-det or a sampling path other than the density's fails by orders of
    magnitude. The quadrature's relative error per cell, measured by halving its
    step, stays below about 1e-3, a chi-square share N p (1e-3)^2 under 0.05 a cell.

    The density integrates to the mass of the samples in the window: the share of
    samples inside is the window's mass within 5 standard errors plus the
    quadrature's error on the whole window (below 2e-3 for this flow: its spline and
    softplus make sharp ridges, so the midpoint sum converges slowly there).
    """
    flow = Flow.from_spec(SPEC).at(t)
    (x0, x1), (y0, y1) = SPEC["view"]["xlim"], SPEC["view"]["ylim"]
    n_sub = CELLS * SUBDIVISIONS
    hx, hy = (x1 - x0) / n_sub, (y1 - y0) / n_sub
    xs = x0 + hx * (np.arange(n_sub) + 0.5)
    ys = y0 + hy * (np.arange(n_sub) + 0.5)
    gx, gy = np.meshgrid(xs, ys)
    with torch.no_grad():
        density = torch.exp(flow.log_prob(torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], -1)))).numpy()
        samples = flow.sample(SAMPLES, seed=11).numpy()
    cell_mass = density.reshape(CELLS, SUBDIVISIONS, CELLS, SUBDIVISIONS).sum((1, 3)) * hx * hy
    counts, _, _ = np.histogram2d(samples[:, 1], samples[:, 0], bins=CELLS, range=[[y0, y1], [x0, x1]])
    expected = SAMPLES * cell_mass.ravel()
    counts = counts.ravel()

    big = expected >= 5
    observed = np.concatenate([counts[big], [counts[~big].sum()]])
    wanted = np.concatenate([expected[big], [expected[~big].sum()]])
    keep = wanted > 0
    statistic = float(((observed[keep] - wanted[keep]) ** 2 / wanted[keep]).sum())
    bound = float(scipy.stats.chi2.ppf(1 - 1e-6, int(keep.sum())))
    assert statistic <= bound, (statistic, bound)

    window_mass = float(cell_mass.sum())
    inside = counts.sum() / SAMPLES
    standard_error = math.sqrt(window_mass * max(1 - window_mass, 0.0) / SAMPLES)
    assert abs(inside - window_mass) <= 5.0 * standard_error + 2e-3, (inside, window_mass)


def test_samples_at_time_t_also_agree_with_evaluate_mass():
    """evaluate(spec, t)'s mass (a Riemann sum on the view's grid) is the share of samples in the window."""
    t = 5.45
    arrays = flowviz.evaluate({**SPEC, "view": {**SPEC["view"], "resolution": 401}}, t=t)
    with torch.no_grad():
        samples = Flow.from_spec(SPEC).at(t).sample(SAMPLES, seed=3).numpy()
    inside = float(np.mean((np.abs(samples[:, 0]) <= 5.0) & (np.abs(samples[:, 1]) <= 5.0)))
    mass = float(arrays["mass"])
    # 5 standard errors, plus the Riemann sum's error: it counts the boundary rows whole, about
    # (perimeter density) x (cell width) / 2, under 1e-3 for this window.
    assert abs(inside - mass) <= 5.0 * math.sqrt(mass * (1 - mass) / SAMPLES) + 1e-3


# --------------------------------------------------------------------------- the command line


def _run(args: list[str], capsys) -> subprocess.CompletedProcess:
    status = main(args)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, captured.out, captured.err)


def test_cli_t_writes_the_flow_at_time_t(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "out.npz"
    result = _run(["evaluate", str(spec), "--out", str(out), "--t", "4.35"], capsys)
    assert result.returncode == 0, result.stderr
    expected = flowviz.evaluate(SPEC, t=4.35)
    with np.load(out) as data:
        assert set(data.files) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(data[key], expected[key], err_msg=key)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("-0.5", "--t: -0.5, but it must be a finite number from 0 to 8"),
        ("8.01", "--t: 8.01, but it must be a finite number from 0 to 8"),
        ("nan", "argument --t: must be a finite number, got nan"),
        ("inf", "argument --t: must be a finite number, got inf"),
        ("soon", "argument --t: must be a number, got 'soon'"),
    ],
)
def test_cli_bad_t_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, value, fragment):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    out = tmp_path / "out.npz"
    result = _run(["evaluate", str(spec), "--out", str(out), "--t", value], capsys)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.npz.*"))


def test_a_trained_flow_plays_too():
    """A flow of learned layers at fractional times: log p(f(z)) = log p_Z(z) - log|det J_f(z)| at its own points."""
    flow = Flow(
        SPEC["base"],
        [
            LEARNED["nsf_c0"].double().eval(),
            LEARNED["actnorm"].double(),
            LEARNED["realnvp_c1"].double().eval(),
        ],
    ).eval()
    z = flow.sample_base(300, seed=4)
    for t in (0.5, 1.25, 2.9):
        at_t = flow.at(t)
        with torch.no_grad():
            x, log_det = at_t.forward_and_log_det(z)
            expected = flow.base().log_prob(z) - log_det
            torch.testing.assert_close(at_t.log_prob(x), expected, rtol=1e-9, atol=1e-9)
        assert not at_t.training
    assert all(a is b for a, b in zip(flow.at(3).layers, flow.layers, strict=True))
