"""Swirl: rotate each point about a centre by an angle that fades with distance."""

from __future__ import annotations

import torch
from torch import Tensor

from flowviz.layers.base import Bijector, Control, pair, random_point, uniform
from flowviz.spec_values import REQUIRED, fmt, number, point

_Q_MAX = 1e100  # |z - c| / radius beyond which exp(-q^2 / 2) is 0 many times over


class Swirl(Bijector):
    r"""x = c + R(theta(r)) (z - c), theta(r) = strength exp(-r^2 / (2 radius^2)).

    The distance r = |z - c| is unchanged, so the inverse rotates back by the
    same angle read off x. In polar coordinates the map is (r, phi) ->
    (r, phi + theta(r)), whose Jacobian [[1, 0], [theta'(r), 1]] has determinant
    1: the swirl preserves area exactly, however strong, and log|det J| = 0.

    Path: the strength scaled by s. With strength 0 the layer returns its input
    unchanged.
    """

    type_name = "swirl"
    fields = {"center": (point, [0.0, 0.0]), "strength": (number, REQUIRED), "radius": (number, 1.0)}
    title = "Swirl"
    caption = "rotating by an angle that depends on the radius mixes both coordinates: full, yet it keeps area (det J = 1)"
    controls = (
        *pair("center", ("Swirl centre c₁", "Swirl centre c₂"), -3, 3, 0.05),
        Control(("strength",), "Swirl strength (radians at the centre)", -10, 10, 0.1),
        Control(("radius",), "Swirl radius ρ", 0.1, 4, 0.05, "kept above 0"),
    )
    defaults = {"center": [0.0, 0.0], "strength": 2.0, "radius": 1.5}

    @classmethod
    def check(cls, params) -> str | None:
        if params["radius"] <= 0:
            return f"radius = {fmt(params['radius'])}, but it must be > 0"
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {
            "center": random_point(g, 0.5),
            "strength": uniform(g, 1, 3)[0],
            "radius": uniform(g, 0.8, 2)[0],
        }

    jacobian = "full"
    volume_preserving = True
    latex = {
        "forward": r"\begin{gathered} x = c + R\big(\theta(r)\big)(z - c) \\ \theta(r) = s\, e^{-r^2/(2\rho^2)},\quad r = \lVert z - c\rVert \end{gathered}",
        "inverse": r"\begin{gathered} z = c + R\big(-\theta(r)\big)(x - c) \\ r = \lVert x - c\rVert \text{ (a rotation keeps } r) \end{gathered}",
        "log_det": r"\begin{gathered} \text{in polar coordinates:} \\ (r, \varphi) \mapsto \big(r, \varphi + \theta(r)\big), \\ J = \begin{pmatrix}1 & 0\\ \theta'(r) & 1\end{pmatrix},\quad \det J = 1 \\ \log|\det J_f| = 0 \end{gathered}",
    }

    def __init__(self, center=(0.0, 0.0), strength: float = 0.0, radius: float = 1.0) -> None:
        super().__init__()
        self.refuse_invalid(radius=radius)
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64))
        self.strength = float(strength)
        self.radius = float(radius)

    def _at(self, s: float) -> Swirl:
        return Swirl(self.center, s * self.strength, self.radius)

    def _rotate(self, v: Tensor, sign: float) -> Tensor:
        if self.strength == 0.0:
            return v.clone()
        d = v - self.center
        # r^2 / radius^2 as (d / radius)^2: radius^2 itself underflows for radius = 1e-200
        # (0 / 0 at the centre) and overflows for radius = 1e200. Past |q| = 40 the
        # exponential is 0 anyway; the clamp keeps q finite (d / 5e-324 is inf) so
        # that autograd never meets 0 * inf.
        q = torch.clamp(d / self.radius, -_Q_MAX, _Q_MAX)
        theta = sign * self.strength * torch.exp(-0.5 * (q * q).sum(-1))
        cos, sin = torch.cos(theta), torch.sin(theta)
        rotated = torch.stack([cos * d[..., 0] - sin * d[..., 1], sin * d[..., 0] + cos * d[..., 1]], -1)
        return self.center + rotated

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._rotate(z, 1.0), z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._rotate(x, -1.0), x.new_zeros(x.shape[:-1])
