r"""Change of variables on a line: a base density p_Z, a monotone map x = f(z), and p_X.

For a strictly monotone, differentiable f the probability in [z, z + dz] is carried
to the image interval [f(z), f(z + dz)] unchanged, which gives the 1D formula

    p_X(x) = p_Z(f^{-1}(x)) |d f^{-1}/dx|,   d f^{-1}/dx = 1 / f'(f^{-1}(x)).

Where |f'| < 1 the map squeezes length and the density rises; where |f'| > 1 it
stretches length and the density falls.

The maps here are the flowviz layers themselves: an elementwise layer's
``forward_1d`` / ``inverse_1d`` is the scalar map, and x = a z + b is the 2D
:class:`~flowviz.layers.Affine` acting on the first coordinate. There is no second
implementation of any map. The base densities are ``torch.distributions``.

Every number has two independent routes where the page checks one against the other:
an interval's probability from the base CDF and from quadrature of p_X, and
d f^{-1}/dx from autograd of the inverse and from autograd of the forward.

In four modules: :mod:`flowviz.line.map` (p_Z and f), :mod:`flowviz.line.quadrature`
(p_X and the probabilities of intervals), :mod:`flowviz.line.probe` (one point x) and
:mod:`flowviz.line.curves` (what the page draws); all is imported from here.
"""

from flowviz.line.curves import (
    LineCurves,
    line_curves,
    mass_in_window_cdf,
    probe_range,
    sample_histogram,
    view_ranges,
)
from flowviz.line.map import (
    BASE_KINDS,
    CLASSIC_BASE,
    CLASSIC_CASES,
    CLASSIC_INTERVAL,
    DEFAULT_BASE,
    DEFAULT_INTERVAL,
    DEFAULT_MAP,
    DEFAULT_PROBE,
    DTYPE,
    MAP_CLASSES,
    MAP_KINDS,
    SPLINE_BOUND,
    AffineOnLine,
    LineBase,
    LineMap,
    build_line_base,
    build_line_map,
    classic_map,
    spline_derivatives,
)
from flowviz.line.probe import (
    ProbeOnLine,
    probe,
)
from flowviz.line.quadrature import (
    CarriedInterval,
    base_mass,
    breakpoints_x,
    carry_interval,
    grid_with_breaks,
    integrate,
    mass_reach,
    near_image_end,
    panel_edges_x,
    pushforward_density,
    pushforward_log_prob,
    pushforward_mass,
    reaches_image_end,
)

__all__ = [
    "BASE_KINDS",
    "CLASSIC_BASE",
    "CLASSIC_CASES",
    "CLASSIC_INTERVAL",
    "DEFAULT_BASE",
    "DEFAULT_INTERVAL",
    "DEFAULT_MAP",
    "DEFAULT_PROBE",
    "DTYPE",
    "MAP_CLASSES",
    "MAP_KINDS",
    "SPLINE_BOUND",
    "AffineOnLine",
    "CarriedInterval",
    "LineBase",
    "LineCurves",
    "LineMap",
    "ProbeOnLine",
    "base_mass",
    "breakpoints_x",
    "build_line_base",
    "build_line_map",
    "carry_interval",
    "classic_map",
    "grid_with_breaks",
    "integrate",
    "line_curves",
    "mass_in_window_cdf",
    "mass_reach",
    "near_image_end",
    "panel_edges_x",
    "probe",
    "probe_range",
    "pushforward_density",
    "pushforward_log_prob",
    "pushforward_mass",
    "reaches_image_end",
    "sample_histogram",
    "spline_derivatives",
    "view_ranges",
]
