"""Learned layers keep the Bijector contract: exact inverse, log|det J| equal to autograd's, both directions.

One table of layers (with random, non-trivial weights) runs through every check,
like the spec layers: adding a learned layer means adding a row.
"""

from __future__ import annotations

import math

import pytest
import torch

from flowviz.flow import Flow
from flowviz.layers import Bijector
from flowviz.layers.coupling import AffineCoupling
from flowviz.layers.learned import (
    ActNorm,
    AffineConditioner,
    NeuralSplineCoupling,
    realnvp_coupling,
    spline_bin_sizes,
    spline_knot_slopes,
)
from flowviz.layers.linear import Affine, Rotation, Swap
from flowviz.train import ModelConfig, build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _randomise(layer: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    """Give every parameter random values, so the map is far from the identity it starts as.

    At scale 0.3 the splines' bin slopes span about 0.003 to 60: strongly curved, yet
    within the range where float64 can invert them to 1e-9.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return layer


def _layers() -> dict[str, Bijector]:
    spline0 = _randomise(NeuralSplineCoupling(0, hidden=16, bins=6, bound=2.5), 1)
    spline1 = _randomise(NeuralSplineCoupling(1, hidden=16, depth=1, bins=9, bound=3.0), 2)
    actnorm = ActNorm()
    with torch.no_grad():
        actnorm.shift.copy_(torch.tensor([0.3, -1.2]))
        actnorm.log_scale.copy_(torch.tensor([0.5, -0.8]))
    actnorm.initialized.fill_(True)
    return {
        "nsf_c0": spline0,
        "nsf_c1": spline1,
        "realnvp_c0": _randomise(realnvp_coupling(0, hidden=16), 3),
        "realnvp_c1": _randomise(realnvp_coupling(1, hidden=16, depth=3), 4),
        "actnorm": actnorm,
    }


LAYERS = _layers()
# Each layer on its path from the identity, layer.at(s), through the same checks.
PATH_LAYERS = {
    f"{name}-at-{s:.9g}": layer.double().at(s)
    for name, layer in LAYERS.items()
    for s in (1e-6, 0.4, 1.0 - 1e-6)
}


def _points(n: int = 400, spread: float = 2.0, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return spread * torch.randn(n, 2, generator=generator, dtype=torch.float64)


@pytest.fixture(params=sorted(LAYERS) + sorted(PATH_LAYERS))
def layer(request) -> Bijector:
    return {**LAYERS, **PATH_LAYERS}[request.param].double().eval()


def test_round_trip(layer):
    z = _points(spread=2.5)
    x, log_det_forward = layer.forward_and_log_det(z)
    z_back, log_det_inverse = layer.inverse_and_log_det(x)
    assert torch.max(torch.abs(z_back - z)) <= 1e-9
    assert torch.max(torch.abs(log_det_forward + log_det_inverse)) <= 1e-9
    x_back = layer.forward(layer.inverse(z))
    assert torch.max(torch.abs(x_back - z)) <= 1e-9


def _jacobians(function, points: torch.Tensor) -> torch.Tensor:
    """Per-point 2x2 Jacobians by reverse-mode autograd: each output depends on its own point only,
    so the Jacobian of the summed outputs, (2, N, 2), holds every point's Jacobian."""
    summed = torch.func.jacrev(lambda p: function(p).sum(0))(points)
    return summed.permute(1, 0, 2)


def _autograd_log_det(function, points: torch.Tensor) -> torch.Tensor:
    return torch.linalg.slogdet(_jacobians(function, points)).logabsdet


def test_log_det_forward_matches_autograd(layer):
    z = _points(200, 2.0, seed=1)
    expected = _autograd_log_det(layer.forward, z)
    assert torch.max(torch.abs(layer.forward_and_log_det(z)[1] - expected)) <= 1e-8


def test_log_det_inverse_matches_autograd(layer):
    x = layer.forward(_points(200, 2.0, seed=2))
    expected = _autograd_log_det(layer.inverse, x)
    assert torch.max(torch.abs(layer.inverse_and_log_det(x)[1] - expected)) <= 1e-8


def test_jacobian_structure_is_triangular_for_couplings():
    for name in ("nsf_c0", "nsf_c1", "realnvp_c0", "realnvp_c1"):
        layer = LAYERS[name].double()
        z = _points(20, 1.5, seed=3)
        jacobians = _jacobians(layer.forward, z)
        c, o = layer.condition_on, 1 - layer.condition_on
        # x_c = z_c: its row is (1, 0) in the (c, o) order.
        assert torch.allclose(jacobians[:, c, c], torch.ones(20, dtype=torch.float64))
        assert torch.all(jacobians[:, c, o] == 0)
        assert layer.jacobian == "triangular"


def test_spline_tails_are_the_identity_outside_the_bound():
    layer = LAYERS["nsf_c0"].double()
    bound = layer.bound
    transformed = torch.tensor(
        [-1e3, -bound - 0.5, -bound - 1e-9, bound + 1e-9, bound + 2.0, 7.5e2], dtype=torch.float64
    )
    conditioning = torch.linspace(-3, 3, len(transformed), dtype=torch.float64)
    z = torch.stack([conditioning, transformed], -1)
    x, log_det = layer.forward_and_log_det(z)
    assert torch.equal(x, z)
    assert torch.equal(log_det, torch.zeros_like(log_det))
    z_back, log_det_inverse = layer.inverse_and_log_det(x)
    assert torch.equal(z_back, z) and torch.equal(log_det_inverse, torch.zeros_like(log_det))
    assert torch.isfinite(x).all()


def test_spline_is_continuous_at_the_bound():
    """Slope 1 at both ends: the spline meets the identity tails without a jump in value or slope."""
    layer = LAYERS["nsf_c1"].double()
    bound = layer.bound
    for edge in (-bound, bound):
        t = torch.tensor([edge - 1e-7, edge + 1e-7], dtype=torch.float64)
        z = torch.stack([t, torch.full_like(t, 0.4)], -1)  # condition_on = 1: coordinate 0 is transformed
        x, log_det = layer.forward_and_log_det(z)
        assert torch.allclose(x[:, 0], t, atol=1e-6)
        assert torch.max(torch.abs(log_det)) < 1e-5


def test_spline_parameters_respect_their_floors():
    raw = torch.tensor([[50.0, -50.0, 0.0, -80.0]], dtype=torch.float64)
    sizes = spline_bin_sizes(raw, bound=3.0, minimum=1e-3)
    assert torch.allclose(sizes.sum(-1), torch.tensor([6.0], dtype=torch.float64))
    assert torch.all(sizes >= 6.0 * 1e-3 - 1e-12)
    slopes = spline_knot_slopes(torch.tensor([[-80.0, 0.0, 30.0]], dtype=torch.float64), minimum=1e-3)
    assert slopes[0, 0] == 1.0 and slopes[0, -1] == 1.0
    assert slopes[0, 1] >= 1e-3
    assert math.isclose(float(slopes[0, 2]), 1.0, rel_tol=1e-12)  # u = 0 gives slope 1


def test_fresh_couplings_are_the_identity():
    z = _points(50)
    for layer in (NeuralSplineCoupling(0, bins=7).double(), realnvp_coupling(1).double()):
        x, log_det = layer.forward_and_log_det(z)
        assert torch.max(torch.abs(x - z)) <= 1e-12
        assert torch.max(torch.abs(log_det)) <= 1e-12


def test_realnvp_is_the_affine_coupling_class_with_a_clamped_network():
    layer = realnvp_coupling(0, hidden=8, max_log_scale=2.0)
    assert isinstance(layer, AffineCoupling)
    assert isinstance(layer.conditioner, AffineConditioner)
    _randomise(layer, 5, scale=30.0)
    _, log_scale = layer.conditioner(torch.linspace(-5, 5, 101))
    assert torch.all(torch.abs(log_scale) <= 2.0)  # c tanh(./c) reaches c only by rounding


def test_actnorm_initialises_from_the_first_batch():
    layer = ActNorm().double().train()
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0], [7.0, 40.0]], dtype=torch.float64)
    z, log_det = layer.inverse_and_log_det(x)
    assert torch.allclose(z.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(z.std(0), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(log_det, -torch.log(x.std(0)).sum().expand(4))
    assert bool(layer.initialized)
    before = layer.shift.detach().clone()
    layer.inverse_and_log_det(x * 3.0)  # initialised once only
    assert torch.equal(layer.shift.detach(), before)


def test_model_uses_the_shared_layer_classes():
    for mixing, between in (("swap", Swap), ("rotation", Rotation)):
        flow = build_model(
            ModelConfig(kind="nsf", layers=3, mixing=mixing, actnorm=True), (1.0, 2.0), (3.0, 4.0)
        )
        kinds = [type(layer) for layer in flow.layers]
        assert kinds.count(NeuralSplineCoupling) == 3
        assert kinds.count(ActNorm) == 3
        assert kinds.count(between) == 2
        assert isinstance(flow.layers[-1], Affine)
    realnvp = build_model(ModelConfig(kind="realnvp", layers=4, mixing="alternate"))
    assert [type(layer) for layer in realnvp.layers] == [AffineCoupling] * 4 + [Affine]
    assert [layer.condition_on for layer in realnvp.layers[:4]] == [0, 1, 0, 1]


def test_whole_model_log_det_matches_autograd():
    flow = build_model(
        ModelConfig(kind="nsf", layers=3, hidden=16, bins=5, actnorm=True), (0.5, -1.0), (2.0, 0.5)
    )
    for layer in flow.layers:
        if isinstance(layer, NeuralSplineCoupling):
            _randomise(layer, 7, 0.5)
        if isinstance(layer, ActNorm):
            layer.initialized.fill_(True)
    flow = flow.double().eval()
    x = flow.forward(_points(100, 1.0, seed=4))
    _, log_det_inverse = flow.inverse_and_log_det(x)
    expected = _autograd_log_det(flow.inverse, x)
    assert torch.max(torch.abs(log_det_inverse - expected)) <= 1e-8
    assert isinstance(flow, Flow)


def test_learned_layers_are_not_spec_layers():
    from flowviz.layers import LAYER_CLASSES

    assert "neural_spline_coupling" not in LAYER_CLASSES
    assert "actnorm" not in LAYER_CLASSES


@pytest.mark.parametrize("depth", [1, 2])
def test_big_batches_without_autograd_give_the_same_map(depth):
    """Grids go through the chunked, piecewise-linear path; it must be the same function as the network's."""
    layer = _randomise(NeuralSplineCoupling(1, hidden=32, depth=depth, bins=8, bound=3.0), 11).double()
    z = _points(20_000, 2.5, seed=6)
    with torch.enable_grad():
        x_direct, log_det_direct = layer.forward_and_log_det(z)
        z_direct, log_det_inverse_direct = layer.inverse_and_log_det(x_direct.detach())
    with torch.no_grad():
        x_fast, log_det_fast = layer.forward_and_log_det(z)
        z_fast, log_det_inverse_fast = layer.inverse_and_log_det(x_fast)
    # Same function, other order of the sums: equal to rounding, amplified where slopes are steep.
    assert torch.max(torch.abs(x_fast - x_direct.detach())) <= 1e-11
    assert torch.max(torch.abs(log_det_fast - log_det_direct.detach())) <= 1e-10
    assert torch.max(torch.abs(z_fast - z)) <= 1e-9
    assert torch.max(torch.abs(z_fast - z_direct.detach())) <= 1e-9
    assert torch.max(torch.abs(log_det_inverse_fast - log_det_inverse_direct.detach())) <= 1e-10


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_piecewise_linear_evaluation_is_the_network_at_every_depth(depth):
    """Grids (many points, no autograd) evaluate a conditioner as its table of linear pieces:
    the same numbers as the layers' matrix products, on and between the breakpoints."""
    from flowviz.layers.learned import MLP, PIECEWISE_FROM

    torch.manual_seed(depth)
    network = MLP(35, 64, depth).double()
    for parameter in network.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    pieces = network.pieces()
    assert pieces is not None
    breakpoints, table = pieces
    assert len(breakpoints) >= 64 and table.shape == (len(breakpoints) + 1, 70)
    t = torch.cat(
        [
            torch.linspace(-40.0, 40.0, 20_001, dtype=torch.float64),
            breakpoints,
            torch.randn(3000, dtype=torch.float64),
        ]
    )
    assert len(t) >= PIECEWISE_FROM
    with torch.no_grad():
        fast = network(t)
        direct = network.net(t.unsqueeze(-1))
    torch.testing.assert_close(fast, direct, rtol=1e-12, atol=1e-10)
