"""Linear layers: x = A z + s and its special cases (shift, scale, rotation, swap).

Their Jacobian is the constant matrix A, so log|det J_f| = log|det A| everywhere:
the same volume change at every point of the plane.

Their paths from the identity go through the polar decomposition A = R P (R
orthogonal, P symmetric positive definite): the stretch P^s = exp(s log P) grows
continuously, a rotation R turns by s times its angle, and a reflection (det A < 0)
is applied in one step at s = FLIP_AT, where no invertible path could take it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowviz.errors import SpecError
from flowviz.layers.base import FLIP_AT, Bijector, Control, LineControl, line_fmt, pair, random_point, uniform
from flowviz.spec_values import REQUIRED, fmt, matrix, number, point


def _rotation_matrix(theta: float) -> Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def matrix_path(matrix: Tensor, s: float) -> Tensor:
    """A(s) on the path from I (s = 0) to the invertible 2x2 matrix A (s = 1), by its polar decomposition.

    A = R P with P = (A^T A)^{1/2}. For det A > 0, R is the rotation by
    theta = atan2(a21 - a12, a11 + a22) (A + cof A is a positive multiple of it)
    and A(s) = R(s theta) P^s. For det A < 0, R is the reflection proportional to
    A - cof A and A(s) = P^s before FLIP_AT, R P^s from it on. P^s = V diag(lambda^s) V^T.
    """
    if s == 0.0:
        return torch.eye(2, dtype=torch.float64)
    a = matrix.to(torch.float64)
    (a11, a12), (a21, a22) = a.tolist()
    det = a11 * a22 - a12 * a21
    if det > 0:
        theta = math.atan2(a21 - a12, a11 + a22)
        rotation = _rotation_matrix(theta)
        turn = _rotation_matrix(s * theta)
    else:
        reflection = torch.tensor([[a11 - a22, a12 + a21], [a12 + a21, a22 - a11]], dtype=torch.float64)
        rotation = reflection / math.hypot(a11 - a22, a12 + a21)
        turn = rotation if s >= FLIP_AT else torch.eye(2, dtype=torch.float64)
    stretch = rotation.T @ a
    stretch = 0.5 * (stretch + stretch.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(stretch)
    power = eigenvectors @ torch.diag(torch.exp(s * torch.log(eigenvalues))) @ eigenvectors.T
    return turn @ power


def _constant(value: Tensor, like: Tensor) -> Tensor:
    """A per-point log-det that is the same constant at every point."""
    return value.to(like.dtype).expand(like.shape[:-1])


class Affine(Bijector):
    r"""x = A z + s, invertible when det A != 0.

    Path: x = A(s) z + s b with A(s) from :func:`matrix_path` (rotation angle and
    log-stretch times s; a reflection flips at s = FLIP_AT).
    """

    type_name = "affine"
    jacobian = "full"
    latex = {
        "forward": r"x = A z + s",
        "inverse": r"z = A^{-1}(x - s)",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log|\det A| \\ &= \log|a_{11}a_{22} - a_{12}a_{21}| \end{aligned}",
    }
    fields = {"matrix": (matrix, [[1.0, 0.0], [0.0, 1.0]]), "shift": (point, [0.0, 0.0])}
    title = "Affine  x = Az + s"
    caption = "x = A z + s: each output mixes both inputs through A, so J = A, full (and constant)"
    controls = (
        Control(("matrix", 0, 0), "Matrix entry a₁₁", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 0, 1), "Matrix entry a₁₂", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 1, 0), "Matrix entry a₂₁", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 1, 1), "Matrix entry a₂₂", -3, 3, 0.05, "det A must not be 0"),
        *pair("shift", ("Affine shift s₁ (x)", "Affine shift s₂ (y)"), -4, 4, 0.05),
    )
    defaults = {"matrix": [[1.0, 0.5], [0.0, 1.0]], "shift": [0.0, 0.0]}

    line_title = "Affine: x = a z + b"
    line_controls = (
        LineControl(("slope",), "Affine: slope a in x = a z + b", "affine_slope", -3.0, 3.0, 0.5),
        LineControl(("offset",), "Affine: offset b in x = a z + b", "affine_offset", -3.0, 3.0, 0.0),
    )

    @classmethod
    def line_map(cls, params) -> tuple[list, str]:
        """x = a z + b on the line (``slope`` a, ``offset`` b): this layer with A = diag(a, 1), read on x_1."""
        slope, offset = float(params["slope"]), float(params["offset"])
        if slope == 0:
            raise SpecError("affine map", "slope a = 0 squashes the whole line to one point: no inverse")
        slope_text = {1.0: "", -1.0: "-"}.get(slope, line_fmt(slope) + r"\,")
        offset_text = f"{offset:+.4g}" if offset else ""
        return [AffineOnLine(slope, offset)], rf"x = f(z) = {slope_text}z {offset_text}"

    @classmethod
    def condition_caption(cls, params) -> str:
        (a, b), (c, d) = params["matrix"]
        return f"det A = {a * d - b * c:.3f}: log|det J| = log|det A| everywhere; 0 would flatten the plane."

    @classmethod
    def check(cls, params) -> str | None:
        (a, b), (c, d) = params["matrix"]
        det = a * d - b * c
        scale = max(abs(a), abs(b), abs(c), abs(d))
        if not math.isfinite(det):
            return "det(matrix) overflows float64: use smaller entries (a scale layer can stretch further)"
        if scale == 0 or det == 0:
            return f"det(matrix) = {fmt(det)}, but it must be nonzero for the layer to be invertible"
        if abs(det) <= 1e-12 * scale * scale:  # invertible on paper, but its inverse is lost in rounding
            return (
                f"det(matrix) = {fmt(det)} is too small next to its largest entry {fmt(scale)} "
                f"(|det| must exceed 1e-12 x {fmt(scale)}^2): the matrix is numerically singular; "
                "a scale layer can stretch one axis and squeeze the other"
            )
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {
            "matrix": [[1.0 + uniform(g, 0, 1)[0], uniform(g, -1, 1)[0]], random_point(g, 0.8)],
            "shift": random_point(g),
        }

    def __init__(self, matrix, shift=(0.0, 0.0)) -> None:
        super().__init__()
        self.refuse_invalid(matrix=matrix)
        a = torch.as_tensor(matrix, dtype=torch.float64)
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        # The 2x2 inverse in closed form: exact to rounding, no LU pivoting.
        a_inv = torch.stack([torch.stack([a[1, 1], -a[0, 1]]), torch.stack([-a[1, 0], a[0, 0]])]) / det
        self.register_buffer("matrix", a)
        self.register_buffer("matrix_inverse", a_inv)
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float64))
        self.register_buffer("log_abs_det", torch.log(torch.abs(det)))
        self.negative_det = bool(det < 0)

    @property
    def reverses_orientation(self) -> bool:
        return self.negative_det

    def _at(self, s: float) -> Affine:
        return Affine(matrix_path(self.matrix, s), s * self.shift)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T + self.shift, _constant(self.log_abs_det, z)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x - self.shift) @ self.matrix_inverse.T, _constant(-self.log_abs_det, x)


class AffineOnLine:
    """x = a z + b: the 2D :class:`Affine` layer with A = diag(a, 1), s = (b, 0), read on coordinate 0.

    Its log|det J| = log|a| + log 1 is exactly log|f'| of the line map.
    """

    def __init__(self, slope: float, offset: float) -> None:
        # The line map checks a != 0 itself; a steep or flat a is fine on the line.
        self.layer = Affine.unchecked([[slope, 0.0], [0.0, 1.0]], [offset, 0.0])

    @staticmethod
    def _lift(t: Tensor) -> Tensor:
        return torch.stack([t, torch.zeros_like(t)], -1)

    def forward_1d(self, t: Tensor) -> tuple[Tensor, Tensor]:
        x, log_det = self.layer.forward_and_log_det(self._lift(t))
        return x[..., 0], log_det

    def inverse_1d(self, y: Tensor) -> tuple[Tensor, Tensor]:
        z, log_det = self.layer.inverse_and_log_det(self._lift(y))
        return z[..., 0], log_det


class Shift(Bijector):
    r"""x = z + s: a translation, volume preserving. Path: the shift times s."""

    type_name = "shift"
    jacobian = "diagonal"
    volume_preserving = True
    latex = {
        "forward": r"x = z + s",
        "inverse": r"z = x - s",
        "log_det": r"\log|\det J_f| = \log|\det I| = 0",
    }
    fields = {"shift": (point, REQUIRED)}
    title = "Shift  x = z + s"
    caption = "x = z + s moves every point alike: J = I, and det J = 1"
    controls = tuple(pair("shift", ("Shift s₁ (x)", "Shift s₂ (y)"), -4, 4, 0.05))
    defaults = {"shift": [1.0, 0.5]}

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"shift": random_point(g)}

    def __init__(self, shift) -> None:
        super().__init__()
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float64))

    def _at(self, s: float) -> Shift:
        return Shift(s * self.shift)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z + self.shift, z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x - self.shift, x.new_zeros(x.shape[:-1])


class Scale(Bijector):
    r"""x = (k_1 z_1, k_2 z_2): stretch or squeeze each axis.

    Path: log|k_i| times s, k_i(s) = |k_i|^s; a negative k_i (a mirror, when only
    one is negative) takes its sign in one step at s = FLIP_AT. Two negative
    factors are a half turn, not a mirror: that path is the affine one,
    R(s pi) diag(|k|^s), returned as an :class:`Affine`.
    """

    type_name = "scale"
    jacobian = "diagonal"
    latex = {
        "forward": r"x = (k_1 z_1,\; k_2 z_2)",
        "inverse": r"z = (x_1 / k_1,\; x_2 / k_2)",
        "log_det": r"\log|\det J_f| = \log|k_1| + \log|k_2|",
    }
    fields = {"scale": (point, REQUIRED)}
    title = "Scale  x = k ⊙ z"
    caption = "each axis is stretched on its own: J = diag(k_1, k_2)"
    # Magnitude sliders that stay away from 0; the editor adds a mirror switch for the sign.
    controls = tuple(
        pair(
            "scale",
            ("Scale factor |k₁| (x)", "Scale factor |k₂| (y)"),
            0.1,
            4,
            0.05,
            "kept above 0: a zero factor would flatten the plane onto a line",
        )
    )
    defaults = {"scale": [1.5, 0.7]}
    # The editor shows these controls as a magnitude and a mirror switch (see flowviz.ui.editor).
    signed_magnitudes = "scale"

    @classmethod
    def check(cls, params) -> str | None:
        for i, k in enumerate(params["scale"]):
            if k == 0:
                return f"scale[{i}] = 0, but both factors must be nonzero for the layer to be invertible"
        return None

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"scale": uniform(g, 0.4, 2.5, 2)}

    def __init__(self, scale) -> None:
        super().__init__()
        self.refuse_invalid(scale=scale)
        k = torch.as_tensor(scale, dtype=torch.float64)
        self.register_buffer("scale", k)
        self.register_buffer("log_abs_det", torch.log(torch.abs(k)).sum())

    @property
    def reverses_orientation(self) -> bool:
        return bool((self.scale < 0).sum() == 1)

    def _at(self, s: float) -> Bijector:
        negative = self.scale < 0
        if bool(negative.all()):
            return Affine(matrix_path(torch.diag(self.scale), s))
        magnitude = torch.exp(s * torch.log(torch.abs(self.scale)))
        return Scale(torch.where(negative & (s >= FLIP_AT), -magnitude, magnitude))

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z * self.scale, _constant(self.log_abs_det, z)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x / self.scale, _constant(-self.log_abs_det, x)


class Rotation(Bijector):
    r"""x = R(\theta) z, counter-clockwise by ``degrees``: volume preserving. Path: the angle times s."""

    type_name = "rotation"
    jacobian = "full"
    volume_preserving = True
    latex = {
        "forward": r"x = \begin{pmatrix}\cos\theta & -\sin\theta\\ \sin\theta & \cos\theta\end{pmatrix} z",
        "inverse": r"z = R(\theta)^{\top} x = R(-\theta)\, x",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log(\cos^2\theta + \sin^2\theta) \\ &= 0 \end{aligned}",
    }
    fields = {"degrees": (number, REQUIRED)}
    title = "Rotation"
    caption = "both outputs mix both inputs (cos θ, sin θ): J = R(θ) is full, yet det R = 1"
    controls = (Control(("degrees",), "Rotation angle (degrees)", -180, 180, 1),)
    defaults = {"degrees": 30.0}

    @classmethod
    def example(cls, g: torch.Generator) -> dict:
        return {"degrees": uniform(g, 15, 75)[0]}

    def __init__(self, degrees: float) -> None:
        super().__init__()
        self.degrees = float(degrees)
        self.register_buffer("matrix", _rotation_matrix(math.radians(self.degrees)))

    def _at(self, s: float) -> Rotation:
        return Rotation(s * self.degrees)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T, z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.matrix, x.new_zeros(x.shape[:-1])


class Swap(Bijector):
    r"""x = (z_2, z_1): the permutation placed between couplings.

    A mirror (det = -1): its path is the identity (``flipped=False``) before
    s = FLIP_AT and the swap from it on.
    """

    type_name = "swap"
    jacobian = "permutation"
    volume_preserving = True
    latex = {
        "forward": r"x = (z_2,\; z_1)",
        "inverse": r"z = (x_2,\; x_1)",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log\Big|\det\begin{pmatrix}0&1\\1&0\end{pmatrix}\Big| \\ &= \log|-1| = 0 \end{aligned}",
    }
    title = "Swap coordinates"
    caption = "x_1 = z_2 and x_2 = z_1: J is a permutation matrix, |det J| = 1"

    def __init__(self, flipped: bool = True) -> None:
        super().__init__()
        self.flipped = bool(flipped)

    @property
    def reverses_orientation(self) -> bool:
        return self.flipped

    def _at(self, s: float) -> Swap:
        return Swap(flipped=s >= FLIP_AT)

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return (z.flip(-1) if self.flipped else z.clone()), z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x.flip(-1) if self.flipped else x.clone()), x.new_zeros(x.shape[:-1])
