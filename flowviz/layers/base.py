"""The contract every layer keeps.

A :class:`Bijector` is an invertible map x = f(z) of points in the plane, held
as tensors of shape ``(..., 2)``. It gives, from shared intermediates:

- ``forward_and_log_det(z) -> (x, log|det J_f(z)|)``
- ``inverse_and_log_det(x) -> (z, log|det J_{f^{-1}}(x)|)``

Both log-dets have shape ``(...)``. Along a round trip they are negatives of
each other: log|det J_{f^{-1}}(f(z))| = -log|det J_f(z)|.

Where x lies outside the image of f (x <= 0 after ``exp``) the inverse returns
NaN for z and the log-det; callers treat any non-finite value as "outside". The
same classes serve float64 grids (no grad) and float32 training (autograd):
there is no NumPy twin of any layer.

Each class also states its math once, for people: ``jacobian`` (the sparsity of
J: diagonal, triangular, permutation or full), ``volume_preserving``, and
``latex`` with the forward map, the inverse and log|det J_f|.

Each spec layer also declares, beside its math, everything the rest of the app
needs to know about its type, so that the type is named in its own module alone:
``fields`` (the spec's fields, each a parser from :mod:`flowviz.spec_values` and a
default), ``check`` (the condition for invertibility, as the message the spec
shows), ``title`` and ``caption`` (the editor's name, and one line on why the
Jacobian has its shape), ``controls`` (the editor's sliders: ranges and steps),
``defaults`` (what "add layer" inserts), ``example`` (random valid parameters for
tests) and ``point_cost`` (what one grid point costs, for the spec's limits).

Every layer also has a path from the identity to itself, ``at(s)`` for s in
[0, 1]: a layer of the same kind, the identity at s = 0 and the layer itself at
s = 1, invertible with an exact log-det for every s and continuous in s. Playing
a flow walks its layers along these paths (:meth:`flowviz.flow.Flow.at`). A
layer with det J < 0 (``reverses_orientation``) cannot be reached from the
identity through invertible maps, since det J would have to pass through 0 on
the way: its path flips orientation in one step at s = ``FLIP_AT``.
"""

from __future__ import annotations

import contextvars
import copy
import inspect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.spec_values import Parser

LOG2 = math.log(2.0)
# Where the path of an orientation-reversing layer applies its flip, in one step.
FLIP_AT = 0.5


def check_fraction(s: float) -> float:
    """s as a float, or ValueError unless it is a finite number in [0, 1]."""
    value = float(s)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"s = {s}, but it must be a finite number in [0, 1]")
    return value


@dataclass(frozen=True)
class Control:
    """One slider of the editor: it edits the number at ``path`` of a canonical layer entry."""

    path: tuple  # where the number lives in the layer entry, e.g. ("w", 0)
    label: str  # visible label: says what it sets
    low: float
    high: float
    step: float
    help: str = ""


@dataclass(frozen=True)
class LineControl:
    """One slider of the 1D page's map: it sets the number at ``path`` of the map's parameters
    (``("slope",)``, ``("knots", 0)``), shown as ``label``; ``name`` keeps its value in the page
    (maps that share a parameter share its name, so switching between them keeps it)."""

    path: tuple
    label: str
    name: str
    low: float
    high: float
    default: float


def pair(
    key: str, labels: tuple[str, str], low: float, high: float, step: float, help: str = ""
) -> list[Control]:
    """The two controls of a point-valued field."""
    return [Control((key, i), labels[i], low, high, step, help) for i in range(2)]


def uniform(generator: torch.Generator, low: float, high: float, size: int = 1) -> list[float]:
    """``size`` numbers drawn uniformly from [low, high): the stuff of example parameters."""
    return (low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)).tolist()


def random_point(generator: torch.Generator, scale: float = 1.5) -> list[float]:
    """A point drawn uniformly from the square [-scale, scale]^2."""
    return uniform(generator, -scale, scale, 2)


# True while a layer is built by code that has checked its parameters its own way
# (the 1D page's maps): see Bijector.unchecked.
_UNCHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("unchecked", default=False)


def increasing(values) -> bool:
    """True when each value is greater than the one before."""
    return all(b > a for a, b in itertools.pairwise(values))


def line_fmt(value: float) -> str:
    """A number in the 1D page's formulas: four significant digits."""
    return f"{value:.4g}"


def plain(value: Any) -> Any:
    """A parameter as the spec holds it: tensors and tuples become (nested) lists of Python numbers."""
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Bijector(torch.nn.Module):
    """An invertible map of the plane with an analytic log|det J|."""

    type_name: ClassVar[str] = ""
    jacobian: ClassVar[str] = "full"  # diagonal | triangular | permutation | full
    volume_preserving: ClassVar[bool] = False
    latex: ClassVar[dict[str, str]] = {}
    reference: ClassVar[str] = ""

    # The layer type's contract with the spec and the app (see the module docstring).
    fields: ClassVar[dict[str, tuple[Parser, Any]]] = {}
    title: ClassVar[str] = ""
    caption: ClassVar[str] = ""
    controls: ClassVar[tuple[Control, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    # One grid point through this layer, in simple-layer steps (one simple layer, one way: 1).
    cost: ClassVar[float] = 1.0
    # For the editor: a field of signed factors shown as magnitudes and mirror switches;
    # the groups of controls shown on tabs of their own (field -> tab title); the list
    # field whose length is the layer's count of bins or knots (see ``resize``).
    signed_magnitudes: ClassVar[str] = ""
    control_groups: ClassVar[dict[str, str]] = {}
    count_field: ClassVar[str] = ""
    # The 1D page's map of this type (x = f(z) on a line, see ``line_map``): its name there, '' where none;
    # its sliders there, laid out this many to a row, and a line of text above them.
    line_title: ClassVar[str] = ""
    line_controls: ClassVar[tuple[LineControl, ...]] = ()
    line_columns: ClassVar[int] = 1
    line_caption: ClassVar[str] = ""

    @classmethod
    def unchecked(cls, *args: Any, **kwargs: Any) -> Bijector:
        """The layer built without the spec's check, for callers that apply conditions of their own."""
        token = _UNCHECKED.set(True)
        try:
            return cls(*args, **kwargs)
        finally:
            _UNCHECKED.reset(token)

    @classmethod
    def line_map(cls, params: Mapping[str, Any]) -> tuple[list, str]:
        """The steps (each with forward_1d and inverse_1d) and the LaTeX of the 1D map; SpecError when invalid."""
        raise NotImplementedError(f"{cls.type_name} has no map on the line")

    @classmethod
    def build(cls, params: Mapping[str, Any]) -> Bijector:
        """The layer of one canonical spec entry's parameters (``type`` and ``enabled`` left out)."""
        return cls(**params)

    @classmethod
    def condition_caption(cls, params: Mapping[str, Any]) -> str | None:
        """A line on the condition no slider range can keep (planar's w.u), as it stands; None where none."""
        return None

    @classmethod
    def check(cls, params: Mapping[str, Any]) -> str | None:
        """Why these parsed parameters give no invertible layer, as the spec says it; None when they do."""
        return None

    @classmethod
    def example(cls, generator: torch.Generator) -> dict[str, Any]:
        """Random, valid parameters of this type (the spec's own field names), for tests."""
        return {}

    @classmethod
    def controls_for(cls, params: Mapping[str, Any]) -> list[Control]:
        """Every slider of one canonical entry of this type (some types have one per bin or knot)."""
        return list(cls.controls)

    @classmethod
    def point_cost(cls, params: Mapping[str, Any]) -> float:
        """What one grid point through this (canonical) layer costs, in simple-layer steps."""
        return cls.cost

    @classmethod
    def control_range(cls, control: Control, params: Mapping[str, Any]) -> tuple[float, float]:
        """The control's range given the layer's other values (the same as declared, for most types)."""
        return (control.low, control.high)

    @classmethod
    def invalid_at_or_below(cls, control: Control, params: Mapping[str, Any]) -> float:
        """The value at or below which the control breaks the layer's condition; -inf where none does."""
        return -math.inf

    def refuse_invalid(self, **params: Any) -> None:
        """Raise SpecError, with the spec's own message, when the parameters give no invertible layer.

        Called by constructors, so that a layer built directly is held to the
        same conditions as one read from a spec.
        """
        if _UNCHECKED.get():
            return
        problem = type(self).check({name: plain(value) for name, value in params.items()})
        if problem:
            raise SpecError(self.type_name, problem)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Complete the class's docstring from its one source of each: the formulas the app shows and the paper."""
        super().__init_subclass__(**kwargs)
        if "latex" not in vars(cls) and "reference" not in vars(cls):
            return
        doc = inspect.cleandoc(cls.__doc__ or "")
        parts = [doc] if doc else []
        if "latex" in vars(cls) and cls.latex:
            parts.append(
                "Formulas (LaTeX, as the app shows them):\n\n"
                + "\n".join(f"- {name}: {formula}" for name, formula in cls.latex.items())
            )
        if cls.reference and cls.reference not in doc:
            parts.append(f"Paper: {cls.reference}")
        cls.__doc__ = "\n\n".join(parts)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        return self.forward_and_log_det(z)[0]

    def inverse(self, x: Tensor) -> Tensor:
        return self.inverse_and_log_det(x)[0]

    @property
    def reverses_orientation(self) -> bool:
        """True when det J_f < 0: the layer mirrors the plane (swap, a reflection)."""
        return False

    def at(self, s: float) -> Bijector:
        """The layer a fraction s of the way along its path from the identity (s = 0) to itself (s = 1).

        Each class chooses its path in :meth:`_at` and says which in its docstring;
        s = 1 is the layer itself, the very object.
        """
        s = check_fraction(s)
        if s == 1.0:
            return self
        layer = self._at(s)
        dtype = next((t.dtype for t in (*self.parameters(), *self.buffers()) if t.is_floating_point()), None)
        return layer if dtype is None else layer.to(dtype)

    def _at(self, s: float) -> Bijector:
        raise NotImplementedError(f"{type(self).__name__} has no path from the identity")

    @property
    def structure(self) -> str:
        """One word for the Jacobian: 'volume-preserving' where |det J| = 1, else its sparsity."""
        return "volume-preserving" if self.volume_preserving else self.jacobian


class Elementwise(Bijector):
    """A map that acts on each listed coordinate alone: x_i = h(z_i).

    Subclasses give the scalar map and its log-derivative in ``forward_1d`` and
    ``inverse_1d`` (any tensor shape); the 1D page uses those same methods, so the
    line and the plane share one implementation.
    """

    jacobian = "diagonal"
    caption = "each coordinate is mapped on its own, x_i = h(z_i), so only ∂x_i/∂z_i ≠ 0: J is diagonal"
    # The weight of h in the blend (1 - s) t + s h(t) (see :meth:`_at`): 1 is h itself.
    blend: float = 1.0

    def __init__(self, dims: tuple[int, ...] = (0, 1)) -> None:
        super().__init__()
        self.dims = tuple(sorted(dims))

    @property
    def is_identity(self) -> bool:
        """True when the scalar map is t -> t; the layer then returns its input unchanged, exactly."""
        return self.blend == 0.0

    def _at(self, s: float) -> Elementwise:
        """The default path: h blended with the identity, h_s(t) = (1 - s) t + s h(t).

        h is increasing, so h_s is too, with h_s' = (1 - s) + s h' >= 1 - s > 0: a
        bijection of the whole line for s < 1 (even where h's image is bounded).
        """
        layer = copy.copy(self)
        layer.blend = s
        return layer

    def map_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The layer's scalar map at its point of the path (``forward_1d`` at s = 1) and its log-derivative."""
        if self.is_identity:
            return t.clone(), torch.zeros_like(t)
        if self.blend == 1.0:
            return self.forward_1d(t)
        return blended_forward(self.forward_1d, t, self.blend)

    def unmap_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """The inverse of :meth:`map_1d` and its log-derivative."""
        if self.is_identity:
            return y.clone(), torch.zeros_like(y)
        if self.blend == 1.0:
            return self.inverse_1d(y)
        return blended_inverse(self.forward_1d, self.inverse_1d, y, self.blend)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _map_dims(self, v: Tensor, scalar_map) -> tuple[Tensor, Tensor]:
        """Apply a scalar map to the listed coordinates; sum its log-derivatives."""
        if self.dims == (0, 1):
            out, log_deriv = scalar_map(v)
            return out, log_deriv.sum(-1)
        d = self.dims[0]
        out, log_deriv = scalar_map(v[..., d])
        parts = [out, v[..., 1]] if d == 0 else [v[..., 0], out]
        return torch.stack(parts, -1), log_deriv

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._map_dims(z, self.map_1d)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._map_dims(x, self.unmap_1d)


def blended_forward(forward_1d, t: Tensor, s: float) -> tuple[Tensor, Tensor]:
    """(1 - s) t + s h(t) and log((1 - s) + s h'(t)), from h's own (h, log h') at t.

    The log-derivative is a log-sum-exp of log(1 - s) and log s + log h', finite
    where h' under- or overflows.
    """
    h, log_h_prime = forward_1d(t)
    log_deriv = torch.logaddexp(torch.full_like(t, math.log1p(-s)), math.log(s) + log_h_prime)
    return (1.0 - s) * t + s * h, log_deriv


def blended_inverse(
    forward_1d, inverse_1d, y: Tensor, s: float, max_iter: int = 200
) -> tuple[Tensor, Tensor]:
    """Solve (1 - s) t + s h(t) = y for t, elementwise, and return t and -log of the derivative there.

    g(t) = (1 - s) t + s h(t) is strictly increasing. Its root lies between y and
    y' = (y - s h(y)) / (1 - s) (if h(y) > y then g(y) > y, so t < y, and h(t) < h(y)
    gives t > y'; the other way round likewise), and also between y and h^{-1}(y)
    where that exists (g at the smaller of the two is at most y). Newton's method
    runs inside the intersection of the finite brackets, a step that leaves it is
    replaced by bisection, so it always converges. The solve carries no gradient;
    one Newton step from the root then gives the same value and, by the implicit
    function theorem, the exact derivative dt/dy = 1 / g'(t).
    """
    with torch.no_grad():
        yd = y.detach()
        h_y = forward_1d(yd)[0]
        y_other = (yd - s * h_y) / (1.0 - s)
        lo, hi = torch.minimum(yd, y_other), torch.maximum(yd, y_other)
        h_inv = inverse_1d(yd)[0]
        lo = torch.where(torch.isfinite(lo), lo, -math.inf)
        hi = torch.where(torch.isfinite(hi), hi, math.inf)
        usable = torch.isfinite(h_inv)
        lo = torch.where(usable, torch.maximum(lo, torch.minimum(yd, h_inv)), lo)
        hi = torch.where(usable, torch.minimum(hi, torch.maximum(yd, h_inv)), hi)
        # Start where the chord of g across the bracket crosses y: near the root
        # whichever end g is flat at (Newton from y alone can start far out on a flat tail).
        ends = torch.stack([lo, hi]).clamp(-1e300, 1e300)
        g_lo, g_hi = ((1.0 - s) * ends + s * forward_1d(ends)[0] - yd).unbind(0)
        chord = ends[0] - g_lo * (ends[1] - ends[0]) / (g_hi - g_lo)
        t = torch.where(torch.isfinite(chord), chord, yd).clamp(lo, hi)
        previous = torch.full_like(t, math.inf)
        for _ in range(max_iter):
            h, log_h_prime = forward_1d(t)
            g = (1.0 - s) * t + s * h - yd
            # h' below e^-700 is nothing beside 1 - s >= 1e-16 (and exp is slow where it underflows).
            slope = (1.0 - s) + s * torch.exp(log_h_prime.clamp(min=-700.0))
            hi = torch.where(g > 0, t, hi)
            lo = torch.where(g < 0, t, lo)
            step = t - g / slope
            # Bisect where Newton leaves the bracket or does not at least halve the step
            # before last (slow progress from the flat side of a convex h).
            middle = torch.where(torch.isfinite(lo) & torch.isfinite(hi), 0.5 * (lo + hi), t)
            tiny = 1e-12 * (1.0 + torch.abs(t))
            slow = (torch.abs(step - t) > 0.5 * previous) & (torch.abs(step - t) > tiny)
            step = torch.where((step < lo) | (step > hi) | ~torch.isfinite(step) | slow, middle, step)
            step = torch.where(g == 0, t, step)
            change = torch.abs(step - t)
            previous = torch.where(change > 0, change, previous)
            t = step
            # The Newton step after the loop squares a relative error of 1e-12 away.
            if all_below(change - 1e-12 * (1.0 + torch.abs(t)), 0.0):
                break
    h, log_h_prime = forward_1d(t)
    slope = (1.0 - s) + s * torch.exp(log_h_prime.clamp(min=-700.0))
    t = t - ((1.0 - s) * t + s * h - y) / slope
    return t, -blended_forward(forward_1d, t, s)[1]


def all_below(values: Tensor, tol: float) -> bool:
    """True when every finite value is below tol.

    Inside torch.func transforms (vmap, jacrev) a tensor has no single truth
    value; an iterative solver then simply runs its full iteration budget.
    """
    try:
        return bool(torch.where(torch.isfinite(values), values, 0.0).max() <= tol)
    except RuntimeError:
        return False


def log_cosh(u: Tensor) -> Tensor:
    """log cosh(u) without overflow: log((e^u + e^-u) / 2)."""
    return torch.logaddexp(u, -u) - LOG2


def softplus(t: Tensor) -> Tensor:
    """log(1 + e^t), exact for every t (torch's own switches to t above a threshold)."""
    return torch.logaddexp(t, torch.zeros_like(t))


def log1mexp(a: Tensor) -> Tensor:
    """log(1 - e^{-a}) for a > 0, accurate at both ends (Maechler 2012).

    Each branch sees only the inputs it serves (the other gets log 2), so neither
    overflows in its gradient: torch.where passes a NaN gradient from the unused side.
    """
    small = a < LOG2
    a_small = torch.where(small, a, LOG2)
    a_large = torch.where(small, LOG2, a)
    return torch.where(small, torch.log(-torch.expm1(-a_small)), torch.log1p(-torch.exp(-a_large)))


def outside_to_nan(value: Tensor, inside: Tensor) -> Tensor:
    """NaN where a point lies outside a layer's image, the value elsewhere."""
    return torch.where(inside, value, torch.full_like(value, math.nan))
