"""Ready-made flows, bases and layer defaults: the Explorer's one-click starting points."""

from __future__ import annotations

import copy
import math

from flowviz.layers import LAYER_CLASSES
from flowviz.spec import parse_spec

STANDARD_GAUSSIAN = {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}


def two_blobs() -> dict:
    """Two well separated Gaussian blobs on the x-axis."""
    blob = [[0.36, 0.0], [0.0, 0.36]]
    return {
        "type": "mixture",
        "components": [{"mean": [-1.5, 0.0], "cov": blob}, {"mean": [1.5, 0.0], "cov": blob}],
        "weights": [0.5, 0.5],
    }


def ring_of_gaussians(count: int = 8, radius: float = 2.5, sigma: float = 0.35) -> dict:
    """``count`` equal Gaussians evenly spaced on a circle."""
    cov = [[sigma**2, 0.0], [0.0, sigma**2]]
    components = [
        {
            "mean": [
                round(radius * math.cos(2 * math.pi * k / count), 6),
                round(radius * math.sin(2 * math.pi * k / count), 6),
            ],
            "cov": cov,
        }
        for k in range(count)
    ]
    return {"type": "mixture", "components": components, "weights": [1.0 / count] * count}


BASE_PRESETS: dict[str, dict] = {
    "standard Gaussian": STANDARD_GAUSSIAN,
    "uniform box": {"type": "uniform", "low": [-1.5, -1.5], "high": [1.5, 1.5]},
    "two blobs": two_blobs(),
    "ring of 8": ring_of_gaussians(),
}

# What "add layer" inserts: mild, clearly visible settings for each type (each class's ``defaults``).
LAYER_DEFAULTS: dict[str, dict] = {
    kind: {"type": kind, **copy.deepcopy(cls.defaults)} for kind, cls in LAYER_CLASSES.items()
}

LAYER_TITLES: dict[str, str] = {kind: cls.title for kind, cls in LAYER_CLASSES.items()}

_VIEW = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 256}


def _flow(base: dict, layers: list[dict], view: dict | None = None) -> dict:
    return parse_spec({"version": 1, "base": base, "layers": layers, "view": view or _VIEW})


FLOW_PRESETS: dict[str, tuple[str, dict]] = {
    "banana": (
        "One affine coupling: x₂ is shifted by x₁² − 1, so the Gaussian bends into a banana. "
        "The Jacobian is triangular with unit diagonal: area is preserved everywhere.",
        _flow(
            {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 0.3]]},
            [{"type": "coupling", "condition_on": 0, "shift": {"poly": [-1.0, 0.0, 1.0]}}],
            {"xlim": [-5.0, 5.0], "ylim": [-3.0, 7.0], "resolution": 256},
        ),
    ),
    "unimodal to multimodal": (
        "Two planar layers each push mass away from a line through the centre (strong stretching "
        "there, so the density falls), then a rotation: one Gaussian becomes four modes.",
        _flow(
            STANDARD_GAUSSIAN,
            [
                {"type": "planar", "w": [3.0, 0.0], "u": [1.1, 0.0], "b": 0.0},
                {"type": "planar", "w": [0.0, 3.0], "u": [0.0, 1.1], "b": 0.0},
                {"type": "rotation", "degrees": 45.0},
            ],
            {"xlim": [-4.5, 4.5], "ylim": [-4.5, 4.5], "resolution": 256},
        ),
    ),
    "volume-preserving swirl": (
        "A swirl rotates each ring by an angle that fades with the radius: the elongated Gaussian "
        "curls into a spiral, yet det J = 1 everywhere, so the volume maps stay white.",
        _flow(
            {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[2.25, 0.0], [0.0, 0.2]]},
            [{"type": "swirl", "center": [0.0, 0.0], "strength": 3.0, "radius": 1.5}],
        ),
    ),
    "squeeze into a box": (
        "tanh maps the whole plane into the square (−1, 1)²: far-out mass is squeezed against "
        "the edges (strong compression, blue), where the density piles up.",
        _flow(
            {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]},
            [{"type": "tanh"}],
            {"xlim": [-2.5, 2.5], "ylim": [-2.5, 2.5], "resolution": 256},
        ),
    ),
    "spline warp": (
        "A uniform box through a monotone rational-quadratic spline on both coordinates: bins made "
        "shorter than they are wide squeeze space and the density piles up (bright bands), bins made "
        "taller stretch it and the density thins. Identity outside the bound.",
        _flow(
            {"type": "uniform", "low": [-2.5, -2.5], "high": [2.5, 2.5]},
            [
                {
                    "type": "spline",
                    "dims": [0, 1],
                    "bound": 2.5,
                    "widths": [1.0, 1.0, 1.0, 1.0, 1.0],
                    "heights": [1.6, 0.6, 1.0, 0.6, 1.6],
                    "derivatives": [1.1, 0.8, 0.8, 1.1],
                }
            ],
            {"xlim": [-3.0, 3.0], "ylim": [-3.0, 3.0], "resolution": 256},
        ),
    ),
    "planar and radial": (
        "A planar layer pushes mass away from the line w·z + b = 0, splitting the Gaussian in two; "
        "a radial layer then pushes the right half away from its centre, hollowing it into a ring.",
        _flow(
            STANDARD_GAUSSIAN,
            [
                {"type": "planar", "w": [3.0, 0.0], "u": [1.2, 0.3], "b": 0.0},
                {"type": "radial", "center": [1.7, 0.0], "alpha": 0.3, "beta": 1.2},
            ],
            {"xlim": [-5.0, 5.0], "ylim": [-5.0, 5.0], "resolution": 256},
        ),
    ),
}

DEFAULT_PRESET = "unimodal to multimodal"


def default_spec() -> dict:
    """The flow the Explorer opens with."""
    return copy.deepcopy(FLOW_PRESETS[DEFAULT_PRESET][1])


def new_layer(kind: str) -> dict:
    """A fresh layer of the given type with its default settings (canonical form)."""
    spec = _flow(STANDARD_GAUSSIAN, [copy.deepcopy(LAYER_DEFAULTS[kind])])
    return spec["layers"][0]
