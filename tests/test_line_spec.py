"""The 1D spec: parse -> canonical -> URL token -> parse, and a one-line message for each bad field."""

from __future__ import annotations

import base64
import json

import pytest

from flowviz.errors import SpecError
from flowviz.line import BASE_KINDS, MAP_KINDS, build_line_base, build_line_map
from flowviz.line.spec import (
    DEFAULT_LINE_SPEC,
    canonical_line_json,
    line_base,
    line_map,
    line_spec,
    line_token,
    parse_line_spec,
    read_line_token,
)

EXAMPLE = {
    "base": {"kind": "mixture", "mean1": -1, "std1": 0.5, "mean2": 1.5, "std2": 0.3, "weight1": 0.25},
    "map": {"kind": "spline", "knots_z": [-1.5, 0, 1.5], "knots_x": [-2, -1, 1]},
    "interval": {"start": -0.5, "width": 0.2},
    "probe": 1,
    "samples": 1000,
}


def test_round_trip_through_the_token_is_the_canonical_spec():
    canonical = parse_line_spec(EXAMPLE)
    token = line_token(EXAMPLE)
    assert read_line_token(token) == canonical
    assert parse_line_spec(canonical) == canonical  # canonical is a fixed point
    # The token is URL-safe base64 of the canonical compact JSON: decoded here by hand.
    text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert json.loads(text) == canonical
    assert canonical_line_json(EXAMPLE) == json.dumps(canonical, separators=(",", ":"))
    assert canonical["probe"] == 1.0 and isinstance(canonical["probe"], float)
    assert canonical["base"]["mean1"] == -1.0 and canonical["map"]["knots_x"] == [-2.0, -1.0, 1.0]


def test_defaults_are_the_pages_opening_picture():
    assert parse_line_spec({}) == DEFAULT_LINE_SPEC
    assert DEFAULT_LINE_SPEC["interval"] == {"start": -1.7, "width": 0.5}
    assert line_base(DEFAULT_LINE_SPEC) == ("uniform", {"high": 2.0, "low": -2.0})
    assert line_map(DEFAULT_LINE_SPEC)[0] == "piecewise_linear"


def test_key_order_does_not_change_the_canonical_form():
    shuffled = {k: EXAMPLE[k] for k in reversed(list(EXAMPLE))}
    shuffled["base"] = {k: EXAMPLE["base"][k] for k in reversed(list(EXAMPLE["base"]))}
    assert canonical_line_json(shuffled) == canonical_line_json(EXAMPLE)
    assert line_token(shuffled) == line_token(EXAMPLE)


def test_line_spec_from_kinds_and_parameters_builds_the_same_base_and_map():
    spec = line_spec(("gaussian", {"mean": 0.5, "std": 2}), ("exp", {"steepness": 3}), 1.0, 0.5, 2.0, 100)
    assert spec["base"] == {"kind": "gaussian", "mean": 0.5, "std": 2.0}
    base, fmap = build_line_base(*line_base(spec)), build_line_map(*line_map(spec))
    assert base.distribution.stddev.item() == 2.0
    assert fmap.forward(base.distribution.mean).item() == pytest.approx(2.718281828459045**1.5, rel=1e-14)


@pytest.mark.parametrize("kind", list(BASE_KINDS))
def test_every_base_kind_round_trips(kind):
    # the page's own parameter names for each kind: taken from a base the builder accepts
    examples = {
        "uniform": {"low": 0, "high": 1},
        "gaussian": {"mean": 0, "std": 1},
        "mixture": EXAMPLE["base"],
    }
    spec = parse_line_spec({"base": {**examples[kind], "kind": kind}})
    assert read_line_token(line_token(spec)) == spec


@pytest.mark.parametrize("kind", list(MAP_KINDS))
def test_every_map_kind_round_trips(kind):
    examples = {
        "affine": {"slope": -2, "offset": 1},
        "piecewise_linear": {"knots": [0], "slopes": [1, 2]},
        "tanh": {"steepness": 2},
        "sigmoid": {"steepness": 2},
        "exp": {"steepness": 2},
        "sinh_arcsinh": {"skew": 0.5, "tailweight": 2},
        "spline": EXAMPLE["map"],
    }
    spec = parse_line_spec({"map": {**examples[kind], "kind": kind}})
    assert read_line_token(line_token(spec)) == spec


@pytest.mark.parametrize(
    ("change", "place", "reason"),
    [
        ({"base": {"kind": "cauchy"}}, "base.kind", "must be one of uniform, gaussian, mixture"),
        ({"base": {"kind": "uniform", "low": 1, "high": 0}}, "base", "must be below high"),
        ({"base": {"kind": "uniform", "low": 0}}, "base", "needs the parameter 'high'"),
        ({"base": {"kind": "uniform", "low": 0, "high": 1, "std": 1}}, "base.std", "is not a parameter"),
        ({"base": {"kind": "gaussian", "mean": "0", "std": 1}}, "base.mean", "must be a number"),
        ({"base": "uniform"}, "base", "must be an object"),
        ({"map": {"kind": "affine", "slope": 0, "offset": 0}}, "map", "no inverse"),
        (
            {"map": {"kind": "piecewise_linear", "knots": [1, 0], "slopes": [1, 1, 1]}},
            "map",
            "knots must increase",
        ),
        ({"map": {"kind": "spline", "knots_z": [0, 1], "knots_x": [0]}}, "map", "do not fit together"),
        ({"map": {"kind": "tanh", "steepness": True}}, "map.steepness", "must be a number"),
        ({"map": {"kind": "exp", "steepness": [1] * 100}}, "map.steepness", "must list 1 to 64 numbers"),
        ({"interval": {"start": 0}}, "interval", "'start' and 'width'"),
        ({"interval": {"start": 0, "width": 0}}, "interval.width", "must be > 0"),
        ({"interval": {"start": 1e400, "width": 1}}, "interval.start", "finite"),
        ({"probe": None}, "probe", "must be a number"),
        ({"samples": 500}, "samples", "must be one of 100, 1000, 10000, 100000"),
        ({"zoom": 2}, "1D spec", "unknown field 'zoom'"),
    ],
)
def test_each_bad_field_is_named_with_its_reason(change, place, reason):
    with pytest.raises(SpecError) as caught:
        parse_line_spec({**EXAMPLE, **change})
    assert caught.value.place == place
    assert reason in caught.value.reason
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "is empty"),
        ("not*base64", "URL-safe base64"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "UTF-8"),
        (base64.urlsafe_b64encode(b"[1, 2").decode(), "not valid JSON"),
        (base64.urlsafe_b64encode(b'{"probe": NaN}').decode(), "NaN"),
        (base64.urlsafe_b64encode(b"[]").decode(), "must be a JSON object"),
    ],
)
def test_bad_tokens_are_refused_in_one_line(token, reason):
    with pytest.raises(SpecError) as caught:
        read_line_token(token)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_a_flow_spec_token_is_not_a_1d_spec():
    from flowviz.presets import default_spec
    from flowviz.spec import encode_token

    with pytest.raises(SpecError, match="unknown field"):
        read_line_token(encode_token(default_spec()))
