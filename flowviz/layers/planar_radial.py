"""Planar and radial flows (Rezende & Mohamed, 2015), both with exact inverses.

Most libraries can sample from these layers but cannot give their density,
because neither has a closed-form inverse in general. Here:

- planar: the inverse reduces to one scalar equation a + (w.u) tanh(a) = w.x + b,
  strictly increasing in a when w.u > -1, solved by Newton's method inside a
  shrinking bracket (so it always converges), then z = x - u tanh(a);
- radial: the distance to the centre obeys a quadratic, solved in a form that
  avoids cancellation.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor

from flowviz.layers.base import Bijector, Control, all_below, pair, random_point, uniform
from flowviz.spec_values import REQUIRED, fmt, fmt_exact, number, point

REFERENCE = "D. J. Rezende and S. Mohamed, Variational Inference with Normalizing Flows, ICML 2015"


def solve_planar_pre_activation(c: Tensor, k: float, max_iter: int = 100) -> Tensor:
    """Solve a + k tanh(a) = c for a, elementwise, given k > -1.

    g(a) = a + k tanh(a) - c has g' = 1 + k sech^2(a) >= min(1, 1 + k) > 0, and
    because |tanh| < 1 the root lies in [c - |k|, c + |k|]. Newton steps that
    leave the bracket are replaced by bisection.
    """
    if k == 0.0:
        return c
    lo, hi = c - abs(k), c + abs(k)
    # Start from the root of the linearisation at 0 (exact near the origin), kept in the bracket.
    a = torch.clamp(c / (1.0 + k), lo, hi)
    for _ in range(max_iter):
        t = torch.tanh(a)
        g = a + k * t - c
        slope = 1.0 + k * (1.0 - t * t)
        hi = torch.where(g > 0, a, hi)
        lo = torch.where(g < 0, a, lo)
        step = a - g / slope
        step = torch.where((step < lo) | (step > hi), 0.5 * (lo + hi), step)
        change = torch.abs(step - a)
        a = step
        # A Newton step this small leaves an error far below rounding (quadratic
        # convergence); a bisection step this small means the bracket is that narrow.
        if all_below(change - 1e-13 * (1.0 + torch.abs(a)), 0.0):
            break
    return a


class Planar(Bijector):
    r"""x = z + u tanh(w.z + b), invertible when w.u > -1.

    J_f = I + u w^T sech^2(w.z + b): a rank-one update of the identity, so the
    matrix determinant lemma gives det J_f = 1 + (w.u) sech^2(w.z + b).

    Path: the push u scaled by s, x = z + s u tanh(w.z + b); w.(s u) = s (w.u) > -1
    for every s in [0, 1], so each step is invertible.
    """

    type_name = "planar"
    jacobian = "full"
    reference = REFERENCE
    fields = {"w": (point, REQUIRED), "u": (point, REQUIRED), "b": (number, 0.0)}
    title = "Planar flow"
    caption = "x = z + u tanh(wᵀz + b) is the identity plus a rank-one term: full; the determinant lemma makes det cheap"
    controls = (
        *pair("w", ("Planar direction w₁", "Planar direction w₂"), -4, 4, 0.05, "needs w·u > −1"),
        *pair("u", ("Planar push u₁", "Planar push u₂"), -3, 3, 0.05, "needs w·u > −1"),
        Control(("b",), "Planar bias b", -3, 3, 0.05),
    )
    defaults = {"w": [2.0, 0.0], "u": [0.8, 0.4], "b": 0.0}
    # Its inverse takes up to a few dozen Newton steps.
    cost = 6.0

    @classmethod
    def check(cls, params) -> str | None:
        w, u = params["w"], params["u"]
        wu = w[0] * u[0] + w[1] * u[1]
        if math.isnan(wu):  # inf - inf: the terms overflow float64, so decide with exact arithmetic
            exact = sum(Fraction(a) * Fraction(b) for a, b in zip(w, u, strict=True))
            shown = fmt_exact(exact)
            if exact <= -1:
                return f"w.u = {shown}, but it must be > -1 for the layer to be invertible"
            return f"w.u = {shown} (its terms overflow float64, so the layer cannot be computed): use smaller w or u"
        if wu <= -1:
            return f"w.u = {fmt(wu)}, but it must be > -1 for the layer to be invertible"
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        w, u = random_point(g), random_point(g)
        if w[0] * u[0] + w[1] * u[1] <= -0.5:  # keep w.u > -1 (invertible) with a margin
            u = [-u[0], -u[1]]
        return {"w": w, "u": u, "b": uniform(g, -1, 1)[0]}

    @classmethod
    def condition_caption(cls, params) -> str:
        """The condition the sliders cannot keep by their ranges, as it stands."""
        wu = params["w"][0] * params["u"][0] + params["w"][1] * params["u"][1]
        return f"w·u = {wu:.3f}: it must stay above −1, or the layer folds the plane and has no inverse."

    latex = {
        "forward": r"x = z + u \tanh(w^{\top} z + b)",
        "inverse": r"\begin{gathered} z = x - u\tanh a, \text{ where} \\ a + (w^{\top}u)\tanh a = w^{\top}x + b \\ \text{(solved by safeguarded Newton)} \end{gathered}",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log\big(1 + h\, w^{\top}u\big) \\ h &= \operatorname{sech}^2(w^{\top}z + b) \end{aligned}",
    }

    def __init__(self, w, u, b: float = 0.0) -> None:
        super().__init__()
        self.refuse_invalid(w=w, u=u)
        self.register_buffer("w", torch.as_tensor(w, dtype=torch.float64))
        self.register_buffer("u", torch.as_tensor(u, dtype=torch.float64))
        self.b = float(b)
        self.wu = float(self.w @ self.u)

    def _at(self, s: float) -> Planar:
        return Planar(self.w, s * self.u, self.b)

    def _log_det_at(self, a: Tensor) -> Tensor:
        sech2 = torch.cosh(a).reciprocal().square()
        return torch.log1p(self.wu * sech2)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        a = z @ self.w + self.b
        x = z + torch.tanh(a).unsqueeze(-1) * self.u
        return x, self._log_det_at(a)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        c = x @ self.w + self.b
        with torch.no_grad():
            a_root = solve_planar_pre_activation(c.detach(), self.wu)
        # One Newton step from the detached root: the same value, and the exact
        # derivative da/dc = 1 / g'(a) by the implicit function theorem.
        t_root = torch.tanh(a_root)
        a = a_root - (a_root + self.wu * t_root - c) / (1.0 + self.wu * (1.0 - t_root * t_root))
        z = x - torch.tanh(a).unsqueeze(-1) * self.u
        return z, -self._log_det_at(a)


class Radial(Bijector):
    r"""x = z + beta (z - c) / (alpha + r), r = |z - c|: push away from, or pull towards, c.

    Invertible when alpha > 0 and beta > -alpha. In 2D,
    det J_f = (1 + beta h)(1 + beta h + beta h' r) with h = 1/(alpha + r), h' = -h^2,
    which simplifies to (1 + beta h)(1 + alpha beta h^2).

    Path: beta scaled by s; s beta > -alpha for every s in [0, 1]. With beta = 0
    the layer returns its input unchanged.
    """

    type_name = "radial"
    jacobian = "full"
    reference = REFERENCE
    fields = {"center": (point, [0.0, 0.0]), "alpha": (number, 1.0), "beta": (number, REQUIRED)}
    title = "Radial flow"
    caption = (
        "the push along z − c depends on both coordinates: full; the radial symmetry gives det in closed form"
    )
    controls = (
        *pair("center", ("Radial centre c₁", "Radial centre c₂"), -3, 3, 0.05),
        Control(("alpha",), "Radial α (softness)", 0.05, 3, 0.05, "kept above 0 so the map stays invertible"),
        # beta's lower limit depends on alpha: see control_range().
        Control(
            ("beta",),
            "Radial β (push > 0, pull < 0)",
            -3,
            5,
            0.05,
            "kept above −α so the map stays invertible",
        ),
    )
    defaults = {"center": [0.0, 0.0], "alpha": 1.0, "beta": 1.0}

    @classmethod
    def check(cls, params) -> str | None:
        if params["alpha"] <= 0:
            return f"alpha = {fmt(params['alpha'])}, but it must be > 0 for the layer to be invertible"
        if params["beta"] <= -params["alpha"]:
            return (
                f"beta = {fmt(params['beta'])}, but it must be > -alpha = {fmt(-params['alpha'])} "
                "for the layer to be invertible"
            )
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"center": random_point(g, 0.5), "alpha": uniform(g, 0.5, 2)[0], "beta": uniform(g, 0.2, 2)[0]}

    @classmethod
    def control_range(cls, control: Control, params) -> tuple[float, float]:
        """beta's slider starts one step above -alpha."""
        if control.path == ("beta",):
            return (round(-params["alpha"] + control.step, 6), control.high)
        return (control.low, control.high)

    @classmethod
    def invalid_at_or_below(cls, control: Control, params) -> float:
        return -params["alpha"] if control.path == ("beta",) else -math.inf

    latex = {
        "forward": r"x = z + \frac{\beta}{\alpha + r}(z - c),\quad r = \lVert z - c\rVert",
        "inverse": r"\begin{gathered} z = c + \frac{\alpha + r}{\alpha + \beta + r}(x - c), \\ \text{where } r \ge 0 \text{ solves} \\ r^2 + (\alpha + \beta - R)\,r - \alpha R = 0, \\ R = \lVert x - c\rVert \end{gathered}",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log\Big(1 + \frac{\beta}{\alpha + r}\Big) \\ &+ \log\Big(1 + \frac{\alpha\beta}{(\alpha + r)^2}\Big) \end{aligned}",
    }

    def __init__(self, center=(0.0, 0.0), alpha: float = 1.0, beta: float = 0.0) -> None:
        super().__init__()
        self.refuse_invalid(alpha=alpha, beta=beta)
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64))
        self.alpha = float(alpha)
        self.beta = float(beta)

    def _at(self, s: float) -> Radial:
        return Radial(self.center, self.alpha, s * self.beta)

    def _units(self, distance: Tensor) -> tuple[float | Tensor, float | Tensor, Tensor]:
        """alpha, beta and ``distance`` in units of a power of two near max(alpha, |beta|, distance).

        The rescaling is exact, and afterwards every term is at most about 1, so no
        square or product below can overflow (alpha = beta = 1e160: alpha beta and
        p^2 would) or underflow (alpha = R = 1e-200: alpha R would), and autograd's
        quotient rule never squares a huge denominator. The unit is piecewise
        constant: it carries no gradient.
        """
        largest = torch.clamp(distance.detach(), min=max(self.alpha, abs(self.beta)))
        unit = torch.exp2(torch.floor(torch.log2(largest)).clamp(max=1023.0))  # 2^1024 is inf
        return self.alpha / unit, self.beta / unit, distance / unit

    @staticmethod
    def _log_det_at(a, b, rho: Tensor) -> Tensor:
        """log|det J_f| from alpha, beta and r in a common unit (see :meth:`_units`)."""
        shift = a + rho
        push = b / shift
        return torch.log1p(push) + torch.log1p((a / shift) * push)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.beta == 0.0:
            return z.clone(), z.new_zeros(z.shape[:-1])
        d = z - self.center
        a, b, rho = self._units(torch.linalg.vector_norm(d, dim=-1))
        x = z + (b / (a + rho)).unsqueeze(-1) * d
        return x, self._log_det_at(a, b, rho)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.beta == 0.0:
            return x.clone(), x.new_zeros(x.shape[:-1])
        d = x - self.center
        a, b, q = self._units(torch.linalg.vector_norm(d, dim=-1))  # q: R in units
        p = a + b - q
        root = torch.sqrt(p * p + 4.0 * a * q)
        # The positive root of rho^2 + p rho - a q = 0, in whichever form does not
        # cancel. The other form's denominator is kept away from 0 (p + root is 0
        # when a q underflows against p^2) so that its unused gradient is not 0 * inf.
        cancels = p < 0
        stable_denominator = torch.where(cancels, torch.ones_like(p), p + root)
        rho = torch.where(cancels, 0.5 * (root - p), 2.0 * a * q / stable_denominator)
        z = self.center + ((a + rho) / (a + b + rho)).unsqueeze(-1) * d
        return z, -self._log_det_at(a, b, rho)
