"""Linear layers: x = A z + s and its special cases (shift, scale, rotation, swap).

Their Jacobian is the constant matrix A, so log|det J_f| = log|det A| everywhere:
the same volume change at every point of the plane.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowviz.layers.base import Bijector


def _constant(value: Tensor, like: Tensor) -> Tensor:
    """A per-point log-det that is the same constant at every point."""
    return value.to(like.dtype).expand(like.shape[:-1])


class Affine(Bijector):
    r"""x = A z + s, invertible when det A != 0."""

    type_name = "affine"
    jacobian = "full"
    latex = {
        "forward": r"x = A z + s",
        "inverse": r"z = A^{-1}(x - s)",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log|\det A| \\ &= \log|a_{11}a_{22} - a_{12}a_{21}| \end{aligned}",
    }

    def __init__(self, matrix, shift=(0.0, 0.0)) -> None:
        super().__init__()
        a = torch.as_tensor(matrix, dtype=torch.float64)
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        # The 2x2 inverse in closed form: exact to rounding, no LU pivoting.
        a_inv = torch.stack([torch.stack([a[1, 1], -a[0, 1]]), torch.stack([-a[1, 0], a[0, 0]])]) / det
        self.register_buffer("matrix", a)
        self.register_buffer("matrix_inverse", a_inv)
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float64))
        self.register_buffer("log_abs_det", torch.log(torch.abs(det)))

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T + self.shift, _constant(self.log_abs_det, z)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x - self.shift) @ self.matrix_inverse.T, _constant(-self.log_abs_det, x)


class Shift(Bijector):
    r"""x = z + s: a translation, volume preserving."""

    type_name = "shift"
    jacobian = "diagonal"
    volume_preserving = True
    latex = {
        "forward": r"x = z + s",
        "inverse": r"z = x - s",
        "log_det": r"\log|\det J_f| = \log|\det I| = 0",
    }

    def __init__(self, shift) -> None:
        super().__init__()
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float64))

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z + self.shift, z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x - self.shift, x.new_zeros(x.shape[:-1])


class Scale(Bijector):
    r"""x = (k_1 z_1, k_2 z_2): stretch or squeeze each axis."""

    type_name = "scale"
    jacobian = "diagonal"
    latex = {
        "forward": r"x = (k_1 z_1,\; k_2 z_2)",
        "inverse": r"z = (x_1 / k_1,\; x_2 / k_2)",
        "log_det": r"\log|\det J_f| = \log|k_1| + \log|k_2|",
    }

    def __init__(self, scale) -> None:
        super().__init__()
        k = torch.as_tensor(scale, dtype=torch.float64)
        self.register_buffer("scale", k)
        self.register_buffer("log_abs_det", torch.log(torch.abs(k)).sum())

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z * self.scale, _constant(self.log_abs_det, z)

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x / self.scale, _constant(-self.log_abs_det, x)


class Rotation(Bijector):
    r"""x = R(\theta) z, counter-clockwise by ``degrees``: volume preserving."""

    type_name = "rotation"
    jacobian = "full"
    volume_preserving = True
    latex = {
        "forward": r"x = \begin{pmatrix}\cos\theta & -\sin\theta\\ \sin\theta & \cos\theta\end{pmatrix} z",
        "inverse": r"z = R(\theta)^{\top} x = R(-\theta)\, x",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log(\cos^2\theta + \sin^2\theta) \\ &= 0 \end{aligned}",
    }

    def __init__(self, degrees: float) -> None:
        super().__init__()
        theta = math.radians(degrees)
        c, s = math.cos(theta), math.sin(theta)
        self.register_buffer("matrix", torch.tensor([[c, -s], [s, c]], dtype=torch.float64))

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T, z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x @ self.matrix, x.new_zeros(x.shape[:-1])


class Swap(Bijector):
    r"""x = (z_2, z_1): the permutation placed between couplings."""

    type_name = "swap"
    jacobian = "permutation"
    volume_preserving = True
    latex = {
        "forward": r"x = (z_2,\; z_1)",
        "inverse": r"z = (x_2,\; x_1)",
        "log_det": r"\begin{aligned} \log|\det J_f| &= \log\Big|\det\begin{pmatrix}0&1\\1&0\end{pmatrix}\Big| \\ &= \log|-1| = 0 \end{aligned}",
    }

    def forward_and_log_det(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z.flip(-1), z.new_zeros(z.shape[:-1])

    def inverse_and_log_det(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.flip(-1), x.new_zeros(x.shape[:-1])
