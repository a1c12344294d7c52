"""The flow spec: one JSON document for a base, a stack of layers and a view.

This module is the contract of ``shared/design/flow-spec.md`` in code. A spec
goes in as a dict, JSON text, a file or a URL token; :func:`parse_spec` checks
every field and fills every default, and returns the *canonical* spec: a plain
dict with every field present, numbers as floats (integers where the field is an
index or a count), in a fixed key order. Its compact JSON is the cache key of
everything computed from it, and its URL-safe base64 is the URL token.

Anything wrong raises :class:`flowviz.SpecError` naming the place and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from flowviz.errors import SpecError
from flowviz.layers import LAYER_CLASSES
from flowviz.layers.elementwise import MAX_KNOTS  # noqa: F401 (a limit of the spec, named here with the rest)
from flowviz.layers.spline import MAX_SPLINE_BINS  # noqa: F401 (likewise)
from flowviz.spec_values import REQUIRED as _REQUIRED
from flowviz.spec_values import Parser
from flowviz.spec_values import boolean as _boolean
from flowviz.spec_values import describe as _describe
from flowviz.spec_values import fmt as _fmt
from flowviz.spec_values import fmt_exact as _fmt_exact
from flowviz.spec_values import integer as _integer
from flowviz.spec_values import matrix as _matrix
from flowviz.spec_values import numbers as _numbers
from flowviz.spec_values import point as _point

SPEC_VERSION = 1
DEFAULT_VIEW = {"xlim": [-4.0, 4.0], "ylim": [-4.0, 4.0], "resolution": 200}

# --------------------------------------------------------------------------- limits
# A spec is a link anyone may open, so every one is bounded: the largest valid
# spec is evaluated, its controls drawn and its pictures rendered within
# ANSWER_SECONDS on a quiet 2-core machine (measured by bench/worst_case.py).
# Each limit is far beyond what a flow made by hand needs; the work of a whole
# grid (its points times what the flow costs at each point) is bounded as well,
# since limits that are each harmless still multiply.
ANSWER_SECONDS = 2
MAX_RESOLUTION = 1024
MAX_LAYERS = 32
MAX_MIXTURE_COMPONENTS = 64
# What one grid point costs, in steps of about 0.1 µs (one simple layer applied
# one way, on one point): drawing the pictures, the base (twice: p_Z and p_Z(f⁻¹(x))), each
# layer (forward and inverse; each layer class states its own cost, ``point_cost``).
POINT_COST_PICTURES = 8.0
POINT_COST_BASE = {"gaussian": 1.0, "uniform": 1.0}
POINT_COST_PER_COMPONENT = 5.0
MAX_GRID_WORK = 12.0 * MAX_RESOLUTION**2  # the simplest flows reach MAX_RESOLUTION


# --------------------------------------------------------------------------- schema

# Each layer type declares its own fields (parser, default) and check in its class.
LAYER_FIELDS: dict[str, dict[str, tuple[Parser, Any]]] = {
    kind: cls.fields for kind, cls in LAYER_CLASSES.items()
}
LAYER_CHECKS: dict[str, Callable[[dict], str | None]] = {
    kind: cls.check for kind, cls in LAYER_CLASSES.items()
}
LAYER_TYPES: tuple[str, ...] = tuple(LAYER_CLASSES)

# Fields every layer may carry besides its own: "enabled": false switches it off.
_COMMON_LAYER_FIELDS = {"type", "enabled"}


# --------------------------------------------------------------------------- parsing


def _fields(obj: Mapping, schema: Mapping[str, tuple[Parser, Any]], place: str, allowed: set[str]) -> dict:
    """Parse the fields of one object against its schema; raise SpecError at ``place``."""
    unknown = [k for k in obj if k not in schema and k not in allowed]
    if unknown:
        known = ", ".join(repr(k) for k in schema) or "none"
        raise SpecError(place, f"unknown field {unknown[0]!r}; the fields are {known}")
    out: dict[str, Any] = {}
    for name, (parse, default) in schema.items():
        if name not in obj:
            if default is _REQUIRED:
                raise SpecError(place, f"missing required field {name!r}")
            out[name] = json.loads(json.dumps(default))  # a fresh copy
            continue
        try:
            out[name] = parse(obj[name], name)
        except ValueError as error:
            raise SpecError(place, str(error)) from None
    return out


def _parse_layer(obj: Any, index: int) -> dict:
    place = f"layers[{index}]"
    if not isinstance(obj, Mapping):
        raise SpecError(place, f"a layer must be an object with a 'type', got {_describe(obj)}")
    if "type" not in obj:
        raise SpecError(place, "missing required field 'type'")
    kind = obj["type"]
    if not isinstance(kind, str) or kind not in LAYER_FIELDS:  # a list or object is not even hashable
        raise SpecError(
            place, f"unknown layer type {_describe(kind)}; the types are {', '.join(LAYER_TYPES)}"
        )
    place = f"layers[{index}] ({kind})"
    params = _fields(obj, LAYER_FIELDS[kind], place, _COMMON_LAYER_FIELDS)
    problem = LAYER_CLASSES[kind].check(params)
    if problem:
        raise SpecError(place, problem)
    layer = {"type": kind, **params}
    if "enabled" in obj:
        try:
            enabled = _boolean(obj["enabled"], "enabled")
        except ValueError as error:
            raise SpecError(place, str(error)) from None
        if not enabled:
            layer["enabled"] = False
    return layer


def _parse_gaussian(obj: Mapping, place: str, allowed: set[str]) -> dict:
    out = _fields(
        obj, {"mean": (_point, [0.0, 0.0]), "cov": (_matrix, [[1.0, 0.0], [0.0, 1.0]])}, place, allowed
    )
    (a, b), (c, d) = out["cov"]
    if abs(b - c) > 1e-9 * max(abs(b), abs(c), abs(a), abs(d)):
        raise SpecError(place, f"cov must be symmetric, but cov[0][1] = {_fmt(b)} and cov[1][0] = {_fmt(c)}")
    det = a * d - b * c
    if a > 0 and (det == 0 or math.isnan(det)):  # float64 cannot hold the products: decide exactly
        exact = Fraction(a) * Fraction(d) - Fraction(b) * Fraction(c)
        if exact > 0:
            raise SpecError(
                place,
                f"cov's determinant is {_fmt_exact(exact)}, positive but beyond float64's range: "
                "rescale the covariance (a scale layer can stretch or squeeze the result)",
            )
        det = float(exact) if exact == 0 else det
    if not (a > 0 and det > 0):
        raise SpecError(
            place,
            f"cov must be positive definite (cov[0][0] > 0 and det > 0), got cov[0][0] = {_fmt(a)}, "
            f"det = {_fmt(det)}",
        )
    out["cov"] = [[a, (b + c) / 2], [(b + c) / 2, d]]
    return out


def _parse_base(obj: Any) -> dict:
    place = "base"
    if not isinstance(obj, Mapping):
        raise SpecError(place, f"must be an object with a 'type', got {_describe(obj)}")
    kind = obj.get("type", _REQUIRED)
    if kind is _REQUIRED:
        raise SpecError(place, "missing required field 'type' (gaussian, uniform or mixture)")
    place = f"base ({kind})" if isinstance(kind, str) else place
    if kind == "gaussian":
        return {"type": "gaussian", **_parse_gaussian(obj, place, {"type"})}
    if kind == "uniform":
        out = _fields(obj, {"low": (_point, _REQUIRED), "high": (_point, _REQUIRED)}, place, {"type"})
        for i, axis in enumerate("xy"):
            if not out["low"][i] < out["high"][i]:
                raise SpecError(
                    place,
                    f"low[{i}] = {_fmt(out['low'][i])} must be < high[{i}] = {_fmt(out['high'][i])} "
                    f"(the box needs a positive width in {axis})",
                )
        return {"type": "uniform", **out}
    if kind == "mixture":
        return _parse_mixture(obj, place)
    raise SpecError("base", f"unknown base type {_describe(kind)}; the types are gaussian, uniform, mixture")


def _parse_mixture(obj: Mapping, place: str) -> dict:
    unknown = [k for k in obj if k not in ("type", "components", "weights")]
    if unknown:
        raise SpecError(place, f"unknown field {unknown[0]!r}; the fields are 'components', 'weights'")
    if "components" not in obj:
        raise SpecError(place, "missing required field 'components'")
    comps = obj["components"]
    if not isinstance(comps, list) or not comps:
        raise SpecError(place, f"components must be a non-empty list of gaussians, got {_describe(comps)}")
    if len(comps) > MAX_MIXTURE_COMPONENTS:
        raise SpecError(
            place,
            f"components lists {len(comps)} gaussians, but a mixture has at most {MAX_MIXTURE_COMPONENTS}: "
            "each is a set of controls and a density evaluated at every grid point",
        )
    components = []
    for i, comp in enumerate(comps):
        where = f"base.components[{i}]"
        if not isinstance(comp, Mapping):
            raise SpecError(where, f"must be an object with 'mean' and 'cov', got {_describe(comp)}")
        if comp.get("type", "gaussian") != "gaussian":
            raise SpecError(where, f"type must be 'gaussian', got {_describe(comp.get('type'))}")
        components.append(_parse_gaussian(comp, where, {"type"}))
    if "weights" in obj:
        try:
            weights = _numbers(obj["weights"], "weights", len(components), " (one per component)")
        except ValueError as error:
            raise SpecError(place, str(error)) from None
        for i, w in enumerate(weights):
            if w <= 0:
                raise SpecError(place, f"weights[{i}] = {_fmt(w)}, but every weight must be > 0")
        total = sum(weights)
        # Weights already normalised to rounding are kept as they are, so that
        # parsing a canonical spec gives it back bit for bit (dividing again by a
        # sum of 1 +- an ulp would move the last digits on every pass).
        if abs(total - 1.0) > 1e-12:
            largest = max(weights)  # first by the largest: the sum of huge weights overflows
            scaled = [w / largest for w in weights]
            weights = [w / sum(scaled) for w in scaled]
            if min(weights) == 0.0:
                raise SpecError(place, "the weights differ by more orders of magnitude than float64 can hold")
    else:
        weights = [1.0 / len(components)] * len(components)
    return {"type": "mixture", "components": components, "weights": weights}


def _parse_view(obj: Any) -> dict:
    if obj is None:
        return json.loads(json.dumps(DEFAULT_VIEW))
    if not isinstance(obj, Mapping):
        raise SpecError("view", f"must be an object, got {_describe(obj)}")
    out = _fields(
        obj,
        {
            "xlim": (_numbers, DEFAULT_VIEW["xlim"]),
            "ylim": (_numbers, DEFAULT_VIEW["ylim"]),
            "resolution": (_integer, DEFAULT_VIEW["resolution"]),
        },
        "view",
        set(),
    )
    for name in ("xlim", "ylim"):
        lim = out[name]
        if len(lim) != 2:
            raise SpecError("view", f"{name} must be a list of 2 numbers [low, high], got {len(lim)}")
        if not lim[0] < lim[1]:
            raise SpecError("view", f"{name} = [{_fmt(lim[0])}, {_fmt(lim[1])}], but it needs low < high")
        if not math.isfinite(lim[1] - lim[0]):
            raise SpecError(
                "view", f"{name} = [{_fmt(lim[0])}, {_fmt(lim[1])}] is wider than float64 can span"
            )
    width, height = out["xlim"][1] - out["xlim"][0], out["ylim"][1] - out["ylim"][0]
    if not math.isfinite(width * height):
        raise SpecError("view", "the window's area overflows float64: make it smaller")
    res = out["resolution"]
    if not 2 <= res <= MAX_RESOLUTION:
        raise SpecError(
            "view",
            f"resolution = {res}, but it must be between 2 and {MAX_RESOLUTION}: "
            f"{MAX_RESOLUTION}² points already give every picture more detail than a screen shows",
        )
    return out


def parse_spec(source: Any) -> dict:
    """Validate a spec and return its canonical form (every default filled).

    ``source``: a dict, JSON text, or a :class:`pathlib.Path` to a JSON file.
    Raises :class:`SpecError` naming the place and the reason.
    """
    if isinstance(source, Path):
        source = read_spec_file(source)
    if isinstance(source, (str, bytes)):
        source = _loads(source)
    if not isinstance(source, Mapping):
        raise SpecError("spec", f"must be a JSON object, got {_describe(source)}")
    unknown = [k for k in source if k not in ("version", "base", "layers", "view")]
    if unknown:
        raise SpecError(
            "spec", f"unknown field {unknown[0]!r}; the fields are 'version', 'base', 'layers', 'view'"
        )
    if "version" in source:
        version = source["version"]
        if isinstance(version, bool) or version != SPEC_VERSION:
            raise SpecError("version", f"must be {SPEC_VERSION}, got {_describe(version)}")
    if "base" not in source:
        raise SpecError("spec", "missing required field 'base'")
    if "layers" not in source:
        raise SpecError("spec", "missing required field 'layers' (use [] for no layers)")
    base = _parse_base(source["base"])
    layers_in = source["layers"]
    if not isinstance(layers_in, list):
        raise SpecError("layers", f"must be a list of layers, got {_describe(layers_in)}")
    if len(layers_in) > MAX_LAYERS:
        raise SpecError(
            "layers",
            f"lists {len(layers_in)} layers, but a flow has at most {MAX_LAYERS}: "
            "every grid point goes through each of them, and each has its own controls and picture",
        )
    layers = [_parse_layer(layer, i) for i, layer in enumerate(layers_in)]
    view = _parse_view(source.get("view"))
    spec = {"version": SPEC_VERSION, "base": base, "layers": layers, "view": view}
    _check_grid_work(spec)
    return spec


def base_cost(base: Mapping) -> float:
    """What the (canonical) base costs at one point, in simple-layer steps (see POINT_COST_*)."""
    if base["type"] == "mixture":
        return POINT_COST_PER_COMPONENT * len(base["components"])
    return POINT_COST_BASE[base["type"]]


def layer_cost(layer: Mapping) -> float:
    """What one (canonical) layer costs at one point, in simple-layer steps."""
    return LAYER_CLASSES[layer["type"]].point_cost(layer)


def point_cost(spec: Mapping) -> float:
    """What one grid point of this (canonical) flow costs to evaluate and draw, in simple-layer steps.

    A rough model, measured by bench/worst_case.py: it bounds the work of a grid
    before any of it is done. Switched-off layers count too, so that switching
    one back on never needs a coarser grid.
    """
    return POINT_COST_PICTURES + base_cost(spec["base"]) + sum(layer_cost(layer) for layer in spec["layers"])


def max_resolution(spec: Mapping) -> int:
    """The finest grid this flow may ask for: MAX_RESOLUTION, or less where each point costs more."""
    return max(2, min(MAX_RESOLUTION, math.isqrt(int(MAX_GRID_WORK / point_cost(spec)))))


def _check_grid_work(spec: dict) -> None:
    res, limit = spec["view"]["resolution"], max_resolution(spec)
    if res > limit:
        layers = len(spec["layers"])
        raise SpecError(
            "view",
            f"resolution = {res}, but this flow allows at most {limit}: its base and {layers} "
            f"layer{'s' if layers != 1 else ''} cost as much as {point_cost(spec):.0f} simple steps "
            f"at every grid point, and the whole grid must be answered within {ANSWER_SECONDS} s",
        )


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise SpecError(
            "spec", f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except UnicodeDecodeError:
        raise SpecError("spec", "not valid JSON: the text is not UTF-8") from None
    except SpecError:  # NaN or Infinity, refused by _reject_constant
        raise
    except ValueError:  # Python's limit on the digits of an integer
        raise SpecError("spec", "not valid JSON for a flow: a number has thousands of digits") from None
    except RecursionError:
        raise SpecError("spec", "not valid JSON for a flow: lists or objects nested too deeply") from None


def _reject_constant(name: str) -> Any:
    raise SpecError("spec", f"not valid JSON: {name} is not a number JSON allows; use a finite number")


def read_spec_file(path: str | Path) -> Any:
    """Read a JSON file (not yet validated); a missing or unreadable file is a SpecError."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(str(path), "no such file") from None
    except OSError as error:
        raise SpecError(str(path), f"cannot be read ({error.strerror or error})") from None
    return _loads(text)


# --------------------------------------------------------------------------- forms


def canonical_json(spec: Mapping) -> str:
    """Compact JSON of the canonical spec: the key every cache uses."""
    return json.dumps(parse_spec(spec), separators=(",", ":"))


def spec_to_json(spec: Mapping, indent: int | None = 2) -> str:
    """Readable JSON of a spec, for the editor and the download button."""
    return json.dumps(spec, indent=indent)


def encode_token(spec: Mapping) -> str:
    """The URL token: compact UTF-8 JSON, URL-safe base64, no padding."""
    compact = json.dumps(spec, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(compact.encode("utf-8")).decode("ascii").rstrip("=")


_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def token_text(token: str) -> str:
    """The text a URL token holds (URL-safe base64 of UTF-8, padding optional); SpecError if none.
    Every spec's token is read by this, the flow spec's and the 1D page's."""
    cleaned = token.strip().replace(" ", "+")  # a '+' that a query string turned into a space
    cleaned = cleaned.replace("+", "-").replace("/", "_").rstrip("=")
    if not cleaned:
        raise SpecError("spec token", "is empty")
    if not _TOKEN_ALPHABET.fullmatch(cleaned):
        # b64decode would silently drop such characters and decode the rest.
        raise SpecError("spec token", "is not URL-safe base64 (letters, digits, '-' and '_' only)")
    try:
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise SpecError("spec token", "is not URL-safe base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("spec token", "does not decode to UTF-8 text") from None
    return text


def decode_token(token: str) -> dict:
    """Parse a URL token back into a canonical spec (padding optional)."""
    return parse_spec(token_text(token))
