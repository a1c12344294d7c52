"""What each layer's controls look like: labels, ranges and the reason for a limit.

Each layer class declares its controls; this module reads them and edits the
numbers they point at. Pure data (no Streamlit), so it can be checked without a browser. A control
edits one number of a canonical layer entry, found by its ``path`` (keys and
list indices). Ranges keep a layer invertible where a range can (a tail weight
above 0, radial beta above -alpha); where no range can (planar's w.u > -1,
a singular affine matrix), the spec's own check names the problem.
"""

from __future__ import annotations

from flowviz.layers import LAYER_CLASSES, PiecewiseLinear, Spline
from flowviz.layers.base import Control

__all__ = [
    "LAYER_CONTROLS",
    "SLIDER_BINS",
    "SLIDER_COMPONENTS",
    "SLIDER_KNOTS",
    "Control",
    "controls_for",
    "dynamic_range",
    "get_value",
    "invalid_at_or_below",
    "neutral_value",
    "set_value",
    "tidy_function",
]


# Each layer class declares its own controls (``controls``, ``controls_for``): the
# ranges and steps live beside the math they keep invertible.
LAYER_CONTROLS: dict[str, list[Control]] = {kind: list(cls.controls) for kind, cls in LAYER_CLASSES.items()}

# Up to these counts each number has its own slider; beyond them one table holds them
# all, so that drawing the editor takes the same time whatever the count (the spec's
# own limits, spec.MAX_SPLINE_BINS and the rest, bound the count).
SLIDER_BINS = Spline.slider_count
SLIDER_KNOTS = PiecewiseLinear.slider_count
SLIDER_COMPONENTS = 8


def controls_for(layer: dict) -> list[Control]:
    """Every numeric control of one canonical layer entry."""
    return LAYER_CLASSES[layer["type"]].controls_for(layer)


def dynamic_range(control: Control, layer: dict) -> tuple[float, float]:
    """The control's range for this layer's other values (radial beta stays above -alpha)."""
    return LAYER_CLASSES[layer["type"]].control_range(control, layer)


def invalid_at_or_below(control: Control, layer: dict) -> float:
    """The value at or below which the control breaks its layer's condition (radial beta: -alpha), else -inf.

    Only such a value is moved up to the control's range; any other value below the
    range (from a link or a file) is kept, and the slider widens to hold it.
    """
    return LAYER_CLASSES[layer["type"]].invalid_at_or_below(control, layer)


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
