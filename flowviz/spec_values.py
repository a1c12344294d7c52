"""The values of a flow spec: how each kind of field is read, and how numbers are shown in messages.

Shared by the spec's own parser (:mod:`flowviz.spec`) and every layer class,
which declares its fields with these parsers (see ``Bijector.fields``). Each
parser takes the JSON value and the field's name and returns the canonical value,
or raises ValueError with a one-line message naming the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

# A field's parser: (JSON value, field name) -> canonical value, or ValueError.
Parser = Callable[[Any, str], Any]
# The default of a field that has none: the spec must give it.
REQUIRED = object()


def describe(value: Any) -> str:
    """A short, human description of a JSON value for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**17 else "an integer too large for a float64 number"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        text = value if len(value) <= 20 else value[:17] + "..."
        return json.dumps(text)
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def fmt(x: float) -> str:
    """Format a number as people write it: 30, -1.3, 0.0001."""
    return f"{x:.6g}"


def number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {describe(value)}")
    try:
        result = float(value)  # an integer beyond float64 overflows here
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {describe(value)}")
    return result


def numbers(value: Any, name: str, length: int | None = None, hint: str = "") -> list[float]:
    want = f"a list of {length} numbers{hint}" if length else "a list of numbers"
    if not isinstance(value, list):
        raise ValueError(f"{name} must be {want}, got {describe(value)}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} must be {want}, got {describe(value)}")
    return [number(v, f"{name}[{i}]") for i, v in enumerate(value)]


def point(value: Any, name: str) -> list[float]:
    return numbers(value, name, 2, " [x, y]")


def matrix(value: Any, name: str) -> list[list[float]]:
    want = "a 2x2 matrix written as a list of 2 rows of 2 numbers"
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{name} must be {want}, got {describe(value)}")
    return [numbers(row, f"{name}[{i}]", 2) for i, row in enumerate(value)]


def integer(value: Any, name: str) -> int:
    whole = number(value, name)
    if not whole.is_integer():
        raise ValueError(f"{name} must be a whole number, got {describe(value)}")
    return int(whole)


def condition_index(value: Any, name: str) -> int:
    index = integer(value, name)
    if index not in (0, 1):
        raise ValueError(f"{name} must be 0 or 1 (the coordinate that passes through), got {index}")
    return index


def dims(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"{name} must be a non-empty list of coordinates (0 and/or 1), got {describe(value)}"
        )
    dims = [integer(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if any(d not in (0, 1) for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"{name} must list distinct coordinates 0 and/or 1, got {dims}")
    return sorted(dims)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {describe(value)}")
    return value


def scalar_function(value: Any, name: str) -> dict[str, list[float]]:
    """g(t) = amplitude sin(frequency t + phase) + c0 + c1 t + c2 t^2, both parts optional."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f'{name} must be an object like {{"sin": [amplitude, frequency, phase], "poly": [c0, c1, c2]}}, '
            f"got {describe(value)}"
        )
    unknown = sorted(set(value) - {"sin", "poly"})
    if unknown:
        raise ValueError(f"{name} has unknown key {unknown[0]!r}; the keys are 'sin' and 'poly'")
    out: dict[str, list[float]] = {}
    if "sin" in value:
        out["sin"] = numbers(value["sin"], f"{name}.sin", 3, " [amplitude, frequency, phase]")
    if "poly" in value:
        out["poly"] = numbers(value["poly"], f"{name}.poly", 3, " [c0, c1, c2]")
    return out


def fmt_exact(value: Fraction) -> str:
    """An exact number as _fmt would write it, beyond float64's range too (-1e+600)."""
    mantissa, e, exponent = f"{Decimal(value.numerator) / Decimal(value.denominator):.6g}".partition("e")
    return (mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa) + e + exponent
