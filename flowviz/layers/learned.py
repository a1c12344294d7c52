"""Learnable layers: the same :class:`Bijector` contract, with parameters fitted to data.

In the plane a coupling layer keeps one coordinate, c, and transforms the other,
o, by a monotone map whose parameters are a function of z_c computed by a small
network (the *conditioner*). The Jacobian is triangular, so log|det J| is the
log-derivative of that one-dimensional map, whatever the network computes.

- RealNVP affine coupling (Dinh, Sohl-Dickstein & Bengio, ICLR 2017): the map is
  z_o -> z_o e^{s(z_c)} + t(z_c). It *is* :class:`~flowviz.layers.coupling.AffineCoupling`
  with an :class:`AffineConditioner` (a network) in place of the spec's sine+poly.
- Neural spline coupling (Durkan, Bekasov, Murray & Papamakarios, NeurIPS 2019):
  the map is a monotone rational-quadratic spline with K bins on [-B, B] and the
  identity outside (linear tails), computed by
  :func:`~flowviz.layers.spline.rational_quadratic_spline` with one set of knots per point.
- ActNorm (Kingma & Dhariwal, Glow, NeurIPS 2018): x = z e^{s} + b per coordinate,
  with s, b initialised from the first batch so that the data leave the layer
  (in the density direction) with zero mean and unit variance.

Between couplings a :class:`~flowviz.layers.linear.Swap` or a fixed
:class:`~flowviz.layers.linear.Rotation` changes which direction is conditioned on.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import Tensor

from flowviz.layers.base import Bijector
from flowviz.layers.coupling import AffineCoupling
from flowviz.layers.spline import REFERENCE as NSF_REFERENCE
from flowviz.layers.spline import blend_bins, rational_quadratic_spline

ACTNORM_REFERENCE = (
    "D. P. Kingma and P. Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, NeurIPS 2018"
)


# Without autograd (grids, scoring), big batches go through a coupling in chunks of
# this many points: the per-point tables of a 256^2 grid would otherwise be tens of
# MB per tensor, which the allocator maps fresh (page faults) at every operation.
EVALUATION_CHUNK = 8192
# From this many points on, the network is evaluated as the piecewise-linear
# function it is (see MLP.pieces), with at most this many breakpoints.
PIECEWISE_FROM = 2048
MAX_PIECES = 65536


class MLP(torch.nn.Module):
    """t -> W_L relu(... relu(W_1 t + b_1) ...) + b_L for a scalar input t (shape (...)).

    The last layer starts at zero, so every coupling starts as the identity map
    and training begins from the base density, standardised to the data.

    The network of a scalar is piecewise linear: with one hidden layer,
    theta(t) = sum_i W2[:, i] relu(w_i t + b_i) + b2, and between consecutive
    breakpoints t_i = -b_i / w_i the same units are on, so theta(t) = a_j t + c_j
    on interval j; a second layer splits those intervals further where its
    units turn on or off (:meth:`pieces`). Without autograd and for many points
    (a 256^2 grid) it is evaluated that way, one lookup and one multiply-add per
    output instead of the matrix products: the same function, a few times faster.
    """

    def __init__(self, out_features: int, hidden: int = 64, depth: int = 2) -> None:
        super().__init__()
        sizes = [1] + [hidden] * depth
        blocks: list[torch.nn.Module] = []
        for size_in, size_out in itertools.pairwise(sizes):
            blocks += [torch.nn.Linear(size_in, size_out), torch.nn.ReLU()]
        last = torch.nn.Linear(sizes[-1], out_features)
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        self.net = torch.nn.Sequential(*blocks, last)

    def forward(self, t: Tensor, pieces: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """theta(t) for every t; ``pieces`` (from :meth:`pieces`) may be passed in when evaluating in chunks."""
        if pieces is None and (t.numel() < PIECEWISE_FROM or torch.is_grad_enabled()):
            return self.net(t.unsqueeze(-1))
        if pieces is None:
            pieces = self.pieces()
        if pieces is not None:
            return self.piecewise_linear(t, pieces)
        flat = t.reshape(-1, 1)
        out = torch.cat([self.net(chunk) for chunk in flat.split(EVALUATION_CHUNK)])
        return out.reshape(*t.shape, -1)

    def pieces(self) -> tuple[Tensor, Tensor] | None:
        """Breakpoints (m,), sorted, and the table [a_j | c_j] (m + 1, 2 out) of the network, exact.

        A ReLU network of a scalar is piecewise linear at any depth. Layer by layer:
        on each interval between the breakpoints found so far, every unit of the
        next layer has a linear pre-activation p t + q (its on/off pattern read at
        a point inside the interval), which adds the breakpoint -q / p where that
        lies inside the interval. One hidden layer of 64 units has at most 64
        breakpoints, two at most 64 + 64 x 65. None (evaluate the layers instead)
        past :data:`MAX_PIECES` breakpoints, which only deeper networks reach.
        """
        linears = [m for m in self.net if isinstance(m, torch.nn.Linear)]
        hidden, last = linears[:-1], linears[-1]
        breakpoints = last.weight.new_zeros(0)
        for k, layer in enumerate(hidden):
            slope, intercept = self._affine_pieces(breakpoints, hidden[:k])
            p, q = slope @ layer.weight.T, intercept @ layer.weight.T + layer.bias  # (m + 1, units)
            moving = p != 0
            crossing = -q / torch.where(moving, p, torch.ones_like(p))
            infinity = crossing.new_full((1,), math.inf)
            left, right = torch.cat([-infinity, breakpoints]), torch.cat([breakpoints, infinity])
            inside = moving & (crossing > left[:, None]) & (crossing < right[:, None])
            breakpoints = torch.sort(torch.cat([breakpoints, crossing[inside]])).values
            if len(breakpoints) > MAX_PIECES:
                return None
        slope, intercept = self._affine_pieces(breakpoints, hidden)
        table = torch.cat([slope @ last.weight.T, intercept @ last.weight.T + last.bias], -1)
        return breakpoints, table

    @staticmethod
    def _affine_pieces(breakpoints: Tensor, layers: list[torch.nn.Linear]) -> tuple[Tensor, Tensor]:
        """The hidden activations after ``layers`` as S_j t + I_j on each interval j (rows of S and I).

        The on/off pattern of each layer on an interval is read at a point inside it
        (the midpoint, or 1 beyond an outer breakpoint); composing the affine maps
        gives S_j and I_j exactly (no value minus slope times point).
        """
        inner = (breakpoints[1:] + breakpoints[:-1]) / 2
        if len(breakpoints):
            probes = torch.cat([breakpoints[:1] - 1.0, inner, breakpoints[-1:] + 1.0])
        else:
            probes = breakpoints.new_zeros(1)
        slope, intercept = torch.ones_like(probes)[:, None], torch.zeros_like(probes)[:, None]
        for layer in layers:
            slope, intercept = slope @ layer.weight.T, intercept @ layer.weight.T + layer.bias
            on = (slope * probes[:, None] + intercept > 0).to(slope.dtype)
            slope, intercept = on * slope, on * intercept
        return slope, intercept

    def piecewise_linear(self, t: Tensor, pieces: tuple[Tensor, Tensor]) -> Tensor:
        """The network evaluated as a_j t + c_j, j the interval of t (``pieces`` from :meth:`pieces`)."""
        breakpoints, table = pieces
        flat = t.reshape(-1).contiguous()
        rows = torch.nn.functional.embedding(torch.searchsorted(breakpoints, flat), table)
        size = table.shape[-1] // 2
        out = torch.addcmul(rows[:, size:], rows[:, :size], flat.unsqueeze(-1))
        return out.reshape(*t.shape, -1)


class AffineConditioner(torch.nn.Module):
    r"""z_c -> (t(z_c), s(z_c)) for the RealNVP coupling, with a soft clamp on the log-scale.

    s = c \tanh(\tilde s / c) keeps |s| < c (``max_log_scale``), so one layer can
    stretch or squeeze by at most e^c: without it a few steps of a large learning
    rate can send e^s to overflow.
    """

    def __init__(self, hidden: int = 64, depth: int = 2, max_log_scale: float = 3.0) -> None:
        super().__init__()
        self.net = MLP(2, hidden, depth)
        self.max_log_scale = float(max_log_scale)

    def forward(self, t: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw_log_scale = self.net(t).unbind(-1)
        c = self.max_log_scale
        return shift, c * torch.tanh(raw_log_scale / c)


def realnvp_coupling(
    condition_on: int, hidden: int = 64, depth: int = 2, max_log_scale: float = 3.0
) -> AffineCoupling:
    """A RealNVP affine coupling: x_o = z_o e^{s(z_c)} + t(z_c), s and t from one network."""
    return AffineCoupling(condition_on, AffineConditioner(hidden, depth, max_log_scale))


def spline_bin_sizes(unnormalised: Tensor, bound: float, minimum: float) -> Tensor:
    """Bin widths (or heights) from unnormalised network outputs: softmax, floored, summing to 2B.

    size_k = 2B (m + (1 - K m) softmax(u)_k): every bin at least 2B m wide, so the
    spline's slopes h_k / w_k stay bounded and its inverse well conditioned.
    """
    bins = unnormalised.shape[-1]
    return 2.0 * bound * (minimum + (1.0 - bins * minimum) * _softmax(unnormalised))


def _softmax(u: Tensor) -> Tensor:
    """softmax over the last axis, written out: on CPU it is several times faster than
    ``torch.softmax`` for the short, strided rows of a network's output."""
    e = torch.exp(u - u.amax(-1, keepdim=True).detach())
    return e / e.sum(-1, keepdim=True)


def _softplus(u: Tensor) -> Tensor:
    """log(1 + e^u) = max(u, 0) + log(1 + e^{-|u|}), exact for every u and faster than torch's on CPU."""
    return torch.relu(u) + torch.log1p(torch.exp(-torch.abs(u)))


def spline_knot_slopes(unnormalised: Tensor, minimum: float) -> Tensor:
    """Slopes at all K + 1 knots: m + softplus(u + u_0) inside (u = 0 gives slope 1), 1 at both ends.

    A slope of 1 at -B and B joins the identity tails with a continuous derivative.
    """
    offset = math.log(math.expm1(1.0 - minimum))  # softplus(offset) = 1 - minimum
    inner = minimum + _softplus(unnormalised + offset)
    ends = torch.ones((*unnormalised.shape[:-1], 1), dtype=unnormalised.dtype, device=unnormalised.device)
    return torch.cat([ends, inner, ends], -1)


class NeuralSplineCoupling(Bijector):
    r"""x_c = z_c, x_o = RQS(z_o; \theta(z_c)): a monotone rational-quadratic spline whose knots depend on z_c.

    The network maps z_c to 3K - 1 numbers: K unnormalised widths, K heights and
    K - 1 inner slopes (:func:`spline_bin_sizes`, :func:`spline_knot_slopes`).
    Inside [-B, B] the map is the spline, outside it the identity (linear tails).
    The Jacobian is triangular, det J = d x_o / d z_o, the spline's derivative.

    Path: at ``time`` s the network's widths and heights are blended linearly from
    equal bins, (1 - s) 2B/K + s w_k, and its knot slopes geometrically, delta_k^s:
    every step is a valid spline, the identity at s = 0 (the layer then returns
    its input unchanged). The network is shared with the layer itself.
    """

    type_name = "neural_spline_coupling"
    jacobian = "triangular"
    reference = NSF_REFERENCE
    latex = {
        "forward": r"\begin{gathered} x_c = z_c,\quad x_o = \mathrm{RQS}\big(z_o;\ \theta(z_c)\big) \text{ on } [-B, B]"
        r" \\ x_o = z_o \text{ outside} \end{gathered}",
        "inverse": r"\begin{gathered} z_c = x_c,\quad z_o = \mathrm{RQS}^{-1}\big(x_o;\ \theta(x_c)\big)"
        r" \\ \text{(a quadratic in } \xi \text{ per bin)} \end{gathered}",
        "log_det": r"\begin{gathered} \log|\det J_f| = \log \frac{\partial x_o}{\partial z_o} = \log N - 2\log D"
        r" \\ N = s_k^2\big(\delta_{k+1}\xi^2 + 2s_k\xi(1-\xi) + \delta_k(1-\xi)^2\big)"
        r" \\ D = s_k + (\delta_{k+1} + \delta_k - 2s_k)\,\xi(1-\xi) \end{gathered}",
    }

    def __init__(
        self,
        condition_on: int,
        hidden: int = 64,
        depth: int = 2,
        bins: int = 8,
        bound: float = 4.0,
        min_bin_size: float = 1e-3,
        min_slope: float = 1e-3,
    ) -> None:
        super().__init__()
        if bins < 2:
            raise ValueError(f"bins = {bins}, but a spline needs at least 2")
        if not 0.0 < min_bin_size * bins < 1.0:
            raise ValueError(f"min_bin_size = {min_bin_size} leaves no room for {bins} bins")
        self.condition_on = int(condition_on)
        self.other = 1 - self.condition_on
        self.bins = int(bins)
        self.bound = float(bound)
        self.min_bin_size = float(min_bin_size)
        self.min_slope = float(min_slope)
        self.conditioner = MLP(3 * self.bins - 1, hidden, depth)
        self.time = 1.0

    def _at(self, s: float) -> NeuralSplineCoupling:
        layer = copy.copy(self)
        layer.time = s
        return layer

    def spline_parameters(self, z_c: Tensor, pieces=None) -> tuple[Tensor, Tensor, Tensor]:
        """widths (..., K), heights (..., K), slopes at the knots (..., K + 1) for each z_c."""
        raw = self.conditioner(z_c, pieces)
        k = self.bins
        widths = spline_bin_sizes(raw[..., :k], self.bound, self.min_bin_size)
        heights = spline_bin_sizes(raw[..., k : 2 * k], self.bound, self.min_bin_size)
        slopes = spline_knot_slopes(raw[..., 2 * k :], self.min_slope)
        if self.time != 1.0:
            s = self.time
            widths, heights = blend_bins(widths, s, self.bound), blend_bins(heights, s, self.bound)
            slopes = torch.exp(s * torch.log(slopes))
        return widths, heights, slopes

    def _couple(self, v: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        if self.time == 0.0:
            return v.clone(), v.new_zeros(v.shape[:-1])
        count = v.shape[:-1].numel()
        if count <= EVALUATION_CHUNK or torch.is_grad_enabled():
            return self._couple_points(v, inverse)
        pieces = self.conditioner.pieces()  # once for all chunks
        chunks = v.reshape(-1, 2).split(EVALUATION_CHUNK)
        parts = [self._couple_points(chunk, inverse, pieces) for chunk in chunks]
        out = torch.cat([part[0] for part in parts]).reshape(v.shape)
        return out, torch.cat([part[1] for part in parts]).reshape(v.shape[:-1])

    def _couple_points(self, v: Tensor, inverse: bool, pieces=None) -> tuple[Tensor, Tensor]:
        v_c, v_o = v[..., self.condition_on], v[..., self.other]
        widths, heights, slopes = self.spline_parameters(v_c, pieces)
        out, log_deriv = rational_quadratic_spline(v_o, widths, heights, slopes, self.bound, inverse=inverse)
        parts = (v_c, out) if self.condition_on == 0 else (out, v_c)
        return torch.stack(parts, -1), log_deriv

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(z, inverse=False)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=True)


class ActNorm(Bijector):
    r"""x = z \odot e^{s} + b, per coordinate, with data-dependent initialisation (Glow).

    The first time the layer meets data in the density direction (``inverse``,
    in training mode), it sets b = mean(x) and s = log std(x) over that batch, so
    that z = (x - b) e^{-s} has zero mean and unit variance; after that s and b
    are ordinary parameters. log|det J_f| = s_1 + s_2.

    Path: the log-scale and the shift times s (an initialised copy).
    """

    type_name = "actnorm"
    jacobian = "diagonal"
    reference = ACTNORM_REFERENCE
    latex = {
        "forward": r"x = z \odot e^{s} + b",
        "inverse": r"z = (x - b) \odot e^{-s}",
        "log_det": r"\log|\det J_f| = s_1 + s_2",
    }

    def __init__(self) -> None:
        super().__init__()
        self.shift = torch.nn.Parameter(torch.zeros(2))
        self.log_scale = torch.nn.Parameter(torch.zeros(2))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _at(self, s: float) -> ActNorm:
        layer = ActNorm().to(self.shift.dtype)
        layer.shift.copy_(s * self.shift)
        layer.log_scale.copy_(s * self.log_scale)
        layer.initialized.fill_(True)
        return layer.train(self.training)

    @torch.no_grad()
    def initialize_from(self, x: Tensor) -> None:
        """Set b and s from a batch of points on the data side of this layer."""
        flat = x.reshape(-1, 2)
        self.shift.copy_(flat.mean(0))
        self.log_scale.copy_(torch.log(flat.std(0).clamp_min(1e-6)))
        self.initialized.fill_(True)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = z * torch.exp(self.log_scale) + self.shift
        return x, self.log_scale.sum().expand(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized) and x.reshape(-1, 2).shape[0] > 1:
            self.initialize_from(x)
        z = (x - self.shift) * torch.exp(-self.log_scale)
        return z, (-self.log_scale.sum()).expand(x.shape[:-1])


LEARNED_LAYER_CLASSES: tuple[type[Bijector], ...] = (NeuralSplineCoupling, ActNorm)
