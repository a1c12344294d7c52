"""The 1D page's picture as one small spec: its base, its map, the carried interval, the probe.

The same route as the Explorer's flow spec (:mod:`flowviz.spec`): :func:`parse_line_spec`
checks every field and returns the *canonical* spec, a plain dict in a fixed key order with
numbers as floats; its compact JSON (:func:`canonical_line_json`) keys every cached
computation, and its URL-safe base64 (:func:`line_token`) is the ``?spec=`` token of
``/1d``, so that a link reproduces a 1D screen::

    {"base": {"kind": "uniform", "low": -2.0, "high": 2.0},
     "map": {"kind": "affine", "slope": 0.5, "offset": 0.25},
     "interval": {"start": 0.3, "width": 0.25}, "probe": 0.65, "samples": 10000}

A missing field takes the page's opening value. The base and the map are checked by
building them (:func:`flowviz.line.build_line_base`, :func:`flowviz.line.build_line_map`):
their kinds and parameters are defined there alone. Anything wrong raises
:class:`flowviz.SpecError` naming the field and the reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from flowviz.errors import SpecError
from flowviz.line import (
    BASE_KINDS,
    DEFAULT_BASE,
    DEFAULT_INTERVAL,
    DEFAULT_MAP,
    DEFAULT_PROBE,
    MAP_KINDS,
    CarriedInterval,
    LineCurves,
    ProbeOnLine,
    build_line_base,
    build_line_map,
    carry_interval,
    line_curves,
    probe,
    sample_histogram,
)
from flowviz.memo import array_cache
from flowviz.spec import MAX_KNOTS, encode_token, token_text

FIELDS = ("base", "map", "interval", "probe", "samples")
SAMPLE_COUNTS = (100, 1_000, 10_000, 100_000)  # the histogram's sample counts the page offers
DEFAULT_SAMPLES = 10_000


def _describe(value: Any) -> str:
    """A short description of a JSON value for a message."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 20 else value[:17] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _number(value: Any, place: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(place, f"must be a number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(place, f"must be a finite number, got {_describe(value)}")
    return number


def _parameter(value: Any, place: str) -> float | list[float]:
    if isinstance(value, list):
        if not 0 < len(value) <= MAX_KNOTS:
            raise SpecError(place, f"must list 1 to {MAX_KNOTS} numbers, got {_describe(value)}")
        return [_number(v, f"{place}[{i}]") for i, v in enumerate(value)]
    return _number(value, place)


_MISFIT = (TypeError, ValueError, IndexError, RuntimeError)  # what a builder raises for ill-fitting lists


def _needs(build: Callable, kind: str, params: dict, name: str) -> bool:
    """Whether ``build`` reads parameter ``name`` of ``kind`` (it fails without it)."""
    try:
        build(kind, {k: v for k, v in params.items() if k != name})
    except (KeyError, SpecError, *_MISFIT):
        return True
    return False


def _part(value: Any, place: str, kinds: Mapping[str, str], build: Callable) -> dict:
    """A base or a map: ``{"kind": ..., parameter: number or list of numbers, ...}``, checked by
    building it; a parameter the kind does not read is refused (a typo would otherwise be lost)."""
    if not isinstance(value, Mapping):
        raise SpecError(place, f"must be an object with a 'kind' and its parameters, got {_describe(value)}")
    kind = value.get("kind")
    if kind not in kinds:
        raise SpecError(f"{place}.kind", f"must be one of {', '.join(kinds)}, got {_describe(kind)}")
    params = {name: _parameter(v, f"{place}.{name}") for name, v in value.items() if name != "kind"}
    try:
        build(kind, params)
    except KeyError as missing:
        raise SpecError(place, f"a {kind} {place} needs the parameter {missing.args[0]!r}") from None
    except SpecError as error:
        raise SpecError(place, error.reason) from None
    except _MISFIT:  # e.g. lists of different lengths
        raise SpecError(place, "its parameters do not fit together (lists of different lengths?)") from None
    for name in sorted(params):
        if not _needs(build, kind, params, name):
            raise SpecError(f"{place}.{name}", f"is not a parameter of a {kind} {place}")
    return {"kind": kind, **{name: params[name] for name in sorted(params)}}


def parse_line_spec(source: Any) -> dict:
    """Validate a 1D spec (a dict or JSON text) and return its canonical form, defaults filled.

    Raises :class:`SpecError` naming the field and the reason.
    """
    if isinstance(source, (str, bytes)):
        try:
            source = json.loads(source, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as error:
            reason = error.reason if isinstance(error, SpecError) else "not valid JSON"
            raise SpecError("1D spec", reason) from None
    if not isinstance(source, Mapping):
        raise SpecError("1D spec", f"must be a JSON object, got {_describe(source)}")
    unknown = [name for name in source if name not in FIELDS]
    if unknown:
        raise SpecError(
            "1D spec", f"unknown field {unknown[0]!r}; the fields are {', '.join(map(repr, FIELDS))}"
        )
    base_kind, base_params = DEFAULT_BASE
    map_kind, map_params = DEFAULT_MAP
    base = _part(source.get("base", {"kind": base_kind, **base_params}), "base", BASE_KINDS, build_line_base)
    fmap = _part(source.get("map", {"kind": map_kind, **map_params}), "map", MAP_KINDS, build_line_map)
    interval = source.get("interval", dict(zip(("start", "width"), DEFAULT_INTERVAL, strict=True)))
    if not isinstance(interval, Mapping) or set(interval) != {"start", "width"}:
        raise SpecError("interval", f"must be an object with 'start' and 'width', got {_describe(interval)}")
    start = _number(interval["start"], "interval.start")
    width = _number(interval["width"], "interval.width")
    if not width > 0:
        raise SpecError("interval.width", f"must be > 0, got {width:g}")
    probe_x = _number(source.get("probe", DEFAULT_PROBE), "probe")
    samples = source.get("samples", DEFAULT_SAMPLES)
    if isinstance(samples, bool) or samples not in SAMPLE_COUNTS:
        raise SpecError(
            "samples", f"must be one of {', '.join(map(str, SAMPLE_COUNTS))}, got {_describe(samples)}"
        )
    return {
        "base": base,
        "map": fmap,
        "interval": {"start": start, "width": width},
        "probe": probe_x,
        "samples": int(samples),
    }


def _refuse_constant(name: str) -> Any:
    raise SpecError("1D spec", f"{name} is not a number JSON allows")


def canonical_line_json(spec: Mapping) -> str:
    """Compact JSON of the canonical 1D spec: the key every cached 1D computation uses."""
    return json.dumps(parse_line_spec(spec), separators=(",", ":"))


def line_token(spec: Mapping) -> str:
    """The URL token of a 1D spec: the flow spec's token form, of the canonical 1D spec."""
    return encode_token(parse_line_spec(spec))


def read_line_token(token: str) -> dict:
    """The canonical 1D spec a URL token holds (padding optional); SpecError if it holds none."""
    return parse_line_spec(token_text(token))


def line_base(spec: Mapping) -> tuple[str, dict]:
    """The (kind, parameters) of a canonical spec's base, as :func:`build_line_base` takes them."""
    return _kind_and_params(spec["base"])


def line_map(spec: Mapping) -> tuple[str, dict]:
    """The (kind, parameters) of a canonical spec's map, as :func:`build_line_map` takes them."""
    return _kind_and_params(spec["map"])


def _kind_and_params(part: Mapping) -> tuple[str, dict]:
    return part["kind"], {k: v for k, v in part.items() if k != "kind"}


def line_spec(
    base: tuple[str, Mapping],
    fmap: tuple[str, Mapping],
    start: float,
    width: float,
    probe_x: float,
    samples: int,
) -> dict:
    """The canonical spec of a base and a map given as (kind, parameters), and the rest."""
    return parse_line_spec(
        {
            "base": {"kind": base[0], **base[1]},
            "map": {"kind": fmap[0], **fmap[1]},
            "interval": {"start": start, "width": width},
            "probe": probe_x,
            "samples": samples,
        }
    )


DEFAULT_LINE_SPEC = parse_line_spec({})


# --------------------------------------------------------------------------- cached computations
# What the 1D page computes, cached by the canonical spec (in this module, imported once, so the
# caches outlive a page's run and serve every visitor). The curves depend on the base and the map
# alone: they are keyed by :func:`shape_json`, and the rest by the interval, probe or sample count.


def shape_json(spec: Mapping) -> str:
    """The compact JSON of a canonical spec's base and map: the key of what they alone decide."""
    return json.dumps({"base": spec["base"], "map": spec["map"]}, separators=(",", ":"))


def _built(shape: str):
    spec = json.loads(shape)
    return build_line_base(*line_base(spec)), build_line_map(*line_map(spec))


# Budgets: one picture's curves hold about 20 kB, an interval 3 kB, a histogram 1 kB, a probe less;
# a drag passes a few hundred slider positions, so each cache holds the positions of a few drags.


@array_cache(max_bytes=16 * 2**20, max_entries=256)
def curves_of(shape: str) -> LineCurves:
    """:func:`flowviz.line.line_curves` of a :func:`shape_json` key."""
    return line_curves(*_built(shape))


@array_cache(max_bytes=8 * 2**20, max_entries=1024)
def interval_of(shape: str, start: float, width: float) -> CarriedInterval:
    """:func:`flowviz.line.carry_interval` of [start, start + width] under a :func:`shape_json` key."""
    return carry_interval(*_built(shape), start, width)


@array_cache(max_bytes=8 * 2**20, max_entries=1024)
def probe_of(shape: str, x: float) -> ProbeOnLine:
    """:func:`flowviz.line.probe` at x under a :func:`shape_json` key."""
    return probe(*_built(shape), x)


@array_cache(max_bytes=8 * 2**20, max_entries=256)
def histogram_of(shape: str, count: int, x_range: tuple[float, float]):
    """:func:`flowviz.line.sample_histogram` of ``count`` samples under a :func:`shape_json` key."""
    return sample_histogram(*_built(shape), count, x_range)
