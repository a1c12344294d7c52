"""Every layer of the flow spec, one class per type, and the builder from a spec entry."""

from __future__ import annotations

from collections.abc import Mapping

from flowviz.layers.base import Bijector, Elementwise
from flowviz.layers.coupling import AffineCoupling
from flowviz.layers.elementwise import Exp, LeakyReLU, PiecewiseLinear, Sigmoid, SinhArcsinh, Softplus, Tanh
from flowviz.layers.learned import MLP, ActNorm, AffineConditioner, NeuralSplineCoupling, realnvp_coupling
from flowviz.layers.linear import Affine, Rotation, Scale, Shift, Swap
from flowviz.layers.planar_radial import Planar, Radial
from flowviz.layers.spline import Spline
from flowviz.layers.swirl import Swirl

LAYER_CLASSES: dict[str, type[Bijector]] = {
    cls.type_name: cls
    for cls in (
        Affine,
        Shift,
        Scale,
        Rotation,
        Swap,
        Exp,
        Tanh,
        Sigmoid,
        Softplus,
        LeakyReLU,
        SinhArcsinh,
        Planar,
        Radial,
        AffineCoupling,
        Swirl,
        Spline,
        PiecewiseLinear,
    )
}


def build_layer(layer: Mapping) -> Bijector:
    """Build the Bijector of one canonical spec entry (see :func:`flowviz.spec.parse_spec`)."""
    params = {k: v for k, v in layer.items() if k not in ("type", "enabled")}
    return LAYER_CLASSES[layer["type"]].build(params)


# Learned layers (flowviz.layers.learned) share the Bijector contract but are not spec
# layers: they are exported here and deliberately left out of LAYER_CLASSES.
__all__ = [
    "LAYER_CLASSES",
    "MLP",
    "ActNorm",
    "AffineConditioner",
    "NeuralSplineCoupling",
    "realnvp_coupling",
    "Bijector",
    "Elementwise",
    "build_layer",
    *[c.__name__ for c in LAYER_CLASSES.values()],
]
