"""Two-dimensional data sets to train a flow on: toy shapes, drawings and CSV files.

Everything here returns a float64 NumPy array of shape (N, 2), one point per row,
in the data's own coordinates; nothing is rescaled behind the user's back (the
trained flow standardises inside itself, see :mod:`flowviz.train`).

- Toy sets (:data:`TOY_SETS`): two moons, circles, 8 Gaussians, checkerboard,
  spiral, pinwheel, each with a size ``n``, a ``noise`` level and a ``seed``.
- Drawings: the objects of a drawing canvas (Fabric.js JSON as the canvas
  returns it) become points. A click in point mode is one point; a free-hand
  stroke becomes points spread evenly along its arc length, plus Gaussian
  jitter. :class:`CanvasWindow` maps canvas pixels to data coordinates.
- CSV: two numeric columns, an optional header line. Anything else is refused
  with a :class:`~flowviz.errors.SpecError` that names the line and the problem.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flowviz.errors import SpecError

MIN_POINTS = 2
# The most a CSV file may hold (as Streamlit's uploads): a path to a device such as /dev/zero
# must not be read until memory runs out.
MAX_CSV_BYTES = 200 * 2**20

# --------------------------------------------------------------------------- checks


def check_points(points: np.ndarray, place: str = "data") -> np.ndarray:
    """The points as a float64 (N, 2) array, or a SpecError saying why they cannot be used.

    A density needs finite numbers, at least two points, and spread in both
    coordinates (with zero variance in x, say, the points lie on a line and have
    no density in the plane).
    """
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise SpecError(
            place, f"expected points with two coordinates (x, y), got an array of shape {array.shape}"
        )
    if len(array) < MIN_POINTS:
        count = "no points" if len(array) == 0 else "only 1 point"
        raise SpecError(place, f"{count}, but at least {MIN_POINTS} are needed to fit a density")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise SpecError(
            place, f"point {row + 1} is {array[row].tolist()}: every coordinate must be a finite number"
        )
    for column, name in enumerate("xy"):
        values = array[:, column]
        with np.errstate(all="ignore"):
            spread, std = np.ptp(values), values.std()
        if spread == 0.0:
            raise SpecError(
                place,
                f"no spread in {name}: every point has {name} = {values[0]:g}; "
                "the points must vary in both coordinates to have a density in the plane",
            )
        if math.isfinite(spread) and not (math.isfinite(std) and std > 0.0):  # (x - mean)^2 underflows
            raise SpecError(
                place,
                f"the {name} values vary by only {spread:.3g}, too little to compute with in float64 "
                "(their variance underflows to 0); rescale the data, e.g. multiply by a power of 10",
            )
        if not (math.isfinite(spread) and math.isfinite(std) and std > 0.0):
            raise SpecError(
                place,
                f"the {name} values are too large to compute with (largest |{name}| = "
                f"{np.abs(values).max():.3g}); rescale the data, e.g. divide by a power of 10",
            )
    return array


# --------------------------------------------------------------------------- toy sets


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def two_moons(n: int = 1000, noise: float = 0.1, seed: int | None = 0) -> np.ndarray:
    """Two interleaved half circles of radius 1 (the classic "moons"), centred and scaled by 1.5."""
    rng = _rng(seed)
    upper = rng.random(n) < 0.5
    t = rng.uniform(0.0, math.pi, n)
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    points = 1.5 * (np.stack([x - 0.5, y - 0.25], -1))
    return points + noise * rng.standard_normal((n, 2))


def circles(n: int = 1000, noise: float = 0.08, seed: int | None = 0) -> np.ndarray:
    """Two concentric rings of radius 1.25 and 2.5, with as many points per unit length on each."""
    rng = _rng(seed)
    radius = np.where(rng.random(n) < 1.0 / 3.0, 1.25, 2.5)
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    return points + noise * rng.standard_normal((n, 2))


def eight_gaussians(n: int = 1000, noise: float = 0.15, seed: int | None = 0) -> np.ndarray:
    """An equal mixture of 8 Gaussians N(m_k, noise^2 I), m_k on a circle of radius 2.5."""
    rng = _rng(seed)
    k = rng.integers(0, 8, n)
    angle = 2.0 * math.pi * k / 8.0
    means = 2.5 * np.stack([np.cos(angle), np.sin(angle)], -1)
    return means + noise * rng.standard_normal((n, 2))


def checkerboard(n: int = 1000, noise: float = 0.0, seed: int | None = 0) -> np.ndarray:
    """Uniform on the 8 dark squares of a 4 x 4 board covering [-3, 3]^2, plus Gaussian noise."""
    rng = _rng(seed)
    cells = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=np.float64)
    chosen = cells[rng.integers(0, len(cells), n)]
    points = (chosen + rng.random((n, 2))) * 1.5 - 3.0
    return points + noise * rng.standard_normal((n, 2))


def spiral_curve(t: np.ndarray) -> np.ndarray:
    """The spiral c(t), t in [0, 1]: angle 1 + 3 pi t, radius growing from 0.5 to 3."""
    angle = 1.0 + 3.0 * math.pi * t
    radius = 0.5 + 2.5 * t
    return radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)


def spiral(n: int = 1000, noise: float = 0.1, seed: int | None = 0) -> np.ndarray:
    """c(t) + N(0, noise^2 I) with t ~ U(0, 1): a spiral arm made fuzzy."""
    rng = _rng(seed)
    return spiral_curve(rng.random(n)) + noise * rng.standard_normal((n, 2))


def pinwheel(n: int = 1000, noise: float = 0.3, seed: int | None = 0) -> np.ndarray:
    """Five blades, each a Gaussian stretched along its axis and bent by a rotation that grows with radius.

    After Johnson et al. (2016), "Composing graphical models with neural networks":
    a blade is (r, 0) with r ~ 1 + N(0, noise^2), tangential N(0, 0.05^2), rotated by
    angle_k + 0.25 e^r.
    """
    rng = _rng(seed)
    blades = 5
    k = rng.integers(0, blades, n)
    radial = 1.0 + noise * rng.standard_normal(n)
    tangential = 0.05 * rng.standard_normal(n)
    angle = 2.0 * math.pi * k / blades + 0.25 * np.exp(radial)
    c, s = np.cos(angle), np.sin(angle)
    points = np.stack([c * radial - s * tangential, s * radial + c * tangential], -1)
    return 1.5 * points


@dataclass(frozen=True)
class ToySet:
    """A named generator with its default noise and the noise slider's range."""

    title: str
    make: Callable[..., np.ndarray]
    noise: float
    max_noise: float


TOY_SETS: dict[str, ToySet] = {
    "two_moons": ToySet("Two moons", two_moons, 0.1, 0.5),
    "circles": ToySet("Circles", circles, 0.08, 0.5),
    "eight_gaussians": ToySet("8 Gaussians", eight_gaussians, 0.15, 0.6),
    "checkerboard": ToySet("Checkerboard", checkerboard, 0.0, 0.3),
    "spiral": ToySet("Spiral", spiral, 0.1, 0.5),
    "pinwheel": ToySet("Pinwheel", pinwheel, 0.3, 0.6),
}


def toy_set(name: str, n: int = 1000, noise: float | None = None, seed: int | None = 0) -> np.ndarray:
    """Draw ``n`` points from the toy set ``name`` (see :data:`TOY_SETS`)."""
    if name not in TOY_SETS:
        raise SpecError("data set", f"unknown toy set {name!r}; known: {', '.join(TOY_SETS)}")
    if n < MIN_POINTS:
        raise SpecError("size", f"{n} points, but at least {MIN_POINTS} are needed")
    spec = TOY_SETS[name]
    return spec.make(n, spec.noise if noise is None else float(noise), seed)


# --------------------------------------------------------------------------- drawings


@dataclass(frozen=True)
class CanvasWindow:
    """A canvas of ``width`` x ``height`` pixels showing [xlim] x [ylim] of the data plane.

    Pixel (0, 0) is the top-left corner; y grows downwards on the canvas and
    upwards in the data, so the map flips it.
    """

    width: int = 480
    height: int = 480
    xlim: tuple[float, float] = (-4.0, 4.0)
    ylim: tuple[float, float] = (-4.0, 4.0)

    def to_data(self, pixels: np.ndarray) -> np.ndarray:
        """Canvas pixels (N, 2) -> data coordinates (N, 2)."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        x = x0 + pixels[:, 0] / self.width * (x1 - x0)
        y = y1 - pixels[:, 1] / self.height * (y1 - y0)
        return np.stack([x, y], -1)

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Data coordinates (N, 2) -> canvas pixels (N, 2): the inverse of :meth:`to_data`."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        px = (points[:, 0] - x0) / (x1 - x0) * self.width
        py = (y1 - points[:, 1]) / (y1 - y0) * self.height
        return np.stack([px, py], -1)

    def pixels_per_unit(self) -> float:
        return self.width / (self.xlim[1] - self.xlim[0])


_ORIGIN = {"left": 0.5, "center": 0.0, "right": -0.5, "top": 0.5, "bottom": -0.5}


def _object_centre(obj: Mapping) -> np.ndarray:
    """The centre of a Fabric.js object's box (stroke included) in canvas pixels."""
    stroke = float(obj.get("strokeWidth", 0.0) or 0.0)
    width = (float(obj.get("width", 0.0)) + stroke) * float(obj.get("scaleX", 1.0))
    height = (float(obj.get("height", 0.0)) + stroke) * float(obj.get("scaleY", 1.0))
    left = float(obj.get("left", 0.0)) + _ORIGIN.get(obj.get("originX", "left"), 0.5) * width
    top = float(obj.get("top", 0.0)) + _ORIGIN.get(obj.get("originY", "top"), 0.5) * height
    return np.array([left, top])


def _quadratic(p0: np.ndarray, control: np.ndarray, p1: np.ndarray, pieces: int = 8) -> np.ndarray:
    """Points along the quadratic Bezier curve p0 -> p1 (p0 itself left out)."""
    t = np.linspace(0.0, 1.0, pieces + 1)[1:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t**2 * p1


def _cubic(p0, c0, c1, p1, pieces: int = 8) -> np.ndarray:
    t = np.linspace(0.0, 1.0, pieces + 1)[1:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c0 + 3 * (1 - t) * t**2 * c1 + t**3 * p1


def path_polyline(commands: Sequence[Sequence]) -> np.ndarray:
    """The SVG path commands of a free-hand stroke (M, L, Q, C; absolute) as a dense polyline."""
    points: list[np.ndarray] = []
    current = np.zeros(2)
    for command in commands:
        op, values = str(command[0]), np.asarray(command[1:], dtype=np.float64)
        if op in ("M", "L"):
            current = values[-2:]
            points.append(current[None])
        elif op == "Q" and len(values) == 4:
            points.append(_quadratic(current, values[:2], values[2:]))
            current = values[2:]
        elif op == "C" and len(values) == 6:
            points.append(_cubic(current, values[:2], values[2:4], values[4:]))
            current = values[4:]
    return np.concatenate(points) if points else np.zeros((0, 2))


def even_along(polyline: np.ndarray, spacing: float) -> np.ndarray:
    """Points spread evenly along a polyline's arc length, one every ``spacing`` (same units).

    The arc length s is accumulated segment by segment; the points sit at
    s = (i + 1/2) L / m, i = 0..m-1, with m = max(1, round(L / spacing)), so a
    stroke twice as long gets twice as many points, and the ends are not doubled.
    """
    if len(polyline) == 0:
        return np.zeros((0, 2))
    steps = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    length = arc[-1]
    if length <= 0.0:
        return polyline[:1].copy()
    count = max(1, round(length / spacing))
    targets = (np.arange(count) + 0.5) * length / count
    return np.stack([np.interp(targets, arc, polyline[:, 0]), np.interp(targets, arc, polyline[:, 1])], -1)


def drawing_to_points(
    drawing: Mapping | None,
    window: CanvasWindow = CanvasWindow(),
    spacing: float = 0.1,
    jitter: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """The points of a canvas drawing, in data coordinates.

    ``drawing`` is the canvas's Fabric.js JSON (``{"objects": [...]}``). A circle
    (a click in point mode) is the one point at its centre, as clicked. A path
    (a free-hand stroke) gives points every ``spacing`` data units along its arc
    length, each moved by N(0, jitter^2 I). The jitter of stroke k is drawn from
    its own seeded stream, so adding a stroke never moves the points of earlier ones.
    """
    if not drawing:
        return np.zeros((0, 2))
    chunks: list[np.ndarray] = []
    for index, obj in enumerate(drawing.get("objects", []) or []):
        kind = str(obj.get("type", "")).lower()
        if kind == "circle":
            chunks.append(window.to_data(_object_centre(obj)))
        elif kind == "path":
            polyline = path_polyline(obj.get("path", []))
            if len(polyline) == 0:
                continue
            # Place the path where the object is now (it may have been moved or scaled).
            scale = np.array([float(obj.get("scaleX", 1.0)), float(obj.get("scaleY", 1.0))])
            own_centre = (polyline.min(0) + polyline.max(0)) / 2.0
            polyline = _object_centre(obj) + (polyline - own_centre) * scale
            along = window.to_data(even_along(polyline, spacing * window.pixels_per_unit()))
            rng = np.random.default_rng([seed, index])
            chunks.append(along + jitter * rng.standard_normal(along.shape))
    return np.concatenate(chunks) if chunks else np.zeros((0, 2))


def points_to_drawing(
    points: np.ndarray, window: CanvasWindow = CanvasWindow(), radius: float = 3.0, colour: str = "#d62728"
) -> dict:
    """A canvas drawing with one point-mode circle per point: to show or restore points on the canvas."""
    objects = []
    for px, py in window.to_pixels(points):
        objects.append(
            {
                "type": "Circle",
                "left": float(px - radius - 0.5),
                "top": float(py),
                "originX": "left",
                "originY": "center",
                "radius": radius,
                "width": 2 * radius,
                "height": 2 * radius,
                "strokeWidth": 1,
                "stroke": colour,
                "fill": colour,
                "scaleX": 1,
                "scaleY": 1,
            }
        )
    return {"version": "6.0.0", "objects": objects}


def drop_last_object(drawing: Mapping | None) -> dict:
    """The drawing without its last object (a click or a stroke): the page's "undo"."""
    objects = list((drawing or {}).get("objects", []) or [])
    return {**(drawing or {}), "objects": objects[:-1]}


# --------------------------------------------------------------------------- CSV


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


def _parse_number(field: str, decimal_comma: bool = False) -> float | None:
    """The field's number; with ``decimal_comma`` (columns not separated by commas) 1,5 reads as 1.5."""
    if decimal_comma and _DECIMAL_COMMA.fullmatch(field):
        field = field.replace(",", ".")
    try:
        return float(field)
    except ValueError:
        return None


def _split(line: str) -> tuple[list[str], str]:
    """Fields of one line and their separator: semicolon, tab, comma or blanks (" ").

    Semicolons and tabs come first: where they separate the columns, a comma is a
    decimal mark (1,5;2,5 is the point (1.5, 2.5) in much of Europe).
    """
    for separator in (";", "\t", ","):
        if separator in line:
            return [f.strip() for f in next(csv.reader([line], delimiter=separator))], separator
    return line.split(), " "


def _show(field: str) -> str:
    return repr(field if len(field) <= 24 else field[:21] + "...")


def read_csv(source: str | Path | bytes | io.IOBase, name: str | None = None) -> np.ndarray:
    """Read points from CSV text: two numeric columns (x, y), an optional header line.

    ``source`` is a path, the file's bytes, or a binary/text file object. Errors
    name the file (``name`` or the path) and the line: an empty file, one column
    (or more than two), text where a number should be, NaN or infinity, fewer
    than two points, no spread in a coordinate.
    """
    place = name or (str(source) if isinstance(source, (str, Path)) else "CSV file")
    text = _read_text(source, place)
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise SpecError(place, "the file is empty; expected two numeric columns x, y, one point per line")
    rows: list[tuple[float, float]] = []
    for position, (number, line) in enumerate(lines):
        try:
            fields, separator = _split(line)
        except csv.Error as error:  # a field over the csv module's size limit, a stray quote
            raise SpecError(f"{place}, line {number}", f"cannot be read as CSV ({error})") from None
        if len(fields) != 2:
            what = "1 column" if len(fields) == 1 else f"{len(fields)} columns"
            hint = ""
            if (
                separator == ","
                and len(fields) in (3, 4)
                and all(_parse_number(f) is not None for f in fields)
            ):
                hint = (
                    "; if the commas are decimal marks (1,5 for 1.5), separate the columns with ';' or a tab"
                )
            raise SpecError(
                f"{place}, line {number}", f"found {what}, but two numeric columns (x, y) are needed{hint}"
            )
        values = [_parse_number(field, decimal_comma=separator != ",") for field in fields]
        if position == 0 and all(v is None for v in values):
            continue  # a header line such as "x,y"
        for field, value in zip(fields, values, strict=True):
            if value is None:
                raise SpecError(f"{place}, line {number}", f"{_show(field)} is not a number")
            if not math.isfinite(value):
                raise SpecError(f"{place}, line {number}", f"{_show(field)} is not a finite number")
        rows.append((values[0], values[1]))
    if not rows:
        raise SpecError(place, "the file has a header but no points")
    return check_points(np.asarray(rows, dtype=np.float64), place)


def _read_path(path: Path, place: str) -> bytes:
    """A regular file's bytes, at most MAX_CSV_BYTES: a FIFO would block, a device never end."""
    try:
        if path.is_dir():
            raise SpecError(place, "this is a folder, not a CSV file")
        if path.exists() and not path.is_file():
            raise SpecError(
                place, "not a regular file (a pipe, device or socket); give the path of a CSV file"
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_CSV_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(place, "no such file") from None
    except OSError as error:
        raise SpecError(place, f"cannot read the file ({error.strerror})") from None
    if len(raw) > MAX_CSV_BYTES:
        raise SpecError(place, f"the file is larger than {MAX_CSV_BYTES // 2**20} MiB")
    return raw


def _utf16_order(raw: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the bytes look like UTF-16 text without a byte-order mark."""
    head = raw[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _read_text(source, place: str) -> str:
    if isinstance(source, (str, Path)):
        raw = _read_path(Path(source), place)
    elif isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    else:
        raw = source.read()
        if isinstance(raw, str):
            return raw
    encoding = "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # the byte-order mark says which, and is dropped
    elif b"\x00" in raw[:4096]:
        encoding = _utf16_order(raw)
        if encoding is None:
            raise SpecError(place, "this is not a text file; expected CSV text with two numeric columns")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        what = "UTF-16" if "16" in encoding else "UTF-8"
        raise SpecError(
            place, f"this is not {what} text; expected CSV text with two numeric columns"
        ) from None


def csv_text(points: np.ndarray) -> str:
    """The points as CSV text with an ``x,y`` header, each number written to round-trip exactly."""
    lines = ["x,y"] + [f"{x!r},{y!r}" for x, y in np.asarray(points, dtype=np.float64).tolist()]
    return "\n".join(lines) + "\n"
