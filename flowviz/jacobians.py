"""The Jacobians the Structure page and the learning path show, measured once per draw.

Each draw (a seed, a dimension) gives the same layers and points in every session, so
what autograd measures is cached by those numbers and shared.
"""

from __future__ import annotations

from flowviz.memo import array_cache
from flowviz.structure import (
    AffineAutoregressive,
    AffineCouplingND,
    JacobianReport,
    LayerStructure,
    jacobian_report,
    layer_structures,
    random_point,
)


# A table of every layer type's 2×2 Jacobian is a few kB of arrays and LaTeX: 1 MB keeps the
# sixteen most recent draws.
@array_cache(max_bytes=2**20, max_entries=16)
def measured_structures(seed: int) -> list[LayerStructure]:
    """:func:`flowviz.structure.layer_structures` for a draw, cached by its seed."""
    return layer_structures(seed)


# Two D×D Jacobians for D up to 12 (the page's most): about 2.5 kB an entry. 1 MB keeps the
# 64 most recent (dimension, draw) pairs.
@array_cache(max_bytes=2**20, max_entries=64)
def measured_reports(dim: int, seed: int) -> tuple[JacobianReport, JacobianReport]:
    """An affine coupling and an affine autoregressive layer in dimension ``dim``, drawn with
    ``seed``, and their Jacobians at one random point (the same point for both)."""
    point = random_point(dim, seed)
    coupling = AffineCouplingND(dim, seed=seed + 1)
    autoregressive = AffineAutoregressive(dim, seed=seed + 2)
    return jacobian_report(coupling, point), jacobian_report(autoregressive, point)
