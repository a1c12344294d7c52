"""What each layer's controls look like: labels, ranges and the reason for a limit.

Pure data (no Streamlit), so it can be checked without a browser. A control
edits one number of a canonical layer entry, found by its ``path`` (keys and
list indices). Ranges keep a layer invertible where a range can (a tail weight
above 0, radial beta above -alpha); where no range can (planar's w.u > -1,
a singular affine matrix), the spec's own check names the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    path: tuple  # where the number lives in the layer entry, e.g. ("w", 0)
    label: str  # visible label: says what it sets
    low: float
    high: float
    step: float
    help: str = ""


def _pair(key: str, labels: tuple[str, str], low: float, high: float, step: float, help: str = ""):
    return [Control((key, i), labels[i], low, high, step, help) for i in range(2)]


def _function(key: str, name: str, scale: float) -> list[Control]:
    """The six numbers of g(t) = a sin(f t + phi) + c0 + c1 t + c2 t^2."""
    return [
        Control((key, "sin", 0), f"{name}: sine amplitude a", -3 * scale, 3 * scale, 0.05),
        Control((key, "sin", 1), f"{name}: sine frequency f", 0.0, 4.0, 0.05),
        Control((key, "sin", 2), f"{name}: sine phase φ", -3.14, 3.14, 0.01),
        Control((key, "poly", 0), f"{name}: constant c₀", -3 * scale, 3 * scale, 0.05),
        Control((key, "poly", 1), f"{name}: linear c₁", -2 * scale, 2 * scale, 0.05),
        Control((key, "poly", 2), f"{name}: quadratic c₂", -2 * scale, 2 * scale, 0.05),
    ]


LAYER_CONTROLS: dict[str, list[Control]] = {
    "affine": [
        Control(("matrix", 0, 0), "Matrix entry a₁₁", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 0, 1), "Matrix entry a₁₂", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 1, 0), "Matrix entry a₂₁", -3, 3, 0.05, "det A must not be 0"),
        Control(("matrix", 1, 1), "Matrix entry a₂₂", -3, 3, 0.05, "det A must not be 0"),
        *_pair("shift", ("Affine shift s₁ (x)", "Affine shift s₂ (y)"), -4, 4, 0.05),
    ],
    "shift": _pair("shift", ("Shift s₁ (x)", "Shift s₂ (y)"), -4, 4, 0.05),
    # Scale factors: magnitude sliders that stay away from 0 plus a mirror switch (see SIGNED_SCALE).
    "scale": _pair(
        "scale",
        ("Scale factor |k₁| (x)", "Scale factor |k₂| (y)"),
        0.1,
        4,
        0.05,
        "kept above 0: a zero factor would flatten the plane onto a line",
    ),
    "rotation": [Control(("degrees",), "Rotation angle (degrees)", -180, 180, 1)],
    "swap": [],
    "exp": [],
    "tanh": [],
    "sigmoid": [],
    "softplus": [],
    "leaky_relu": [
        Control(
            ("negative_slope",), "Negative slope a", 0.05, 3, 0.05, "kept above 0 so the map stays invertible"
        )
    ],
    "sinh_arcsinh": [
        Control(("skew",), "Skew ε", -3, 3, 0.05),
        Control(("tailweight",), "Tail weight δ", 0.2, 3, 0.05, "kept above 0 so the map stays invertible"),
    ],
    "planar": [
        *_pair("w", ("Planar direction w₁", "Planar direction w₂"), -4, 4, 0.05, "needs w·u > −1"),
        *_pair("u", ("Planar push u₁", "Planar push u₂"), -3, 3, 0.05, "needs w·u > −1"),
        Control(("b",), "Planar bias b", -3, 3, 0.05),
    ],
    "radial": [
        *_pair("center", ("Radial centre c₁", "Radial centre c₂"), -3, 3, 0.05),
        Control(("alpha",), "Radial α (softness)", 0.05, 3, 0.05, "kept above 0 so the map stays invertible"),
        # beta's lower limit depends on alpha: see dynamic_range().
        Control(
            ("beta",),
            "Radial β (push > 0, pull < 0)",
            -3,
            5,
            0.05,
            "kept above −α so the map stays invertible",
        ),
    ],
    "coupling": [*_function("shift", "Shift g_t", 1.0), *_function("log_scale", "Log-scale g_s", 0.5)],
    "swirl": [
        *_pair("center", ("Swirl centre c₁", "Swirl centre c₂"), -3, 3, 0.05),
        Control(("strength",), "Swirl strength (radians at the centre)", -10, 10, 0.1),
        Control(("radius",), "Swirl radius ρ", 0.1, 4, 0.05, "kept above 0"),
    ],
    "spline": [Control(("bound",), "Spline bound B", 0.5, 5, 0.1, "identity outside [−B, B]")],
    "piecewise_linear": [],
}

# Up to these counts each number has its own slider; beyond them one table holds them
# all, so that drawing the editor takes the same time whatever the count (the spec's
# own limits, spec.MAX_SPLINE_BINS and the rest, bound the count).
SLIDER_BINS = 8
SLIDER_KNOTS = 4
SLIDER_COMPONENTS = 8


def spline_controls(bins: int) -> list[Control]:
    """One width and height per bin and one slope per inner knot."""
    keep = "kept above 0 so the spline stays monotone"
    controls = []
    for k in range(bins):
        controls.append(Control(("widths", k), f"Bin {k + 1} width", 0.1, 5, 0.05, keep))
        controls.append(Control(("heights", k), f"Bin {k + 1} height", 0.1, 5, 0.05, keep))
    for k in range(bins - 1):
        controls.append(Control(("derivatives", k), f"Slope at inner knot {k + 1}", 0.1, 5, 0.05, keep))
    return controls


def piecewise_controls(knots: int) -> list[Control]:
    controls = [
        Control(("knots", k), f"Knot {k + 1} position", -4, 4, 0.05, "knots must increase")
        for k in range(knots)
    ]
    controls += [
        Control(
            ("slopes", k), f"Segment {k + 1} slope", 0.1, 4, 0.05, "kept above 0 so the map stays invertible"
        )
        for k in range(knots + 1)
    ]
    return controls


def controls_for(layer: dict) -> list[Control]:
    """Every numeric control of one canonical layer entry."""
    kind = layer["type"]
    controls = list(LAYER_CONTROLS[kind])
    if kind == "spline":
        controls += spline_controls(len(layer["widths"]))
    if kind == "piecewise_linear":
        controls += piecewise_controls(len(layer["knots"]))
    return controls


def dynamic_range(control: Control, layer: dict) -> tuple[float, float]:
    """The control's range for this layer's other values (radial beta stays above -alpha)."""
    if layer["type"] == "radial" and control.path == ("beta",):
        return (round(-layer["alpha"] + control.step, 6), control.high)
    return (control.low, control.high)


def invalid_at_or_below(control: Control, layer: dict) -> float:
    """The value at or below which the control breaks its layer's condition (radial beta: -alpha), else -inf.

    Only such a value is moved up to the control's range; any other value below the
    range (from a link or a file) is kept, and the slider widens to hold it.
    """
    if layer["type"] == "radial" and control.path == ("beta",):
        return -layer["alpha"]
    return -math.inf


def get_value(layer: dict, path: tuple) -> float | None:
    """The number at ``path``; None where an optional part (sin, poly) is absent."""
    node = layer
    for key in path:
        if isinstance(node, dict):
            if key not in node:
                return None
            node = node[key]
        else:
            node = node[key]
    return node


def set_value(layer: dict, path: tuple, value: float) -> None:
    """Write a number at ``path``, creating an optional sin/poly part with neutral values."""
    node = layer
    for key in path[:-1]:
        if isinstance(node, dict) and key not in node:
            node[key] = [0.0, 1.0, 0.0] if key == "sin" else [0.0, 0.0, 0.0]
        node = node[key]
    node[path[-1]] = value


def neutral_value(path: tuple) -> float:
    """The value of a control whose optional part is absent: it changes nothing."""
    if len(path) == 3 and path[1] == "sin" and path[2] == 1:
        return 1.0
    return 0.0


def tidy_function(function: dict) -> dict:
    """Drop a sine with zero amplitude and a polynomial of zeros, so specs stay short."""
    out = {}
    if "sin" in function and function["sin"][0] != 0:
        out["sin"] = function["sin"]
    if "poly" in function and any(c != 0 for c in function["poly"]):
        out["poly"] = function["poly"]
    return out
