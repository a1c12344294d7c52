"""Elementwise layers: x_i = h(z_i) with a strictly monotone scalar h.

The Jacobian is diagonal, so log|det J_f(z)| = sum_i log|h'(z_i)|. Every
log-derivative below is written in a form that stays finite where the naive one
overflows or cancels (saturated tanh, large softplus inputs, tails of sinh).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.layers.base import (
    Control,
    Elementwise,
    LineControl,
    increasing,
    line_fmt,
    log1mexp,
    log_cosh,
    outside_to_nan,
    softplus,
    uniform,
)
from flowviz.layers.linear import AffineOnLine
from flowviz.spec_values import REQUIRED, dims, fmt, number, numbers

# The most knots a piecewise-linear layer may have: each is a control and a place
# that every grid point is compared with.
MAX_KNOTS = 64


def steepened_line_map(cls: type[Elementwise], params) -> tuple[list, str]:
    """x = h(k z) on the line, ``steepness`` k > 0: the layer's h after a stretch by k."""
    steepness = float(params["steepness"])
    if not steepness > 0:
        raise SpecError(f"{cls.type_name} map", f"steepness k = {line_fmt(steepness)} must be > 0")
    inner = "z" if steepness == 1 else rf"{line_fmt(steepness)}\,z"
    return [AffineOnLine(steepness, 0.0), cls()], rf"x = {cls.line_symbol}({inner})"


class Exp(Elementwise):
    r"""x_i = exp(z_i); image: the open positive quadrant.

    Path: blended with the identity, (1 - s) z_i + s e^{z_i}; the inverse is a
    safeguarded Newton solve (:func:`~flowviz.layers.base.blended_inverse`).
    """

    type_name = "exp"
    line_title = "Exponential"
    line_controls = (LineControl(("steepness",), "Steepness k in x = exp(k z)", "steepness", 0.1, 3.0, 1.0),)
    line_symbol = r"\\exp"
    line_map = classmethod(steepened_line_map)
    title = "Exp (elementwise)"
    latex = {
        "forward": r"x_i = e^{z_i}",
        "inverse": r"z_i = \log x_i \quad (x_i > 0)",
        "log_det": r"\log|\det J_f| = z_1 + z_2",
    }

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.exp(t), t

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        log_y = outside_to_nan(torch.log(y), y > 0)
        return log_y, -log_y


class Tanh(Elementwise):
    r"""x_i = tanh(z_i); image: the open square (-1, 1)^2.

    Path: blended with the identity, (1 - s) z_i + s tanh z_i; the inverse is a
    safeguarded Newton solve (:func:`~flowviz.layers.base.blended_inverse`).
    """

    type_name = "tanh"
    line_title = "tanh"
    line_controls = (LineControl(("steepness",), "Steepness k in x = tanh(k z)", "steepness", 0.1, 3.0, 1.0),)
    line_symbol = r"\\tanh"
    line_map = classmethod(steepened_line_map)
    title = "Tanh (elementwise)"
    latex = {
        "forward": r"x_i = \tanh z_i",
        "inverse": r"\begin{aligned} z_i &= \operatorname{artanh} x_i \\ &= \tfrac12\log\frac{1 + x_i}{1 - x_i} \quad (|x_i| < 1) \end{aligned}",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \sum_i \log(1 - \tanh^2 z_i) \\ &= \sum_i 2\,\big(\log 2 - z_i \\ &\qquad - \operatorname{softplus}(-2 z_i)\big) \end{aligned}",
    }

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        # 1 - tanh^2 t = 4 e^{-2t} / (1 + e^{-2t})^2, finite in log form however large |t| is.
        return torch.tanh(t), 2.0 * (math.log(2.0) - t - softplus(-2.0 * t))

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        inside = torch.abs(y) < 1
        log1p_y, log1m_y = torch.log1p(y), torch.log1p(-y)
        t = outside_to_nan(0.5 * (log1p_y - log1m_y), inside)
        return t, outside_to_nan(-(log1p_y + log1m_y), inside)


class Sigmoid(Elementwise):
    r"""x_i = 1 / (1 + e^{-z_i}); image: the open unit square (0, 1)^2.

    Path: blended with the identity, (1 - s) z_i + s sigma(z_i); the inverse is a
    safeguarded Newton solve (:func:`~flowviz.layers.base.blended_inverse`).
    """

    type_name = "sigmoid"
    line_title = "Sigmoid"
    line_controls = (LineControl(("steepness",), "Steepness k in x = σ(k z)", "steepness", 0.1, 3.0, 1.0),)
    line_symbol = r"\\sigma"
    line_map = classmethod(steepened_line_map)
    title = "Sigmoid (elementwise)"
    latex = {
        "forward": r"x_i = \sigma(z_i) = \frac{1}{1 + e^{-z_i}}",
        "inverse": r"\begin{gathered} z_i = \log x_i - \log(1 - x_i) \\ (0 < x_i < 1) \end{gathered}",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \sum_i \log\sigma(z_i)\,\sigma(-z_i) \\ &= -\sum_i \big(\operatorname{softplus}(z_i) \\ &\qquad + \operatorname{softplus}(-z_i)\big) \end{aligned}",
    }

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(t), -(softplus(t) + softplus(-t))

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        inside = (y > 0) & (y < 1)
        log_y, log1m_y = torch.log(y), torch.log1p(-y)
        return outside_to_nan(log_y - log1m_y, inside), outside_to_nan(-(log_y + log1m_y), inside)


class Softplus(Elementwise):
    r"""x_i = log(1 + e^{z_i}); image: the open positive quadrant.

    Path: blended with the identity, (1 - s) z_i + s softplus(z_i); the inverse is a
    safeguarded Newton solve (:func:`~flowviz.layers.base.blended_inverse`).
    """

    type_name = "softplus"
    title = "Softplus (elementwise)"
    latex = {
        "forward": r"x_i = \log(1 + e^{z_i})",
        "inverse": r"z_i = x_i + \log(1 - e^{-x_i}) \quad (x_i > 0)",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \sum_i \log\sigma(z_i) \\ &= -\sum_i \operatorname{softplus}(-z_i) \end{aligned}",
    }

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return softplus(t), -softplus(-t)

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        inside = y > 0
        safe = torch.where(inside, y, torch.ones_like(y))
        log_one_minus = log1mexp(safe)  # log(1 - e^{-y})
        return outside_to_nan(safe + log_one_minus, inside), outside_to_nan(-log_one_minus, inside)


class LeakyReLU(Elementwise):
    r"""x_i = z_i for z_i >= 0, a z_i below: two slopes, a kink at 0.

    Path: the negative slope a^s (log a times s), from 1 (the identity) to a.
    """

    type_name = "leaky_relu"
    title = "Leaky ReLU (elementwise)"
    fields = {"negative_slope": (number, 0.1)}
    controls = (
        Control(
            ("negative_slope",), "Negative slope a", 0.05, 3, 0.05, "kept above 0 so the map stays invertible"
        ),
    )
    defaults = {"negative_slope": 0.3}

    @classmethod
    def check(cls, params) -> str | None:
        if params["negative_slope"] <= 0:
            return (
                f"negative_slope = {fmt(params['negative_slope'])}, "
                "but it must be > 0 for the layer to be invertible"
            )
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"negative_slope": uniform(g, 0.1, 0.8)[0]}

    latex = {
        "forward": r"x_i = \begin{cases} z_i & z_i \ge 0 \\ a\, z_i & z_i < 0 \end{cases}",
        "inverse": r"z_i = \begin{cases} x_i & x_i \ge 0 \\ x_i / a & x_i < 0 \end{cases}",
        "log_det": r"\log|\det J_f| = \log a \cdot \#\{i : z_i < 0\}",
    }

    def __init__(self, negative_slope: float = 0.1, dims=(0, 1)) -> None:
        super().__init__(dims)
        self.refuse_invalid(negative_slope=negative_slope)
        self.negative_slope = float(negative_slope)
        self.log_slope = math.log(self.negative_slope)

    def _at(self, s: float) -> LeakyReLU:
        return LeakyReLU(self.negative_slope**s, self.dims)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        negative = t < 0
        out = torch.where(negative, t * self.negative_slope, t)
        # negative * log a in t's dtype: a scalar torch.where would round log a to float32.
        return out, negative.to(t.dtype) * self.log_slope

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        negative = y < 0
        out = torch.where(negative, y / self.negative_slope, y)
        return out, negative.to(y.dtype) * -self.log_slope


class SinhArcsinh(Elementwise):
    r"""x_i = sinh((asinh z_i + skew) tailweight), Jones & Pewsey (2009).

    ``skew`` shifts mass to one side, ``tailweight`` > 1 thickens the tails and
    < 1 thins them.

    Path: skew times s and log tailweight times s, from (0, 1), the identity.
    """

    type_name = "sinh_arcsinh"
    line_title = "Sinh-arcsinh"
    line_controls = (
        LineControl(("skew",), "Skew ε (shifts mass to one side)", "sa_skew", -2.0, 2.0, 0.5),
        LineControl(("tailweight",), "Tail weight δ (> 1: heavier tails)", "sa_tailweight", 0.2, 3.0, 1.3),
    )

    @classmethod
    def line_map(cls, params) -> tuple[list, str]:
        skew, tailweight = float(params["skew"]), float(params["tailweight"])
        if not tailweight > 0:
            raise SpecError("sinh-arcsinh map", f"tailweight = {line_fmt(tailweight)} must be > 0")
        latex = rf"x = \sinh\big((\operatorname{{asinh}} z {skew:+.4g})\cdot {line_fmt(tailweight)}\big)"
        return [cls.unchecked(skew, tailweight)], latex

    title = "Sinh-arcsinh (skew and tails)"
    fields = {"skew": (number, 0.0), "tailweight": (number, 1.0)}
    controls = (
        Control(("skew",), "Skew ε", -3, 3, 0.05),
        Control(("tailweight",), "Tail weight δ", 0.2, 3, 0.05, "kept above 0 so the map stays invertible"),
    )
    defaults = {"skew": 0.5, "tailweight": 1.3}

    @classmethod
    def check(cls, params) -> str | None:
        if params["tailweight"] <= 0:
            return (
                f"tailweight = {fmt(params['tailweight'])}, but it must be > 0 for the layer to be invertible"
            )
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"skew": uniform(g, -1, 1)[0], "tailweight": uniform(g, 0.5, 2)[0]}

    reference = "M. C. Jones and A. Pewsey, Sinh-arcsinh distributions, Biometrika 96 (2009)"
    latex = {
        "forward": r"x_i = \sinh\big((\operatorname{asinh} z_i + \epsilon)\,\delta\big)",
        "inverse": r"z_i = \sinh\big(\operatorname{asinh}(x_i)/\delta - \epsilon\big)",
        "log_det": r"\begin{gathered} \log|\det J_f| = \sum_i \log\frac{\delta\,\cosh a_i}{\sqrt{1 + z_i^2}} \\ a_i = (\operatorname{asinh} z_i + \epsilon)\,\delta \end{gathered}",
    }

    def __init__(self, skew: float = 0.0, tailweight: float = 1.0, dims=(0, 1)) -> None:
        super().__init__(dims)
        self.refuse_invalid(tailweight=tailweight)
        self.skew = float(skew)
        self.tailweight = float(tailweight)
        self.log_tailweight = math.log(self.tailweight)

    @property
    def is_identity(self) -> bool:
        return super().is_identity or (self.skew == 0.0 and self.tailweight == 1.0)

    def _at(self, s: float) -> SinhArcsinh:
        return SinhArcsinh(s * self.skew, self.tailweight**s, self.dims)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        u = (torch.asinh(t) + self.skew) * self.tailweight
        log_sqrt_1p_t2 = torch.log(torch.hypot(torch.ones_like(t), t))
        return torch.sinh(u), log_cosh(u) + self.log_tailweight - log_sqrt_1p_t2

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        v = torch.asinh(y) / self.tailweight - self.skew
        log_sqrt_1p_y2 = torch.log(torch.hypot(torch.ones_like(y), y))
        return torch.sinh(v), log_cosh(v) - self.log_tailweight - log_sqrt_1p_y2


class PiecewiseLinear(Elementwise):
    r"""A monotone piecewise-linear map: slope s_k on the k-th segment between knots.

    The map is anchored at the first knot, h(knots[0]) = knots[0]; slopes below 1
    squeeze their segment (density rises there), slopes above 1 stretch it.

    Path: the same knots with slopes s_k^s (log-slopes times s), from all 1 (the
    identity) to their values.
    """

    type_name = "piecewise_linear"
    line_title = "Piecewise linear (one slope per segment)"
    line_controls = (
        LineControl(("knots", 0), "First knot (z where the slope changes)", "pl_knot1", -3.0, 3.0, -1.0),
        LineControl(("knots", 1), "Second knot (z where the slope changes)", "pl_knot2", -3.0, 3.0, 1.0),
        LineControl(("slopes", 0), "Slope left of the first knot", "pl_slope1", 0.1, 3.0, 2.0),
        LineControl(("slopes", 1), "Slope between the knots", "pl_slope2", 0.1, 3.0, 0.5),
        LineControl(("slopes", 2), "Slope right of the second knot", "pl_slope3", 0.1, 3.0, 1.5),
    )

    @classmethod
    def line_map(cls, params) -> tuple[list, str]:
        knots = [float(v) for v in params["knots"]]
        slopes = [float(v) for v in params["slopes"]]
        if not increasing(knots):
            raise SpecError("piecewise linear map", "the knots must increase from left to right")
        if len(slopes) != len(knots) + 1 or min(slopes) <= 0:
            raise SpecError("piecewise linear map", "give one slope > 0 for each of the segments")
        text = ",\\ ".join(f"s_{i + 1} = {line_fmt(s)}" for i, s in enumerate(slopes))
        return [cls.unchecked(knots, slopes)], rf"x = h(z),\ \text{{slopes }} {text}"

    title = "Piecewise linear"
    # Beyond the usual layer types: one slope per segment, the 1D page's clearest
    # picture of compress and expand side by side.
    fields = {"dims": (dims, [0, 1]), "knots": (numbers, REQUIRED), "slopes": (numbers, REQUIRED)}
    defaults = {"dims": [0, 1], "knots": [-1.0, 1.0], "slopes": [1.0, 0.4, 1.0]}
    # Each point is compared with every knot.
    cost_per_knot = 0.3
    # Up to this many knots each number has its own slider; beyond, one table holds them all.
    slider_count = 4
    count_field = "knots"
    # The editor's control of the count: its label and what it counts, the most it allows.
    count_label = "Number of knots"
    count_help = "Knots split the line into segments, one slope each"
    max_count = MAX_KNOTS

    @classmethod
    def resize(cls, params: dict, count: int) -> None:
        """Give the entry ``count`` knots: new ones 1 apart beyond the last, each new segment of slope 1."""
        old = list(params["knots"])
        extra = [old[-1] + 1.0 + i for i in range(count - len(old))]
        params["knots"] = (old + extra)[:count]
        params["slopes"] = (list(params["slopes"]) + [1.0] * (count + 1))[: count + 1]

    @classmethod
    def check(cls, params) -> str | None:
        knots, slopes = params["knots"], params["slopes"]
        if not knots:
            return "knots must list at least one knot"
        if len(knots) > MAX_KNOTS:
            return (
                f"knots lists {len(knots)} knots, but a piecewise-linear layer has at most {MAX_KNOTS}: "
                "each knot is a control and a place that every grid point is compared with"
            )
        if len(slopes) != len(knots) + 1:
            return (
                f"slopes has {len(slopes)} numbers, but {len(knots)} knots make "
                f"{len(knots) + 1} segments: give one slope per segment"
            )
        for i in range(1, len(knots)):
            if knots[i] <= knots[i - 1]:
                return f"knots must increase, but knots[{i}] = {fmt(knots[i])} <= knots[{i - 1}]"
        for i, slope in enumerate(slopes):
            if slope <= 0:
                return f"slopes[{i}] = {fmt(slope)}, but it must be > 0 for the map to be invertible"
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"knots": sorted(uniform(g, -1.5, 1.5, 2)), "slopes": uniform(g, 0.3, 2.5, 3)}

    @classmethod
    def controls_for(cls, params) -> list[Control]:
        """A position per knot and a slope per segment."""
        knots = len(params["knots"])
        controls = [
            Control(("knots", k), f"Knot {k + 1} position", -4, 4, 0.05, "knots must increase")
            for k in range(knots)
        ]
        keep = "kept above 0 so the map stays invertible"
        controls += [
            Control(("slopes", k), f"Segment {k + 1} slope", 0.1, 4, 0.05, keep) for k in range(knots + 1)
        ]
        return controls

    @classmethod
    def point_cost(cls, params) -> float:
        return cls.cost + cls.cost_per_knot * len(params["knots"])

    latex = {
        "forward": r"\begin{gathered} x_i = h(z_i),\quad h(t) = y_k + s_k (t - t_k) \\ \text{on segment } k \end{gathered}",
        "inverse": r"\begin{gathered} z_i = t_k + (x_i - y_k) / s_k \\ \text{on segment } k \text{ of the image} \end{gathered}",
        "log_det": r"\log|\det J_f| = \sum_i \log s_{k(z_i)}",
    }

    def __init__(self, knots, slopes, dims=(0, 1)) -> None:
        super().__init__(dims)
        self.refuse_invalid(knots=knots, slopes=slopes)
        t = torch.as_tensor(knots, dtype=torch.float64)
        s = torch.as_tensor(slopes, dtype=torch.float64)
        # y-values of the knots: y_0 = t_0, then each inner segment adds s_k (t_{k} - t_{k-1}).
        rises = s[1:-1] * (t[1:] - t[:-1]) if len(t) > 1 else t.new_zeros(0)
        y = torch.cat([t[:1], t[:1] + torch.cumsum(rises, 0)])
        # Segment k starts at knot k-1 (segment 0 extends to -inf); anchor points per segment.
        self.register_buffer("knots", t)
        self.register_buffer("knot_values", y)
        self.register_buffer("slopes", s)
        self.register_buffer("start_t", torch.cat([t[:1], t]))
        self.register_buffer("start_y", torch.cat([y[:1], y]))

    @property
    def is_identity(self) -> bool:
        return super().is_identity or bool(torch.all(self.slopes == 1.0))

    def _at(self, s: float) -> PiecewiseLinear:
        return PiecewiseLinear(self.knots, torch.exp(s * torch.log(self.slopes)), self.dims)

    def _segment(self, v: Tensor, edges: Tensor) -> Tensor:
        return (v.unsqueeze(-1) >= edges).sum(-1)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        k = self._segment(t, self.knots)
        s = self.slopes[k]
        return self.start_y[k] + s * (t - self.start_t[k]), torch.log(s)

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        k = self._segment(y, self.knot_values)
        s = self.slopes[k]
        return self.start_t[k] + (y - self.start_y[k]) / s, -torch.log(s)
