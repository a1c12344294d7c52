"""A path through the ideas of normalizing flows, in the order a first course teaches them.

1. the change of variables on a line; 2. the three volume cases; 3. the Jacobian of the
inverse is the inverse of the Jacobian (on a line, then as a 2x2 matrix at a point);
4. one Gaussian made multimodal; 5. log p = prior term + log-det term; 6. why flows use
triangular Jacobians; 7. train your own. Each step names the page (and its state) that
shows the idea in full, so a link opens exactly what the step describes.

Nothing here draws: the pages do (``flowviz.ui.path``). The 2x2 Jacobians come from autograd
through the flow's own layers; the layers' analytic log-determinants check them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
import torch

from flowviz.flow import Flow
from flowviz.grid import as_float64
from flowviz.spec import encode_token, parse_spec
from flowviz.structure import autograd_jacobian

# The 1D page's classic cases, as its ?case= link parameter names them (x = a z + b on U[0, 1]).
ONE_D_CASES = ("volume", "compress", "expand")

# The 2D flow of steps 3-5: one Gaussian pulled into four modes by two planar layers and a rotation
# (the Explorer's opening preset, on a coarser grid so the path's pictures stay quick).
MULTIMODAL = parse_spec(
    {
        "base": {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]},
        "layers": [
            {"type": "planar", "w": [3.0, 0.0], "u": [1.1, 0.0], "b": 0.0},
            {"type": "planar", "w": [0.0, 3.0], "u": [0.0, 1.1], "b": 0.0},
            {"type": "rotation", "degrees": 45.0},
        ],
        "view": {"xlim": [-4.5, 4.5], "ylim": [-4.5, 4.5], "resolution": 128},
    }
)


def multimodal_spec(push: float) -> dict:
    """:data:`MULTIMODAL` with both planar pushes set to ``push`` (0: still the Gaussian; 1.1: four modes)."""
    spec = parse_spec(MULTIMODAL)
    spec["layers"][0]["u"] = [float(push), 0.0]
    spec["layers"][1]["u"] = [0.0, float(push)]
    return parse_spec(spec)


def explorer_link(spec: dict) -> str:
    """The Explorer's address for exactly this flow (the token the address bar itself keeps)."""
    return "/explore?" + urlencode({"spec": encode_token(parse_spec(spec))})


def one_d_link(case: str | None = None, probe: float | None = None) -> str:
    """The 1D page's address for one of its classic cases and a probe point (both optional)."""
    params: dict[str, str] = {}
    if case is not None:
        if case not in ONE_D_CASES:
            raise ValueError(f"case must be one of {', '.join(ONE_D_CASES)}, not {case!r}")
        params["case"] = case
    if probe is not None:
        params["probe"] = f"{float(probe):g}"
    return "/1d" + ("?" + urlencode(params) if params else "")


@dataclass(frozen=True)
class Step:
    """One idea of the path: what it says, what to try, and where it is shown in full."""

    title: str
    idea: str
    try_this: str
    page: str  # URL path of the page that shows it in full


STEPS: tuple[Step, ...] = (
    Step(
        "1 · Change of variables on a line",
        "Push a random variable z ~ p_Z through an invertible map x = f(z). Probability is only moved, "
        "never made or lost: the mass on [z, z+dz] lands on [f(z), f(z+dz)]. So the density of x is the "
        "density of the point it came from, divided by how much f stretches length there: "
        "p_X(x) = p_Z(f⁻¹(x)) · |d f⁻¹/dx|.",
        "Move the probe point: p_X(x) is p_Z(z) times |d f⁻¹/dx|, factor by factor.",
        "1d",
    ),
    Step(
        "2 · Three cases: volume kept, squeezed, stretched",
        "On a uniform density, a map with |f′| = 1 keeps every length and so the density. Where |f′| < 1 "
        "the same probability is squeezed into less length and the density rises; where |f′| > 1 it is "
        "stretched and the density falls. In 2D the same holds for areas, with |det J_f| in place of |f′|.",
        "Pick each case and compare the height of p_X with p_Z's height of 1.",
        "1d",
    ),
    Step(
        "3 · The Jacobian of the inverse is the inverse of the Jacobian",
        "Since f⁻¹(f(z)) = z, the chain rule gives d f⁻¹/dx = 1 / f′(z) on a line, and in the plane "
        "J_f⁻¹(x) = J_f(z)⁻¹: their product is the identity. That is why a flow can use whichever of "
        "the two determinants is cheaper: |det J_f⁻¹(x)| = 1 / |det J_f(z)|.",
        "Move the probe: both matrices change, their product stays the identity.",
        "explore",
    ),
    Step(
        "4 · From one mode to many",
        "A flow starts from something simple, a standard Gaussian, and bends it. Two planar layers, "
        "each pushing mass away from a line, and a rotation turn one bump into four: the data space can "
        "be multimodal while the latent space stays a single Gaussian.",
        "Raise the push from 0: watch one mode split into two, then four.",
        "explore",
    ),
    Step(
        "5 · log p = prior term + log-det term",
        "Taking logs turns the product into a sum: log p_X(x) = log p_Z(f⁻¹(x)) + log|det J_f⁻¹(x)|. "
        "The first term asks how likely the point's origin is under the Gaussian prior; the second "
        "corrects for the volume change. Training maximises exactly this sum over the data.",
        "Find a bright spot of p_X whose prior term is low: the log-det term makes up for it.",
        "explore",
    ),
    Step(
        "6 · Why triangular Jacobians",
        "A flow must be invertible and its log-determinant cheap. A general D×D determinant costs "
        "O(D³); a triangular one is the product of its diagonal, O(D). Coupling and autoregressive "
        "layers are built so their Jacobian is triangular, however complex their networks.",
        "On the full page, change the dimension D: the zeros above the diagonal stay, whatever the network.",
        "structure",
    ),
    Step(
        "7 · Train your own",
        "Put the pieces together: stack coupling layers, and move their parameters to raise the "
        "log-likelihood of your points. Draw a data set, pick one, or upload a CSV, and watch a "
        "flow learn its density.",
        "Pick 'Two moons' and press Start training.",
        "train",
    ),
)

NEXT_IDEA: dict[str, tuple[str, str]] = {
    # page -> (the page with the next idea, what it is: short enough for a phone's line)
    "start": ("explore", "build your own flow, layer by layer"),
    "1d": ("explore", "the same in 2D: the Jacobian matrix"),
    "explore": ("structure", "why triangular Jacobians"),
    "structure": ("train", "train a flow on your own data"),
    "train": ("start", "the path again, from the start"),
}


@dataclass(frozen=True)
class InverseJacobian:
    """The two Jacobians at a probed point x = f(z), by autograd through the flow's layers.

    ``forward`` = J_f(z), ``inverse`` = J_{f⁻¹}(x); ``product`` = J_f(z) J_{f⁻¹}(x), the identity
    up to rounding. ``log_det_inverse`` is the layers' own analytic log|det J_{f⁻¹}(x)|.
    """

    x: np.ndarray
    z: np.ndarray
    forward: np.ndarray
    inverse: np.ndarray
    product: np.ndarray
    log_det_inverse: float

    @property
    def inside(self) -> bool:
        return bool(np.isfinite(self.z).all() and np.isfinite(self.inverse).all())


def inverse_jacobian_at(flow: Flow, x: tuple[float, float]) -> InverseJacobian:
    """J_f at z = f⁻¹(x) and J_{f⁻¹} at x, each by its own autograd pass, and their product."""
    flow = as_float64(flow)
    point = torch.tensor(list(x), dtype=torch.float64)
    with torch.no_grad():
        z, log_det = flow.inverse_and_log_det(point[None])
    z = z[0]

    def forward(v: torch.Tensor) -> torch.Tensor:
        return flow.forward(v[None])[0]

    def inverse(v: torch.Tensor) -> torch.Tensor:
        return flow.inverse(v[None])[0]

    if not bool(torch.isfinite(z).all()):
        nan = np.full((2, 2), math.nan)
        return InverseJacobian(point.numpy(), z.numpy(), nan, nan, nan, math.nan)
    j_forward = autograd_jacobian(forward, z).detach().numpy()
    j_inverse = autograd_jacobian(inverse, point).detach().numpy()
    return InverseJacobian(
        point.numpy(), z.detach().numpy(), j_forward, j_inverse, j_forward @ j_inverse, float(log_det[0])
    )
