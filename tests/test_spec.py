"""The flow spec: every way to get it wrong is refused with a place and a reason; defaults; tokens.

Each invalid case is one row: the spec (a dict, or JSON text), the place the
message must start with, and fragments of the reason it must contain. The
message format is the contract's: ``<place>: <reason>``, one line.
"""

from __future__ import annotations

import base64
import copy
import json
import math

import pytest

import flowviz
from flowviz import SpecError, decode_token, encode_token, parse_spec
from flowviz.spec import MAX_RESOLUTION

GAUSSIAN = {"type": "gaussian", "mean": [0, 0], "cov": [[1, 0], [0, 1]]}
LEAD = [{"type": "shift", "shift": [0.5, 0]}, {"type": "rotation", "degrees": 30}]


def spec_with(**parts) -> dict:
    spec = {"version": 1, "base": GAUSSIAN, "layers": [], "view": {"xlim": [-4, 4], "ylim": [-4, 4]}}
    spec.update(parts)
    return copy.deepcopy(spec)


def third_layer(layer: dict) -> dict:
    """A spec whose layers[2] is ``layer`` (two valid layers before it)."""
    return spec_with(layers=[*LEAD, layer])


def view(**fields) -> dict:
    return spec_with(view=fields)


def base(**fields) -> dict:
    return spec_with(base=fields)


def case(spec, place: str, *fragments: str, id: str):
    return pytest.param(spec, place, fragments, id=id)


PLANAR = {"type": "planar", "w": [1, 0], "u": [0.5, 0.5]}
SPLINE = {"type": "spline", "widths": [1, 2], "heights": [2, 1], "derivatives": [0.5]}
PIECEWISE = {"type": "piecewise_linear", "knots": [-1, 1], "slopes": [1, 0.5, 2]}
MIXTURE = {"type": "mixture", "components": [{"mean": [-1, 0]}, {"mean": [1, 0]}]}


def L(layer: dict, **changes) -> dict:
    """A copy of ``layer`` with fields changed (a value of ... removes the field)."""
    out = copy.deepcopy(layer)
    for key, value in changes.items():
        if value is ...:
            out.pop(key)
        else:
            out[key] = value
    return out


# fmt: off
INVALID = [
    # ---- not JSON, or not a JSON object
    case("{", "spec", "not valid JSON", id="truncated-json"),
    case("", "spec", "not valid JSON", id="empty-text"),
    case('{"base": {"type": "gaussian"}, "layers": [],}', "spec", "not valid JSON", id="trailing-comma"),
    case(b"\xff\xfe{}", "spec", "not valid JSON", id="not-utf8"),
    case('{"base": {"type": "gaussian", "mean": [NaN, 0]}, "layers": []}', "spec", "NaN", id="json-nan"),
    case('{"base": {"type": "gaussian"}, "layers": [{"type": "rotation", "degrees": Infinity}]}',
         "spec", "Infinity", id="json-infinity"),
    case('{"base": {"type": "gaussian"}, "layers": [{"type": "rotation", "degrees": -Infinity}]}',
         "spec", "-Infinity", id="json-minus-infinity"),
    case('{"base": {"type": "gaussian"}, "layers": [{"type": "rotation", "degrees": 1e400}]}',
         "layers[0] (rotation)", "degrees must be a finite number", id="json-overflowing-number"),
    case("[1, 2]", "spec", "must be a JSON object", id="json-list"),
    case([1, 2], "spec", "must be a JSON object", id="list"),
    # ---- top level
    case({"layers": []}, "spec", "missing required field 'base'", id="no-base"),
    case({"base": GAUSSIAN}, "spec", "missing required field 'layers'", id="no-layers"),
    case(spec_with(extra=1), "spec", "unknown field 'extra'", id="unknown-top-field"),
    case(spec_with(version=2), "version", "must be 1", id="version-2"),
    case(spec_with(version=True), "version", "must be 1", "true", id="version-bool"),
    case(spec_with(version="1"), "version", "must be 1", id="version-string"),
    case(spec_with(layers={"type": "swap"}), "layers", "must be a list", id="layers-object"),
    case(spec_with(layers=[*LEAD, 3]), "layers[2]", "must be an object", id="layer-number"),
    case(third_layer({"degrees": 3}), "layers[2]", "missing required field 'type'", id="layer-no-type"),
    case(third_layer({"type": "warp"}), "layers[2]", "unknown layer type", '"warp"', id="unknown-layer"),
    case(third_layer({"type": ["shift"]}), "layers[2]", "unknown layer type", id="layer-type-list"),
    case(third_layer({"type": 7}), "layers[2]", "unknown layer type", id="layer-type-number"),
    case(third_layer({"type": "swap", "angle": 1}), "layers[2] (swap)", "unknown field 'angle'", id="unknown-layer-field"),
    case(third_layer({"type": "swap", "enabled": 0}), "layers[2] (swap)", "enabled must be true or false", id="enabled-number"),
    # ---- missing required fields, per type
    *[
        case(third_layer(L(layer, **{field: ...})), f"layers[2] ({layer['type']})",
             "missing required field", repr(field), id=f"missing-{layer['type']}-{field}")
        for layer, fields in [
            ({"type": "shift", "shift": [1, 2]}, ["shift"]),
            ({"type": "scale", "scale": [1, 2]}, ["scale"]),
            ({"type": "rotation", "degrees": 10}, ["degrees"]),
            (PLANAR, ["w", "u"]),
            ({"type": "radial", "beta": 1}, ["beta"]),
            ({"type": "swirl", "strength": 1}, ["strength"]),
            (SPLINE, ["widths", "heights", "derivatives"]),
            (PIECEWISE, ["knots", "slopes"]),
        ]
        for field in fields
    ],
    case(base(type="uniform", high=[1, 1]), "base (uniform)", "missing required field 'low'", id="missing-uniform-low"),
    case(base(type="uniform", low=[0, 0]), "base (uniform)", "missing required field 'high'", id="missing-uniform-high"),
    case(base(type="mixture"), "base (mixture)", "missing required field 'components'", id="missing-components"),
    case(base(mean=[0, 0]), "base", "missing required field 'type'", id="missing-base-type"),
    # ---- wrong types and shapes
    case(third_layer({"type": "rotation", "degrees": "30"}), "layers[2] (rotation)", "degrees must be a number", '"30"', id="degrees-string"),
    case(third_layer({"type": "rotation", "degrees": True}), "layers[2] (rotation)", "degrees must be a number", "true", id="degrees-bool"),
    case(third_layer({"type": "rotation", "degrees": None}), "layers[2] (rotation)", "degrees must be a number", "null", id="degrees-null"),
    case(third_layer({"type": "rotation", "degrees": [30]}), "layers[2] (rotation)", "degrees must be a number", id="degrees-list"),
    case(third_layer({"type": "affine", "matrix": "I"}), "layers[2] (affine)", "matrix must be a 2x2 matrix", id="matrix-string"),
    case(third_layer({"type": "affine", "matrix": [[1, 0]]}), "layers[2] (affine)", "matrix must be a 2x2 matrix", id="matrix-one-row"),
    case(third_layer({"type": "affine", "matrix": [[1, 0, 0], [0, 1, 0]]}), "layers[2] (affine)", "matrix[0] must be a list of 2 numbers", id="matrix-wide"),
    case(third_layer({"type": "affine", "matrix": [[1, False], [0, 1]]}), "layers[2] (affine)", "matrix[0][1] must be a number", "false", id="matrix-bool"),
    case(third_layer({"type": "affine", "shift": [1]}), "layers[2] (affine)", "shift must be a list of 2 numbers", id="shift-short"),
    case(third_layer({"type": "shift", "shift": [True, 0]}), "layers[2] (shift)", "shift[0] must be a number", "true", id="shift-bool"),
    case(third_layer({"type": "shift", "shift": 1}), "layers[2] (shift)", "shift must be a list of 2 numbers", id="shift-scalar"),
    case(third_layer({"type": "scale", "scale": [1, 2, 3]}), "layers[2] (scale)", "scale must be a list of 2 numbers", id="scale-long"),
    case(third_layer({"type": "scale", "scale": {"x": 1}}), "layers[2] (scale)", "scale must be a list of 2 numbers", id="scale-object"),
    case(third_layer({"type": "leaky_relu", "negative_slope": "0.1"}), "layers[2] (leaky_relu)", "negative_slope must be a number", id="slope-string"),
    case(third_layer(L(PLANAR, b=[0])), "layers[2] (planar)", "b must be a number", id="planar-b-list"),
    case(third_layer({"type": "radial", "beta": 1, "center": [0, "0"]}), "layers[2] (radial)", "center[1] must be a number", id="center-string"),
    case(third_layer({"type": "coupling", "shift": "x"}), "layers[2] (coupling)", "shift must be an object", id="coupling-shift-string"),
    case(third_layer({"type": "coupling", "shift": {"sin": [1, 2]}}), "layers[2] (coupling)", "shift.sin must be a list of 3 numbers", id="coupling-sin-short"),
    case(third_layer({"type": "coupling", "log_scale": {"poly": [1, 2, "3"]}}), "layers[2] (coupling)", "log_scale.poly[2] must be a number", id="coupling-poly-string"),
    case(third_layer({"type": "coupling", "shift": {"exp": [1]}}), "layers[2] (coupling)", "unknown key 'exp'", id="coupling-unknown-key"),
    case(third_layer({"type": "coupling", "condition_on": 2}), "layers[2] (coupling)", "condition_on must be 0 or 1", id="condition-2"),
    case(third_layer({"type": "coupling", "condition_on": 0.5}), "layers[2] (coupling)", "condition_on must be a whole number", id="condition-half"),
    case(third_layer({"type": "coupling", "condition_on": True}), "layers[2] (coupling)", "condition_on must be a number", id="condition-bool"),
    case(third_layer(L(SPLINE, dims=[2])), "layers[2] (spline)", "dims must list distinct coordinates", id="dims-2"),
    case(third_layer(L(SPLINE, dims=[0, 0])), "layers[2] (spline)", "dims must list distinct coordinates", id="dims-repeated"),
    case(third_layer(L(SPLINE, dims=[])), "layers[2] (spline)", "dims must be a non-empty list", id="dims-empty"),
    case(third_layer(L(SPLINE, dims="0")), "layers[2] (spline)", "dims must be a non-empty list", id="dims-string"),
    case(third_layer(L(SPLINE, widths="1 2")), "layers[2] (spline)", "widths must be a list of numbers", id="widths-string"),
    case(third_layer(L(SPLINE, bound="3")), "layers[2] (spline)", "bound must be a number", id="bound-string"),
    # ---- non-finite numbers handed over in a dict
    case(base(type="gaussian", mean=[math.inf, 0]), "base (gaussian)", "mean[0] must be a finite number", id="mean-inf"),
    case(third_layer({"type": "rotation", "degrees": math.nan}), "layers[2] (rotation)", "degrees must be a finite number", id="degrees-nan"),
    case(view(xlim=[-math.inf, 4]), "view", "xlim[0] must be a finite number", id="xlim-inf"),
    case(third_layer(L(SPLINE, derivatives=[math.inf])), "layers[2] (spline)", "derivatives[0] must be a finite number", id="derivative-inf"),
    # ---- invertible when
    case(third_layer({"type": "affine", "matrix": [[1, 2], [2, 4]]}), "layers[2] (affine)", "det(matrix) = 0", "nonzero", id="affine-singular"),
    case(third_layer({"type": "affine", "matrix": [[0, 0], [0, 0]]}), "layers[2] (affine)", "det(matrix) = 0", id="affine-zero"),
    case(third_layer({"type": "scale", "scale": [0, 1]}), "layers[2] (scale)", "scale[0] = 0", "nonzero", id="scale-0"),
    case(third_layer({"type": "scale", "scale": [2, 0]}), "layers[2] (scale)", "scale[1] = 0", id="scale-1"),
    case(third_layer({"type": "leaky_relu", "negative_slope": 0}), "layers[2] (leaky_relu)", "negative_slope = 0", "> 0", id="slope-0"),
    case(third_layer({"type": "leaky_relu", "negative_slope": -0.5}), "layers[2] (leaky_relu)", "negative_slope = -0.5", "> 0", id="slope-negative"),
    case(third_layer({"type": "sinh_arcsinh", "tailweight": 0}), "layers[2] (sinh_arcsinh)", "tailweight = 0", "> 0", id="tailweight-0"),
    case(third_layer({"type": "sinh_arcsinh", "tailweight": -1}), "layers[2] (sinh_arcsinh)", "tailweight = -1", "> 0", id="tailweight-negative"),
    case(third_layer({"type": "planar", "w": [1, 0], "u": [-1, 3]}), "layers[2] (planar)", "w.u = -1,", "> -1", id="planar-wu-minus-1"),
    case(third_layer({"type": "planar", "w": [2, 1], "u": [-2, -1]}), "layers[2] (planar)", "w.u = -5,", "> -1", id="planar-wu-minus-5"),
    case(third_layer({"type": "planar", "w": [1e300, 1e300], "u": [1e300, -2e300]}), "layers[2] (planar)", "w.u = -1e+600, but it must be > -1", id="planar-wu-overflows-to-nan"),
    case(third_layer({"type": "planar", "w": [1e300, 1e300], "u": [1e300, -1e300]}), "layers[2] (planar)", "w.u = 0 (its terms overflow float64", id="planar-wu-terms-overflow"),
    case(third_layer({"type": "affine", "matrix": [[1e300, 0], [0, 1e-300]]}), "layers[2] (affine)", "det(matrix) = 1 is too small next to its largest entry 1e+300", "numerically singular", id="affine-ill-conditioned"),
    case(third_layer(L(SPLINE, bound=1e-300)), "layers[2] (spline)", "bound = 1e-300 is too small", "use a larger bound", id="spline-bound-tiny"),
    case(base(type="gaussian", cov=[[1e-300, 0], [0, 1e-300]]), "base (gaussian)", "cov's determinant is 1e-600, positive but beyond float64's range", id="cov-det-underflows"),
    case(base(type="gaussian", cov=[[1e200, 1e200], [1e200, 1e200]]), "base (gaussian)", "det = 0", id="cov-det-overflows-to-nan"),
    case(third_layer({"type": "radial", "alpha": 0, "beta": 1}), "layers[2] (radial)", "alpha = 0", "> 0", id="radial-alpha-0"),
    case(third_layer({"type": "radial", "alpha": -1, "beta": 1}), "layers[2] (radial)", "alpha = -1", "> 0", id="radial-alpha-negative"),
    case(third_layer({"type": "radial", "alpha": 1, "beta": -1}), "layers[2] (radial)", "beta = -1", "> -alpha = -1", id="radial-beta-minus-alpha"),
    case(third_layer({"type": "radial", "alpha": 0.5, "beta": -2}), "layers[2] (radial)", "beta = -2", "> -alpha = -0.5", id="radial-beta-below"),
    case(third_layer({"type": "swirl", "strength": 1, "radius": 0}), "layers[2] (swirl)", "radius = 0", "> 0", id="swirl-radius-0"),
    case(third_layer({"type": "swirl", "strength": 1, "radius": -2}), "layers[2] (swirl)", "radius = -2", "> 0", id="swirl-radius-negative"),
    case(third_layer(L(SPLINE, widths=[1, 0])), "layers[2] (spline)", "widths[1] = 0", "> 0", id="spline-width-0"),
    case(third_layer(L(SPLINE, heights=[-1, 1])), "layers[2] (spline)", "heights[0] = -1", "> 0", id="spline-height-negative"),
    case(third_layer(L(SPLINE, derivatives=[0])), "layers[2] (spline)", "derivatives[0] = 0", "> 0", id="spline-derivative-0"),
    case(third_layer(L(SPLINE, heights=[1, 1, 1])), "layers[2] (spline)", "heights has 3 numbers", "widths has 2", id="spline-heights-count"),
    case(third_layer(L(SPLINE, derivatives=[1, 1])), "layers[2] (spline)", "derivatives has 2 numbers", "1 inner knot", id="spline-derivatives-count"),
    case(third_layer(L(SPLINE, derivatives=[])), "layers[2] (spline)", "derivatives has 0 numbers", id="spline-derivatives-missing"),
    case(third_layer(L(SPLINE, widths=[], heights=[], derivatives=[])), "layers[2] (spline)", "at least one bin", id="spline-no-bins"),
    case(third_layer(L(SPLINE, bound=0)), "layers[2] (spline)", "bound = 0", "> 0", id="spline-bound-0"),
    case(third_layer(L(PIECEWISE, knots=[], slopes=[1])), "layers[2] (piecewise_linear)", "at least one knot", id="pl-no-knots"),
    case(third_layer(L(PIECEWISE, slopes=[1, 2])), "layers[2] (piecewise_linear)", "slopes has 2 numbers", id="pl-slopes-count"),
    case(third_layer(L(PIECEWISE, knots=[1, 1])), "layers[2] (piecewise_linear)", "knots must increase", id="pl-knots-repeat"),
    case(third_layer(L(PIECEWISE, slopes=[1, 0, 2])), "layers[2] (piecewise_linear)", "slopes[1] = 0", "> 0", id="pl-slope-0"),
    # ---- bases
    case(base(type="cauchy"), "base", "unknown base type", '"cauchy"', id="unknown-base"),
    case(spec_with(base=[0, 0]), "base", "must be an object", id="base-list"),
    case(base(type="gaussian", extra=1), "base (gaussian)", "unknown field 'extra'", id="base-unknown-field"),
    case(base(type="uniform", low=[0, 0], high=[1, 0]), "base (uniform)", "low[1] = 0 must be < high[1] = 0", id="uniform-flat"),
    case(base(type="uniform", low=[2, 0], high=[1, 1]), "base (uniform)", "low[0] = 2 must be < high[0] = 1", id="uniform-reversed"),
    case(base(type="gaussian", cov=[[1, 0.5], [0, 1]]), "base (gaussian)", "cov must be symmetric", id="cov-asymmetric"),
    case(base(type="gaussian", cov=[[1, 2], [2, 1]]), "base (gaussian)", "positive definite", "det = -3", id="cov-indefinite"),
    case(base(type="gaussian", cov=[[-1, 0], [0, -1]]), "base (gaussian)", "positive definite", id="cov-negative"),
    case(base(type="gaussian", cov=[[0, 0], [0, 0]]), "base (gaussian)", "positive definite", id="cov-zero"),
    case(base(type="gaussian", cov=[[1, 0]]), "base (gaussian)", "cov must be a 2x2 matrix", id="cov-shape"),
    case(base(**MIXTURE, weights=[1, 0]), "base (mixture)", "weights[1] = 0", "> 0", id="weight-0"),
    case(base(**MIXTURE, weights=[-1, 2]), "base (mixture)", "weights[0] = -1", "> 0", id="weight-negative"),
    case(base(**MIXTURE, weights=[1]), "base (mixture)", "weights must be a list of 2 numbers", id="weights-count"),
    case(base(**MIXTURE, weights=[1, "2"]), "base (mixture)", "weights[1] must be a number", id="weights-string"),
    case(base(type="mixture", components=[]), "base (mixture)", "components must be a non-empty list", id="no-components"),
    case(base(type="mixture", components={"mean": [0, 0]}), "base (mixture)", "components must be a non-empty list", id="components-object"),
    case(base(type="mixture", components=[{}, {"type": "uniform"}]), "base.components[1]", "type must be 'gaussian'", id="component-uniform"),
    case(base(type="mixture", components=[{}, {"cov": [[1, 3], [3, 1]]}]), "base.components[1]", "positive definite", id="component-cov"),
    case(base(type="mixture", components=[{}, 5]), "base.components[1]", "must be an object", id="component-number"),
    # ---- view
    case(spec_with(view="big"), "view", "must be an object", id="view-string"),
    case(view(zoom=2), "view", "unknown field 'zoom'", id="view-unknown-field"),
    case(view(xlim=[1]), "view", "xlim must be a list of 2 numbers", id="xlim-short"),
    case(view(ylim="-4,4"), "view", "ylim must be a list of numbers", id="ylim-string"),
    case(view(xlim=[4, -4]), "view", "xlim = [4, -4]", "low < high", id="xlim-reversed"),
    case(view(ylim=[1, 1]), "view", "ylim = [1, 1]", "low < high", id="ylim-empty"),
    case(view(resolution=1), "view", "resolution = 1", "between 2 and", id="resolution-1"),
    case(view(resolution=0), "view", "resolution = 0", id="resolution-0"),
    case(view(resolution=-5), "view", "resolution = -5", id="resolution-negative"),
    case(view(resolution=2.5), "view", "resolution must be a whole number", id="resolution-fraction"),
    case(view(resolution=True), "view", "resolution must be a number", id="resolution-bool"),
    case(view(resolution="200"), "view", "resolution must be a number", id="resolution-string"),
    case(view(resolution=MAX_RESOLUTION + 1), "view", f"between 2 and {MAX_RESOLUTION}", id="resolution-too-large"),
    case(view(resolution=1e30), "view", f"between 2 and {MAX_RESOLUTION}", id="resolution-huge"),
    # ---- numbers and nesting beyond what float64 and Python's parser hold
    case('{"base": {"type": "gaussian", "mean": [1' + "0" * 400 + ', 0]}, "layers": []}',
         "base (gaussian)", "mean[0] must be a finite number", "too large", id="integer-beyond-float64"),
    case('{"base": {"type": "gaussian", "mean": [1' + "0" * 5000 + ', 0]}, "layers": []}',
         "spec", "thousands of digits", id="integer-with-5000-digits"),
    case('{"base": ' + "[" * 100_000 + "]" * 100_000 + ', "layers": []}',
         "spec", "nested too deeply", id="nested-100000-deep"),
    case(view(xlim=[-1e308, 1e308]), "view", "wider than float64 can span", id="window-span-overflows"),
    case(view(xlim=[-1e200, 1e200], ylim=[-1e200, 1e200]), "view", "area overflows", id="window-area-overflows"),
    case(base(type="mixture", components=[{}, {}], weights=[1e-300, 1e300]),
         "base (mixture)", "orders of magnitude", id="weights-beyond-float64-ratio"),
    case(third_layer({**SPLINE, "widths": [1e308, 1e-320]}),
         "layers[2] (spline)", "widths differ by more orders of magnitude", id="spline-widths-beyond-float64-ratio"),
    case(third_layer({"type": "affine", "matrix": [[1e200, 0], [0, 1e200]]}),
         "layers[2] (affine)", "overflows float64", id="affine-det-overflows"),
]
# fmt: on


@pytest.mark.parametrize(("spec", "place", "fragments"), INVALID)
def test_invalid_spec_is_refused_with_place_and_reason(spec, place, fragments):
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    error = caught.value
    message = str(error)
    assert isinstance(error, ValueError)
    assert error.place == place
    assert message.startswith(f"{place}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


DICT_ROWS = [row for row in INVALID if isinstance(row.values[0], dict)]


@pytest.mark.parametrize(("spec", "place", "fragments"), DICT_ROWS[::6])
def test_evaluate_refuses_the_same_specs(spec, place, fragments):
    """The public entry point refuses with the same error."""
    with pytest.raises(SpecError) as caught:
        flowviz.evaluate(spec)
    assert str(caught.value).startswith(f"{place}: ")


def test_the_example_message_of_the_contract():
    spec = third_layer({"type": "planar", "w": [1, 0], "u": [-1.3, 0.2], "b": 0})
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert str(caught.value) == (
        "layers[2] (planar): w.u = -1.3, but it must be > -1 for the layer to be invertible"
    )


def test_just_inside_every_condition_is_accepted():
    layers = [
        {"type": "affine", "matrix": [[1, 2], [2, 4.001]]},
        {"type": "leaky_relu", "negative_slope": 1e-6},
        {"type": "sinh_arcsinh", "tailweight": 1e-6},
        {"type": "planar", "w": [1, 0], "u": [-0.999999, 5]},
        {"type": "radial", "alpha": 1e-6, "beta": -0.999e-6},
        {"type": "swirl", "strength": 100, "radius": 1e-6},
        L(SPLINE, widths=[1e-6, 1], heights=[1, 1e-6], derivatives=[1e-6]),
    ]
    canonical = parse_spec(
        spec_with(layers=layers, base={"type": "uniform", "low": [0, 0], "high": [1e-9, 1e-9]})
    )
    assert [layer["type"] for layer in canonical["layers"]] == [layer["type"] for layer in layers]


def test_missing_file_and_file_that_is_not_json(tmp_path):
    with pytest.raises(SpecError, match=r"no such file"):
        parse_spec(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("base: gaussian\n")
    with pytest.raises(SpecError, match=r"^spec: not valid JSON"):
        parse_spec(bad)
    with pytest.raises(SpecError, match=r"no such file"):
        flowviz.evaluate(str(tmp_path / "nope.json"))


# --------------------------------------------------------------------------- defaults


def test_defaults_are_filled_as_the_table_says():
    spec = {
        "base": {"type": "gaussian"},
        "layers": [
            {"type": "affine"},
            {"type": "leaky_relu"},
            {"type": "sinh_arcsinh"},
            {"type": "planar", "w": [1, 0], "u": [0, 1]},
            {"type": "radial", "beta": 0.5},
            {"type": "coupling"},
            {"type": "swirl", "strength": 2},
            {"type": "spline", "widths": [1], "heights": [1], "derivatives": []},
            {"type": "swap"},
        ],
    }
    canonical = parse_spec(spec)
    assert canonical["version"] == 1
    assert canonical["base"] == {"type": "gaussian", "mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}
    assert canonical["view"] == {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 200}
    affine, leaky, sinh_arcsinh, planar, radial, coupling, swirl, spline, swap = canonical["layers"]
    assert affine == {"type": "affine", "matrix": [[1.0, 0.0], [0.0, 1.0]], "shift": [0.0, 0.0]}
    assert leaky == {"type": "leaky_relu", "negative_slope": 0.1}
    assert sinh_arcsinh == {"type": "sinh_arcsinh", "skew": 0.0, "tailweight": 1.0}
    assert planar["b"] == 0.0
    assert radial == {"type": "radial", "center": [0.0, 0.0], "alpha": 1.0, "beta": 0.5}
    assert coupling == {"type": "coupling", "condition_on": 0, "shift": {}, "log_scale": {}}
    assert swirl == {"type": "swirl", "center": [0.0, 0.0], "strength": 2.0, "radius": 1.0}
    assert spline["dims"] == [0, 1] and spline["bound"] == 3.0
    assert swap == {"type": "swap"}


def test_view_defaults_per_field():
    canonical = parse_spec(spec_with(view={"resolution": 50}))
    assert canonical["view"] == {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 50}
    assert parse_spec(spec_with(view={"resolution": 64.0}))["view"]["resolution"] == 64


def test_mixture_defaults_and_normalisation():
    equal = parse_spec(base(type="mixture", components=[{"mean": [1, 0]}, {"type": "gaussian"}, {}]))["base"]
    assert equal["weights"] == [1 / 3] * 3
    assert equal["components"][1] == {"mean": [0.0, 0.0], "cov": [[1.0, 0.0], [0.0, 1.0]]}
    given = parse_spec(base(**MIXTURE, weights=[1, 3]))["base"]
    assert given["weights"] == [0.25, 0.75]


@pytest.mark.parametrize("weights", [[0.1, 0.1, 0.6], [1, 1, 1], [3, 1e-3, 7.77], [0.2, 0.3, 0.5]])
def test_normalised_weights_are_a_fixed_point(weights):
    """Parsing the canonical form again must not move the weights' last digits (the cache key)."""
    canonical = parse_spec(base(type="mixture", components=[{}, {}, {}], weights=weights))
    assert parse_spec(canonical) == canonical
    assert abs(sum(canonical["base"]["weights"]) - 1.0) <= 1e-15
    assert canonical["base"]["weights"] == pytest.approx([w / sum(weights) for w in weights], rel=1e-15)


def test_canonical_numbers_and_switch():
    canonical = parse_spec(
        third_layer({"type": "coupling", "condition_on": 1.0, "enabled": False, "shift": {"poly": [1, 2, 3]}})
    )
    layer = canonical["layers"][2]
    assert layer["condition_on"] == 1 and isinstance(layer["condition_on"], int)
    assert layer["enabled"] is False
    assert all(isinstance(v, float) for v in layer["shift"]["poly"])
    assert "enabled" not in parse_spec(third_layer({"type": "swap", "enabled": True}))["layers"][2]
    # The spline's dims come back sorted; its widths are kept as given (rescaled only when built).
    spline = parse_spec(third_layer(L(SPLINE, dims=[1, 0])))["layers"][2]
    assert spline["dims"] == [0, 1] and spline["widths"] == [1.0, 2.0]


def test_parse_is_idempotent_and_reads_every_form(tmp_path):
    spec = spec_with(
        base={
            "type": "mixture",
            "components": [{"mean": [1, 2]}, {"cov": [[2, 0.3], [0.3, 1]]}],
            "weights": [0.1, 0.7],
        },
        layers=[*LEAD, PLANAR, SPLINE, PIECEWISE, {"type": "coupling", "shift": {"poly": [-1, 0, 1]}}],
    )
    canonical = parse_spec(spec)
    assert parse_spec(canonical) == canonical
    assert parse_spec(json.dumps(spec)) == canonical
    assert parse_spec(json.dumps(spec).encode()) == canonical
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert parse_spec(path) == canonical


# --------------------------------------------------------------------------- URL tokens


# Canonical specs are ASCII JSON without '>', '?' or '~', so their tokens never use the
# characters 62 and 63 ('-' and '_' in the URL-safe alphabet). A layer type made of
# those characters puts both in the token; decoding then fails with a message that
# quotes the type exactly, which shows the bytes came back right.
ODD_TYPE = "??~~>>??~~>>"
ODD_JSON = json.dumps({"base": {"type": "gaussian"}, "layers": [{"type": ODD_TYPE}]})


def _odd_token() -> str:
    for pad in range(3):
        token = _b64((" " * pad + ODD_JSON).encode())
        if {"-", "_"} <= set(token):
            return token
    raise AssertionError("no token with both URL-safe characters")


def _assert_odd_type_decoded(token: str) -> None:
    with pytest.raises(SpecError) as caught:
        decode_token(token)
    assert str(caught.value).startswith(f'layers[0]: unknown layer type "{ODD_TYPE}"')


def test_token_round_trip_and_alphabet():
    spec = parse_spec(spec_with(base=MIXTURE, layers=[*LEAD, PLANAR, SPLINE], view={"resolution": 77}))
    token = encode_token(spec)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_token(token) == spec
    # Independent decoding: the token is plain URL-safe base64 of the spec's JSON.
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert parse_spec(json.loads(raw)) == spec
    # Padding is optional.
    assert decode_token(token + "=" * (-len(token) % 4)) == spec
    assert decode_token(f"  {token}\n") == spec


def test_token_uses_the_url_safe_alphabet_and_reads_the_standard_one():
    token = _odd_token()
    _assert_odd_type_decoded(token)
    _assert_odd_type_decoded(token + "=" * (-len(token) % 4))
    standard = token.replace("-", "+").replace("_", "/")
    _assert_odd_type_decoded(standard)
    _assert_odd_type_decoded(standard.replace("+", " "))  # a '+' that a query string turned into a space


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("a", "not URL-safe base64"),
        ("abcde", "not URL-safe base64"),
        ("!!!!", "not URL-safe base64"),
        ("eyJi.YXNl", "not URL-safe base64"),
        ("eyJi*YXNl", "not URL-safe base64"),
        ("ab=cd", "not URL-safe base64"),
        (_b64(b"\xff\xfe\xfd"), "UTF-8"),
        (_b64(b"hello"), "not valid JSON"),
        (_b64(b"[1, 2]"), "must be a JSON object"),
    ],
)
def test_bad_tokens_are_refused(token, fragment):
    with pytest.raises(SpecError, match=fragment):
        decode_token(token)


def test_a_junk_character_inside_a_valid_token_is_refused():
    token = encode_token(parse_spec(spec_with(layers=LEAD)))
    assert decode_token(token)["layers"][1]["degrees"] == 30.0
    with pytest.raises(SpecError, match="not URL-safe base64"):
        decode_token(token[:10] + "." + token[10:])


def test_token_of_an_invalid_spec_gives_the_spec_error():
    token = encode_token(third_layer({"type": "planar", "w": [1, 0], "u": [-1.3, 0]}))
    with pytest.raises(SpecError, match=r"^layers\[2\] \(planar\): w\.u = -1\.3"):
        decode_token(token)
