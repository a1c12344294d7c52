"""Two-dimensional data sets whose density is known exactly (or by converged quadrature), for bench/train.py.

Every set is given in *user coordinates*: the shape is drawn in a unit frame and
then mapped by x_user = A x + b with a diagonal A, as canvas pixels (y pointing
down) or spreadsheet units would put it. The density follows exactly:
log p_user(x_user) = log p(x) - log|det A|.

The sets are split into a **tuning** half (defaults are chosen on it) and a
**held-out** half (it only judges them). The first split had seven sets a side;
its held-out half (thin_unequal_6 ... banana_scales) judged one choice of defaults
and then, once looked at, joined the tuning half. The present held-out half,
seven sets written before any learner was run on them, covers the same kinds
of shape with new instances: a scattered mixture of round and thin components,
a spiral of three turns, curved and straight sharp edges (a disk and a triangle),
heavy tails (a Student t mixture), a skewed shape whose spread grows along it
with axes in units 1000 and 0.01 (a log-normal funnel), drawn strokes (a face)
and rings about different centres.

Densities:
- Gaussian mixtures: closed form, log-sum-exp over components.
- A curve plus Gaussian noise (spirals, moons): p(x) = int p(t) N(x; c(t), s^2 I) dt,
  composite Gauss-Legendre quadrature in t; the benchmark checks that doubling the
  panels changes log p by less than 1e-6.
- Strokes (line segments plus noise, as a person draws a letter): the integral along
  each segment is closed form, a normal in the perpendicular distance times a
  difference of normal CDFs along it.
- Rings: the radius is a normal truncated to r > 0 and the angle uniform about the
  ring's centre c, so p(x) = N(r; R, s) / Phi(R / s) / (2 pi r), r = |x - c|.
- Pinwheel: blades (Gaussians) turned by an angle that grows with the radius,
  x = Rot(c |y|) y, a map of Jacobian determinant 1, so p(x) = p_y(Rot(-c |x|) x).
- Banana: x2 = a y2 + b (y1^2 - 1), x1 = y1, a shear of determinant a.
- Uniform shapes (checkerboard, an L, a disk and a triangle): 1 / area inside.
- Student t and mixtures of them: closed form.
- Log-normal funnel: x1 ~ LogNormal(0, s^2), x2 | x1 ~ N(sin(w x1), (c x1)^2): the
  product of the two closed-form densities.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, log_ndtr, logsumexp, ndtr

LOG_2PI = math.log(2.0 * math.pi)
TUNING = "tuning"
HELD_OUT = "held-out"


@dataclass
class BenchSet:
    name: str
    half: str
    sample: Callable[[int, np.random.Generator], np.ndarray]
    log_density: Callable[[np.ndarray], np.ndarray]
    note: str
    quadrature_check: Callable[[np.ndarray], float] | None = None


def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def _covariance(std_major: float, std_minor: float, degrees: float) -> np.ndarray:
    r = _rotation(math.radians(degrees))
    return r @ np.diag([std_major**2, std_minor**2]) @ r.T


# --------------------------------------------------------------------------- building blocks


def gaussian_mixture(weights, means, covariances):
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    cholesky = np.linalg.cholesky(covariances)
    inverse = np.linalg.inv(covariances)
    log_norm = -LOG_2PI - 0.5 * np.log(np.linalg.det(covariances))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(weights), size=n, p=weights)
        return means[k] + np.einsum("nij,nj->ni", cholesky[k], rng.standard_normal((n, 2)))

    def log_density(x: np.ndarray) -> np.ndarray:
        d = x[:, None, :] - means[None]
        mahalanobis = np.einsum("nki,kij,nkj->nk", d, inverse, d)
        return logsumexp(np.log(weights) + log_norm - 0.5 * mahalanobis, axis=1)

    return sample, log_density


def _gauss_legendre(panels: int, order: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2.0
    centres = ((edges[1:] + edges[:-1]) / 2.0)[:, None]
    return (centres + half * nodes).ravel(), (half * weights).ravel()


def noisy_curves(curves, sigma: float, panels: int):
    """x = c_j(t) + N(0, sigma^2 I), j uniform among the curves, t ~ U(0, 1)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        j = rng.integers(0, len(curves), n)
        t = rng.random(n)
        points = np.zeros((n, 2))
        for index, curve in enumerate(curves):
            mine = j == index
            points[mine] = curve(t[mine])
        return points + sigma * rng.standard_normal((n, 2))

    def log_density(x: np.ndarray, panels: int = panels) -> np.ndarray:
        t, w = _gauss_legendre(panels)
        centres = np.concatenate([curve(t) for curve in curves])
        log_w = np.log(np.tile(w, len(curves)) / len(curves))
        out = np.empty(len(x))
        for start in range(0, len(x), 500):
            chunk = x[start : start + 500]
            d2 = ((chunk[:, None, :] - centres[None]) ** 2).sum(-1)
            terms = log_w - d2 / (2 * sigma**2) - LOG_2PI - 2 * math.log(sigma)
            out[start : start + 500] = logsumexp(terms, axis=1)
        return out

    def check(x: np.ndarray) -> float:
        return float(np.max(np.abs(log_density(x, panels) - log_density(x, 2 * panels))))

    return sample, log_density, check


def strokes(polylines: list[np.ndarray], sigma: float):
    """Points uniform along the strokes (by length), plus N(0, sigma^2 I): closed-form density."""
    starts = np.concatenate([p[:-1] for p in polylines])
    ends = np.concatenate([p[1:] for p in polylines])
    lengths = np.linalg.norm(ends - starts, axis=1)
    total = lengths.sum()
    along = (ends - starts) / lengths[:, None]
    normal = np.stack([-along[:, 1], along[:, 0]], -1)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(lengths), size=n, p=lengths / total)
        t = rng.random(n)[:, None] * lengths[k, None]
        return starts[k] + t * along[k] + sigma * rng.standard_normal((n, 2))

    def log_density(x: np.ndarray) -> np.ndarray:
        d = x[:, None, :] - starts[None]
        s = np.einsum("nkj,kj->nk", d, along)
        h = np.einsum("nkj,kj->nk", d, normal)
        upper, lower = (lengths[None] - s) / sigma, -s / sigma
        # log(Phi(upper) - Phi(lower)), stable on either tail
        with np.errstate(divide="ignore"):
            mass = np.where(
                lower > 0,
                log_ndtr(-lower)
                + np.log1p(-np.exp(np.minimum(log_ndtr(-upper) - log_ndtr(-lower), -1e-300))),
                np.log(np.maximum(ndtr(upper) - ndtr(lower), 1e-300)),
            )
        terms = -(h**2) / (2 * sigma**2) - 0.5 * LOG_2PI - math.log(sigma) + mass - math.log(total)
        return logsumexp(terms, axis=1)

    return sample, log_density


def rings(weights, radii, sigmas, centres=None):
    """Rings about their centres (the origin by default): radius a normal truncated to r > 0."""
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    radii, sigmas = np.asarray(radii, dtype=np.float64), np.asarray(sigmas, dtype=np.float64)
    centres = np.zeros((len(weights), 2)) if centres is None else np.asarray(centres, dtype=np.float64)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(weights), size=n, p=weights)
        r = radii[k] + sigmas[k] * rng.standard_normal(n)
        while np.any(r <= 0):  # the truncated normal, by rejection
            bad = r <= 0
            r[bad] = radii[k[bad]] + sigmas[k[bad]] * rng.standard_normal(bad.sum())
        angle = 2 * math.pi * rng.random(n)
        return centres[k] + r[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    def log_density(x: np.ndarray) -> np.ndarray:
        r = np.linalg.norm(x[:, None, :] - centres[None], axis=2)
        z = (r - radii[None]) / sigmas[None]
        terms = (
            np.log(weights)
            - 0.5 * z**2
            - 0.5 * LOG_2PI
            - np.log(sigmas)
            - log_ndtr(radii / sigmas)
            - math.log(2 * math.pi)
            - np.log(r)
        )
        return logsumexp(terms, axis=1)

    return sample, log_density


def swirled(sample_y, log_density_y, rate: float):
    """x = Rot(rate |y|) y: volume-preserving, |x| = |y|."""

    def turn(points: np.ndarray, sign: float) -> np.ndarray:
        angle = sign * rate * np.linalg.norm(points, axis=1)
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([c * points[:, 0] - s * points[:, 1], s * points[:, 0] + c * points[:, 1]], -1)

    return (lambda n, rng: turn(sample_y(n, rng), 1.0)), (lambda x: log_density_y(turn(x, -1.0)))


def uniform_boxes(boxes):
    """Uniform on a union of disjoint axis-aligned boxes [(x0, x1, y0, y1), ...]."""
    boxes = np.asarray(boxes, dtype=np.float64)
    areas = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    log_p = -math.log(areas.sum())

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(boxes), size=n, p=areas / areas.sum())
        u = rng.random((n, 2))
        b = boxes[k]
        return np.stack(
            [b[:, 0] + u[:, 0] * (b[:, 1] - b[:, 0]), b[:, 2] + u[:, 1] * (b[:, 3] - b[:, 2])], -1
        )

    def log_density(x: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(x), dtype=bool)
        for x0, x1, y0, y1 in boxes:
            inside |= (x[:, 0] >= x0) & (x[:, 0] <= x1) & (x[:, 1] >= y0) & (x[:, 1] <= y1)
        return np.where(inside, log_p, -np.inf)

    return sample, log_density


def student_t(dof: float, covariance):
    return student_t_mixture([1.0], [[0.0, 0.0]], [covariance], [dof])


def student_t_mixture(weights, means, covariances, dofs):
    """A mixture of bivariate Student t distributions (closed form, log-sum-exp over components)."""
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    dofs = np.asarray(dofs, dtype=np.float64)
    cholesky = np.linalg.cholesky(covariances)
    inverse = np.linalg.inv(covariances)
    log_norm = (
        gammaln((dofs + 2) / 2)
        - gammaln(dofs / 2)
        - np.log(dofs * math.pi)
        - 0.5 * np.log(np.linalg.det(covariances))
    )

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(weights), size=n, p=weights)
        z = np.einsum("nij,nj->ni", cholesky[k], rng.standard_normal((n, 2)))
        return means[k] + z / np.sqrt(rng.chisquare(dofs[k]) / dofs[k])[:, None]

    def log_density(x: np.ndarray) -> np.ndarray:
        d = x[:, None, :] - means[None]
        m = np.einsum("nki,kij,nkj->nk", d, inverse, d)
        return logsumexp(np.log(weights) + log_norm - (dofs + 2) / 2 * np.log1p(m / dofs), axis=1)

    return sample, log_density


def banana(a: float, b: float):
    """y ~ N(0, I); x = (y1, a y2 + b (y1^2 - 1))."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        y = rng.standard_normal((n, 2))
        return np.stack([y[:, 0], a * y[:, 1] + b * (y[:, 0] ** 2 - 1)], -1)

    def log_density(x: np.ndarray) -> np.ndarray:
        y2 = (x[:, 1] - b * (x[:, 0] ** 2 - 1)) / a
        return -LOG_2PI - 0.5 * (x[:, 0] ** 2 + y2**2) - math.log(a)

    return sample, log_density


def uniform_disk_and_triangle(centre, radius, triangle):
    """Uniform on the union of a disk and a triangle that do not overlap (curved and straight edges)."""
    centre, triangle = np.asarray(centre, dtype=np.float64), np.asarray(triangle, dtype=np.float64)
    (ax, ay), (bx, by), (cx, cy) = triangle
    triangle_area = 0.5 * abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay))
    disk_area = math.pi * radius**2
    log_p = -math.log(disk_area + triangle_area)

    def in_triangle(x: np.ndarray) -> np.ndarray:
        signs = []
        for (px, py), (qx, qy) in zip(triangle, np.roll(triangle, -1, axis=0), strict=True):
            signs.append((qx - px) * (x[:, 1] - py) - (qy - py) * (x[:, 0] - px))
        signs = np.stack(signs)
        return np.all(signs >= 0, axis=0) | np.all(signs <= 0, axis=0)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        in_disk = rng.random(n) < disk_area / (disk_area + triangle_area)
        r, angle = radius * np.sqrt(rng.random(n)), 2 * math.pi * rng.random(n)
        disk = centre + r[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
        u, v = rng.random(n), rng.random(n)
        flip = u + v > 1  # a point of the parallelogram folded into the triangle
        u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
        tri = (
            triangle[0] + u[:, None] * (triangle[1] - triangle[0]) + v[:, None] * (triangle[2] - triangle[0])
        )
        return np.where(in_disk[:, None], disk, tri)

    def log_density(x: np.ndarray) -> np.ndarray:
        inside = (np.linalg.norm(x - centre, axis=1) <= radius) | in_triangle(x)
        return np.where(inside, log_p, -np.inf)

    return sample, log_density


def lognormal_funnel(sigma: float, frequency: float, spread: float):
    """x1 ~ LogNormal(0, sigma^2) (skewed, x1 > 0); x2 | x1 ~ N(sin(frequency x1), (spread x1)^2)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x1 = np.exp(sigma * rng.standard_normal(n))
        return np.stack([x1, np.sin(frequency * x1) + spread * x1 * rng.standard_normal(n)], -1)

    def log_density(x: np.ndarray) -> np.ndarray:
        x1, x2 = x[:, 0], x[:, 1]
        positive = x1 > 0
        safe = np.where(positive, x1, 1.0)
        log_x1 = np.log(safe)
        log_p1 = -0.5 * (log_x1 / sigma) ** 2 - 0.5 * LOG_2PI - math.log(sigma) - log_x1
        z = (x2 - np.sin(frequency * safe)) / (spread * safe)
        log_p2 = -0.5 * z**2 - 0.5 * LOG_2PI - np.log(spread * safe)
        return np.where(positive, log_p1 + log_p2, -np.inf)

    return sample, log_density


def in_frame(sample, log_density, scale, offset):
    """The same shape in user coordinates x_user = diag(scale) x + offset."""
    scale, offset = np.asarray(scale, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    log_det = float(np.log(np.abs(scale)).sum())
    return (
        lambda n, rng: sample(n, rng) * scale + offset,
        lambda x: log_density((x - offset) / scale) - log_det,
    )


# --------------------------------------------------------------------------- the sets

CANVAS = ([80.0, -80.0], [350.0, 250.0])  # pixels, y down, origin at the canvas' centre


def _spiral_arm(t: np.ndarray) -> np.ndarray:
    angle = 1.0 + 3.0 * math.pi * t
    radius = 0.5 + 2.5 * t
    return radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)


def _double_spiral(turns: float, phase: float):
    def arm(t: np.ndarray) -> np.ndarray:
        angle = phase + 2 * math.pi * turns * t
        radius = 0.3 + 2.7 * t
        return radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    return arm


def _moons():
    def upper(t):
        a = math.pi * t
        return 1.5 * np.stack([np.cos(a) - 0.5, np.sin(a) - 0.25], -1)

    def lower(t):
        a = math.pi * t
        return 1.5 * np.stack([1.0 - np.cos(a) - 0.5, 0.5 - np.sin(a) - 0.25], -1)

    return [upper, lower]


def _letters() -> list[np.ndarray]:
    """An 'A' of three strokes and an 'S' drawn as one curve, side by side."""
    a_left = np.array([[-2.6, -1.5], [-1.6, 1.5]])
    a_right = np.array([[-1.6, 1.5], [-0.6, -1.5]])
    a_bar = np.array([[-2.2, 0.0], [-1.0, 0.0]])
    t = np.linspace(0.0, 1.0, 41)
    angle = math.pi * (0.25 + 2.5 * t)  # an S: two half turns of opposite sense
    upper = t < 0.5
    s_x = np.where(upper, 1.4 + 0.8 * np.cos(angle + 0.3), 1.4 - 0.8 * np.cos(angle + 0.3))
    s_y = np.where(upper, 0.75 + 0.75 * np.sin(angle + 0.3), -0.75 - 0.75 * np.sin(angle + 0.3))
    s_curve = np.stack([s_x, s_y], -1)
    return [a_left, a_right, a_bar, s_curve]


def _spiral(turns: float, inner: float, outer: float):
    def arm(t: np.ndarray) -> np.ndarray:
        angle = 0.5 + 2 * math.pi * turns * t
        radius = inner + (outer - inner) * t
        return radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)

    return arm


def _face() -> list[np.ndarray]:
    """A face as a person would draw it: an outline, two eyes and a smile."""
    a = np.linspace(0.0, 2 * math.pi, 49)
    outline = 2.2 * np.stack([np.cos(a), np.sin(a)], -1)
    left_eye = np.array([[-0.9, 0.5], [-0.7, 0.9]])
    right_eye = np.array([[0.7, 0.5], [0.9, 0.9]])
    s = np.linspace(math.pi * 1.15, math.pi * 1.85, 15)
    smile = np.stack([1.2 * np.cos(s), 0.3 + 1.2 * np.sin(s)], -1)
    return [outline, left_eye, right_eye, smile]


def bench_sets() -> dict[str, BenchSet]:
    sets: dict[str, BenchSet] = {}

    def add(name, half, sample, log_density, note, frame, check=None):
        sample, log_density = in_frame(sample, log_density, *frame)
        scale, offset = np.asarray(frame[0]), np.asarray(frame[1])
        framed_check = None if check is None else (lambda x: check((x - offset) / scale))
        sets[name] = BenchSet(name, half, sample, log_density, note, framed_check)

    # ---- tuning half
    angles = 2 * np.pi * np.arange(8) / 8
    means = 2.5 * np.stack([np.cos(angles), np.sin(angles)], -1)
    add(
        "8_gaussians",
        TUNING,
        *gaussian_mixture(np.full(8, 1 / 8), means, np.tile(0.15**2 * np.eye(2), (8, 1, 1))),
        "8 x N(m_k, 0.15^2 I), |m_k| = 2.5",
        CANVAS,
    )
    add(
        "anisotropic_2",
        TUNING,
        *gaussian_mixture(
            [0.35, 0.65],
            [[-1.2, 0.8], [1.0, -0.6]],
            [_covariance(1.5, 0.12, 35), _covariance(1.0, 0.25, -60)],
        ),
        "0.35 N(std 1.5 x 0.12, 35 deg) + 0.65 N(std 1 x 0.25, -60 deg)",
        ([1.0, 1.0], [0.0, 0.0]),
    )
    sample, log_density, check = noisy_curves([_spiral_arm], 0.1, panels=400)
    add("spiral", TUNING, sample, log_density, "a spiral arm of 1.5 turns + N(0, 0.1^2 I)", CANVAS, check)
    sample, log_density, check = noisy_curves(_moons(), 0.1, panels=100)
    add(
        "two_moons",
        TUNING,
        sample,
        log_density,
        "two moon arcs + N(0, 0.1^2 I)",
        ([12.0, 12.0], [50.0, 40.0]),
        check,
    )
    cells = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    add(
        "checkerboard",
        TUNING,
        *uniform_boxes([(i - 2.0, i - 1.0, j - 2.0, j - 1.0) for i, j in cells]),
        "uniform on 8 of the 16 unit squares of [-2, 2]^2",
        CANVAS,
    )
    add("ring", TUNING, *rings([1.0], [2.0], [0.15]), "a ring: radius N(2, 0.15^2), angle uniform", CANVAS)
    blade_angles = 2 * math.pi * np.arange(5) / 5
    blade_means = 1.3 * np.stack([np.cos(blade_angles), np.sin(blade_angles)], -1)
    blade_covariances = np.stack([_covariance(0.45, 0.08, math.degrees(a)) for a in blade_angles])
    add(
        "pinwheel",
        TUNING,
        *swirled(*gaussian_mixture(np.full(5, 0.2), blade_means, blade_covariances), rate=0.9),
        "5 blades N(1.3 e_k, std 0.45 x 0.08) turned by 0.9 |y| rad",
        ([1.0, 1.0], [5.0, -3.0]),
    )

    # ---- tuning half, continued (the first held-out half; see the module docstring)
    add(
        "thin_unequal_6",
        TUNING,
        *gaussian_mixture(
            [0.4, 0.25, 0.15, 0.1, 0.06, 0.04],
            [[0.0, 0.0], [2.2, 1.5], [-2.0, 1.8], [-1.5, -2.2], [2.4, -1.8], [0.2, 2.8]],
            [
                _covariance(1.0, 0.6, 20),
                _covariance(0.9, 0.05, -30),
                _covariance(0.3, 0.3, 0),
                _covariance(1.2, 0.04, 70),
                _covariance(0.1, 0.1, 0),
                _covariance(0.5, 0.03, 0),
            ],
        ),
        "6 Gaussians, weights 0.4 to 0.04, minor std down to 0.03",
        CANVAS,
    )
    add(
        "heavy_tails",
        TUNING,
        *student_t(4.0, _covariance(1.0, 0.4, 30)),
        "Student t, 4 degrees of freedom, scale std 1 x 0.4 at 30 deg",
        ([10.0, 10.0], [100.0, 100.0]),
    )
    sample, log_density, check = noisy_curves(
        [_double_spiral(2.0, 0.0), _double_spiral(2.0, math.pi)], 0.06, panels=800
    )
    add(
        "double_spiral",
        TUNING,
        sample,
        log_density,
        "two spiral arms of 2 turns + N(0, 0.06^2 I)",
        CANVAS,
        check,
    )
    add(
        "letters",
        TUNING,
        *strokes(_letters(), 0.07),
        "the strokes of an 'A' and an 'S', points uniform along them + N(0, 0.07^2 I)",
        CANVAS,
    )
    add(
        "uniform_l",
        TUNING,
        *uniform_boxes([(0.0, 2.0, 0.0, 0.6), (0.0, 0.6, 0.6, 2.0)]),
        "uniform on an L of two rectangles (sharp edges)",
        ([3.0, 3.0], [-1.0, 2.0]),
    )
    add(
        "nested_rings",
        TUNING,
        *rings([0.35, 0.65], [1.0, 2.5], [0.08, 0.12]),
        "two rings: radius N(1, 0.08^2) (0.35) and N(2.5, 0.12^2) (0.65)",
        CANVAS,
    )
    add(
        "banana_scales",
        TUNING,
        *banana(0.5, 0.6),
        "banana x2 = 0.5 y2 + 0.6 (y1^2 - 1), axes in units 2500 and 0.004 apart",
        ([2500.0, 0.004], [40000.0, 1.2]),
    )
    # ---- held-out half
    add(
        "scattered_9",
        HELD_OUT,
        *gaussian_mixture(
            [0.22, 0.18, 0.14, 0.12, 0.1, 0.08, 0.07, 0.05, 0.04],
            [
                [-2.4, 1.9],
                [-0.6, 2.3],
                [1.8, 2.0],
                [-2.0, -0.2],
                [0.3, 0.4],
                [2.3, -0.3],
                [-1.2, -2.1],
                [0.9, -1.9],
                [2.6, -2.4],
            ],
            [
                _covariance(0.35, 0.35, 0),
                _covariance(0.6, 0.06, 10),
                _covariance(0.25, 0.12, -45),
                _covariance(0.5, 0.2, 80),
                _covariance(0.8, 0.3, 25),
                _covariance(0.05, 0.05, 0),
                _covariance(0.7, 0.04, -20),
                _covariance(0.2, 0.2, 0),
                _covariance(0.3, 0.08, 60),
            ],
        ),
        "9 Gaussians, weights 0.22 to 0.04, stds 0.8 down to 0.04, some round, some thin",
        ([0.01, 0.01], [1.5, 0.2]),
    )
    sample, log_density, check = noisy_curves([_spiral(3.0, 0.2, 3.0)], 0.08, panels=1600)
    add(
        "spiral_3_turns",
        HELD_OUT,
        sample,
        log_density,
        "one spiral arm of 3 turns, radius 0.2 to 3, + N(0, 0.08^2 I)",
        CANVAS,
        check,
    )
    add(
        "disk_triangle",
        HELD_OUT,
        *uniform_disk_and_triangle([-1.3, 0.6], 1.0, [[0.2, -1.8], [2.6, -1.2], [0.9, 1.6]]),
        "uniform on a disk of radius 1 and a triangle beside it (curved and straight edges)",
        CANVAS,
    )
    add(
        "lognormal_funnel",
        HELD_OUT,
        *lognormal_funnel(0.5, 1.5, 0.15),
        "x1 log-normal (sigma 0.5), x2 ~ N(sin 1.5 x1, (0.15 x1)^2): skewed, a widening wave;"
        " axes in units 1000 and 0.01",
        ([1000.0, 0.01], [-200.0, 3.0]),
    )
    add(
        "t_mixture",
        HELD_OUT,
        *student_t_mixture(
            [0.7, 0.3],
            [[0.0, 0.0], [2.5, 1.5]],
            [_covariance(0.8, 0.25, -25), _covariance(0.3, 0.3, 0)],
            [5.0, 3.0],
        ),
        "0.7 t_5 (scale 0.8 x 0.25, -25 deg) + 0.3 t_3 (scale 0.3) at (2.5, 1.5): heavy tails",
        ([1.0, 1.0], [0.0, 0.0]),
    )
    add(
        "face",
        HELD_OUT,
        *strokes(_face(), 0.06),
        "a drawn face: a circle of radius 2.2, two eyes and a smile, + N(0, 0.06^2 I)",
        CANVAS,
    )
    add(
        "linked_rings",
        HELD_OUT,
        *rings([0.4, 0.35, 0.25], [1.2, 1.0, 0.7], [0.1, 0.06, 0.05], [[-1.0, 0.0], [0.6, 0.3], [0.0, -1.2]]),
        "three overlapping rings of radii 1.2, 1 and 0.7 about different centres",
        CANVAS,
    )
    return sets
