"""Affine coupling (Dinh et al., RealNVP 2017): one coordinate steers the other.

x_c = z_c and x_o = z_o exp(g_s(z_c)) + g_t(z_c). Because x_c does not depend
on z_o, the Jacobian is triangular and its determinant is the product of the
diagonal, 1 * exp(g_s(z_c)): any functions g_s, g_t keep the layer invertible
with a free log-det. The hand-built layer uses the functions of the spec
(a sine plus a quadratic); a trained one uses a small network. Both are this
class with a different conditioner.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from flowviz.layers.base import Bijector, Control, random_point, uniform
from flowviz.spec_values import condition_index, scalar_function


def _function_controls(key: str, name: str, scale: float) -> list[Control]:
    """The six numbers of g(t) = a sin(f t + phi) + c0 + c1 t + c2 t^2."""
    return [
        Control((key, "sin", 0), f"{name}: sine amplitude a", -3 * scale, 3 * scale, 0.05),
        Control((key, "sin", 1), f"{name}: sine frequency f", 0.0, 4.0, 0.05),
        Control((key, "sin", 2), f"{name}: sine phase φ", -3.14, 3.14, 0.01),
        Control((key, "poly", 0), f"{name}: constant c₀", -3 * scale, 3 * scale, 0.05),
        Control((key, "poly", 1), f"{name}: linear c₁", -2 * scale, 2 * scale, 0.05),
        Control((key, "poly", 2), f"{name}: quadratic c₂", -2 * scale, 2 * scale, 0.05),
    ]


REFERENCE = "L. Dinh, J. Sohl-Dickstein and S. Bengio, Density estimation using Real NVP, ICLR 2017"


class SinPoly(torch.nn.Module):
    r"""g(t) = amplitude sin(frequency t + phase) + c0 + c1 t + c2 t^2 (either part optional)."""

    def __init__(self, sin=None, poly=None) -> None:
        super().__init__()
        self.sin = tuple(float(v) for v in sin) if sin else None
        self.poly = tuple(float(v) for v in poly) if poly else None

    @classmethod
    def from_spec(cls, spec: Mapping) -> SinPoly:
        return cls(spec.get("sin"), spec.get("poly"))

    def forward(self, t: Tensor) -> Tensor:
        out = torch.zeros_like(t)
        if self.sin:
            amplitude, frequency, phase = self.sin
            out = out + amplitude * torch.sin(frequency * t + phase)
        if self.poly:
            c0, c1, c2 = self.poly
            out = out + c0 + t * (c1 + c2 * t)
        return out

    def latex(self) -> str:
        terms = []
        if self.sin:
            a, f, p = self.sin
            terms.append(rf"{a:g}\sin({f:g}\,t {p:+g})")
        if self.poly:
            c0, c1, c2 = self.poly
            terms.append(rf"{c0:g} {c1:+g}\,t {c2:+g}\,t^2")
        return " + ".join(terms) if terms else "0"


class SinPolyConditioner(torch.nn.Module):
    """The spec's conditioner: two scalar functions of the passing coordinate."""

    def __init__(self, shift: SinPoly, log_scale: SinPoly) -> None:
        super().__init__()
        self.shift = shift
        self.log_scale = log_scale

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.shift(t), self.log_scale(t)


class ScaledConditioner(torch.nn.Module):
    """Another conditioner's two outputs times s: the coupling's path toward the identity (g_t = g_s = 0)."""

    def __init__(self, conditioner: torch.nn.Module, s: float) -> None:
        super().__init__()
        self.inner = conditioner
        self.s = float(s)

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self.inner(t)
        return self.s * shift, self.s * log_scale


class AffineCoupling(Bijector):
    r"""x_c = z_c, x_o = z_o exp(g_s(z_c)) + g_t(z_c); c = ``condition_on``, o the other.

    ``conditioner(z_c) -> (g_t, g_s)``, each of the shape of z_c.

    Path: g_s and g_t times s, x_o = z_o exp(s g_s(z_c)) + s g_t(z_c): the
    log-scale and the shift grow together from 0 (the identity); the same for a
    trained conditioner.
    """

    type_name = "coupling"
    jacobian = "triangular"
    reference = REFERENCE
    fields = {
        "condition_on": (condition_index, 0),
        "shift": (scalar_function, {}),
        "log_scale": (scalar_function, {}),
    }
    title = "Affine coupling"
    caption = (
        "the conditioning coordinate passes through unchanged (x_c = z_c), so ∂x_c/∂z_o = 0: J is triangular "
        "and det J = exp(g_s(z_c)), the product of its diagonal"
    )
    controls = (
        *_function_controls("shift", "Shift g_t", 1.0),
        *_function_controls("log_scale", "Log-scale g_s", 0.5),
    )
    # The editor shows each function's controls on a tab of its own.
    control_groups = {"shift": "Shift g_t(x_c)", "log_scale": "Log-scale g_s(x_c)"}
    defaults = {"condition_on": 0, "shift": {"sin": [1.0, 1.5, 0.0]}, "log_scale": {}}

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        def function() -> dict:
            return {
                "sin": uniform(g, 0.3, 1.0) + uniform(g, 0.5, 2.0) + uniform(g, -1, 1),
                "poly": [*random_point(g, 0.5), 0.1],
            }

        return {
            "condition_on": int(torch.randint(0, 2, (1,), generator=g)),
            "shift": function(),
            "log_scale": function(),
        }

    @classmethod
    def build(cls, params) -> AffineCoupling:
        """The layer of one canonical spec entry's parameters."""
        return cls.from_spec(**params)

    latex = {
        "forward": r"x_c = z_c,\quad x_o = z_o\, e^{g_s(z_c)} + g_t(z_c)",
        "inverse": r"z_c = x_c,\quad z_o = \big(x_o - g_t(x_c)\big)\, e^{-g_s(x_c)}",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log\Big|\det\begin{pmatrix}1 & 0\\ \ast & e^{g_s(z_c)}\end{pmatrix}\Big| \\ &= g_s(z_c) \end{aligned}",
    }

    def __init__(self, condition_on: int, conditioner: torch.nn.Module) -> None:
        super().__init__()
        self.condition_on = int(condition_on)
        self.other = 1 - self.condition_on
        self.conditioner = conditioner

    @classmethod
    def from_spec(cls, condition_on: int = 0, shift=None, log_scale=None) -> AffineCoupling:
        conditioner = SinPolyConditioner(SinPoly.from_spec(shift or {}), SinPoly.from_spec(log_scale or {}))
        return cls(condition_on, conditioner)

    def _at(self, s: float) -> AffineCoupling:
        return AffineCoupling(self.condition_on, ScaledConditioner(self.conditioner, s))

    def _join(self, passed: Tensor, changed: Tensor) -> Tensor:
        parts = (passed, changed) if self.condition_on == 0 else (changed, passed)
        return torch.stack(parts, -1)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z_c, z_o = z[..., self.condition_on], z[..., self.other]
        shift, log_scale = self.conditioner(z_c)
        return self._join(z_c, z_o * torch.exp(log_scale) + shift), log_scale

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_c, x_o = x[..., self.condition_on], x[..., self.other]
        shift, log_scale = self.conditioner(x_c)
        return self._join(x_c, (x_o - shift) * torch.exp(-log_scale)), -log_scale
