"""``python -m flowviz evaluate`` as a user runs it: a subprocess, an .npz file, exit statuses.

Starting Python with torch takes a second or two, so the subprocess commands are
started once, side by side, by one module fixture, and the tests read the results.
A representative sample of bad specs goes through a real process; every bad spec
of the table also goes through ``flowviz.cli.main``, the same code without the
process start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import flowviz
from flowviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"x", "y", "density", "log_density", "base_log_prob", "log_det_inverse", "log_det_forward", "mass"}

GOOD = {
    "base": {
        "type": "mixture",
        "components": [{"mean": [-1, 0]}, {"mean": [1, 1], "cov": [[0.5, 0.1], [0.1, 0.4]]}],
    },
    "layers": [
        {"type": "coupling", "condition_on": 0, "shift": {"poly": [-1, 0, 1]}},
        {"type": "planar", "w": [1, 0.5], "u": [0.6, -0.3], "b": 0.1},
        {"type": "exp", "enabled": False},
        {"type": "radial", "center": [0.5, 0], "beta": 0.8},
        {"type": "tanh"},
    ],
    "view": {"xlim": [-1.5, 1.5], "ylim": [-1.2, 1.2], "resolution": 23},
}


def _layers_with(layer: dict) -> dict:
    return {**GOOD, "layers": [GOOD["layers"][0], GOOD["layers"][1], layer]}


# name -> (file contents: a dict as JSON, raw text, or None for no file; the place the message names; a reason fragment)
INVALID = {
    "planar-wu": (
        _layers_with({"type": "planar", "w": [1, 0], "u": [-1.3, 0.4]}),
        "layers[2] (planar)",
        "w.u = -1.3, but it must be > -1 for the layer to be invertible",
    ),
    "not-json": ("{'base': gaussian}", "spec", "not valid JSON"),
    "empty-file": ("", "spec", "not valid JSON"),
    "json-nan": ('{"base": {"type": "gaussian", "mean": [NaN, 0]}, "layers": []}', "spec", "NaN"),
    "json-list": ("[]", "spec", "must be a JSON object"),
    "missing-base": ({"layers": []}, "spec", "missing required field 'base'"),
    "unknown-layer": (_layers_with({"type": "warp"}), "layers[2]", "unknown layer type"),
    "layer-type-list": (_layers_with({"type": ["tanh"]}), "layers[2]", "unknown layer type"),
    "missing-field": (
        _layers_with({"type": "rotation"}),
        "layers[2] (rotation)",
        "missing required field 'degrees'",
    ),
    "degrees-bool": (
        _layers_with({"type": "rotation", "degrees": True}),
        "layers[2] (rotation)",
        "must be a number",
    ),
    "affine-singular": (
        _layers_with({"type": "affine", "matrix": [[1, 2], [2, 4]]}),
        "layers[2] (affine)",
        "det(matrix) = 0",
    ),
    "spline-counts": (
        _layers_with({"type": "spline", "widths": [1, 1], "heights": [1, 1], "derivatives": []}),
        "layers[2] (spline)",
        "derivatives has 0 numbers",
    ),
    "cov-indefinite": (
        {**GOOD, "base": {"type": "gaussian", "cov": [[1, 2], [2, 1]]}},
        "base (gaussian)",
        "positive definite",
    ),
    "weight-zero": (
        {**GOOD, "base": {**GOOD["base"], "weights": [1, 0]}},
        "base (mixture)",
        "weights[1] = 0",
    ),
    "uniform-flat": (
        {**GOOD, "base": {"type": "uniform", "low": [0, 0], "high": [0, 1]}},
        "base (uniform)",
        "low[0] = 0",
    ),
    "resolution-1": ({**GOOD, "view": {"resolution": 1}}, "view", "resolution = 1"),
    "resolution-fraction": ({**GOOD, "view": {"resolution": 20.5}}, "view", "whole number"),
    "missing-file": (None, "", "no such file"),
}
# The bad specs run as real processes (each costs a Python start with torch).
IN_SUBPROCESS = ["planar-wu", "not-json", "missing-file", "layer-type-list"]


def _write_spec(folder: Path, name: str) -> Path:
    contents = INVALID[name][0]
    path = folder / f"{name}.json"
    if contents is not None:
        path.write_text(contents if isinstance(contents, str) else json.dumps(contents))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "flowviz", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("cli")
    good = folder / "good.json"
    good.write_text(json.dumps(GOOD))
    commands: dict[str, tuple[str, ...]] = {
        "good": ("evaluate", str(good), "--out", str(folder / "good.npz")),
        "good-resolution": ("evaluate", str(good), "--out", str(folder / "res.npz"), "--resolution", "9"),
        "evaluate-help": ("evaluate", "--help"),
    }
    for name in IN_SUBPROCESS:
        commands[name] = ("evaluate", str(_write_spec(folder, name)), "--out", str(folder / f"{name}.npz"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run, *args) for name, args in commands.items()}
        results = {name: future.result() for name, future in futures.items()}
    return {**results, "folder": folder, "good_spec": good}


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_writes_exactly_the_contract_arrays_with_the_numbers_of_evaluate(runs):
    result = runs["good"]
    assert result.returncode == 0, result.stderr
    arrays = _load(runs["folder"] / "good.npz")
    assert set(arrays) == KEYS
    expected = flowviz.evaluate(GOOD)
    for key in KEYS:
        assert arrays[key].shape == expected[key].shape, key
        np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)
    assert arrays["density"].shape == (23, 23)
    assert "Traceback" not in result.stderr


def test_resolution_option_overrides_the_view(runs):
    assert runs["good-resolution"].returncode == 0, runs["good-resolution"].stderr
    arrays = _load(runs["folder"] / "res.npz")
    expected = flowviz.evaluate({**GOOD, "view": {**GOOD["view"], "resolution": 9}})
    assert arrays["density"].shape == (9, 9)
    np.testing.assert_array_equal(arrays["x"], np.linspace(-1.5, 1.5, 9))
    for key in KEYS:
        np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)


def _assert_refused(result: subprocess.CompletedProcess, out: Path, place: str, fragment: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if place:
        assert lines[0].startswith(f"{place}: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left behind"


@pytest.mark.parametrize("name", IN_SUBPROCESS)
def test_invalid_spec_exits_2_with_one_line(runs, name):
    _, place, fragment = INVALID[name]
    _assert_refused(runs[name], runs["folder"] / f"{name}.npz", place, fragment)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_every_invalid_spec_is_refused_by_main(tmp_path, capsys, name):
    _, place, fragment = INVALID[name]
    out = tmp_path / "out.npz"
    status = main(["evaluate", str(_write_spec(tmp_path, name)), "--out", str(out)])
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], status, captured.out, captured.err)
    _assert_refused(result, out, place, fragment)


def test_the_contract_example_line_exactly(runs):
    assert runs["planar-wu"].stderr == (
        "layers[2] (planar): w.u = -1.3, but it must be > -1 for the layer to be invertible\n"
    )


def test_missing_file_names_the_file(runs):
    assert str(runs["folder"] / "missing-file.json") in runs["missing-file"].stderr


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["--resolution", "1"], "--resolution"),
        (["--resolution", "abc"], "--resolution"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_options_exit_2(runs, tmp_path, capsys, options, fragment):
    out = tmp_path / "out.npz"
    status = main(["evaluate", str(runs["good_spec"]), "--out", str(out), *options])
    captured = capsys.readouterr()
    _assert_refused(subprocess.CompletedProcess([], status, captured.out, captured.err), out, "", fragment)


def test_missing_output_folder_exits_2(runs, tmp_path, capsys):
    out = tmp_path / "nowhere" / "out.npz"
    status = main(["evaluate", str(runs["good_spec"]), "--out", str(out)])
    captured = capsys.readouterr()
    _assert_refused(
        subprocess.CompletedProcess([], status, captured.out, captured.err), out, "", "does not exist"
    )


def test_help(runs, capsys):
    assert runs["evaluate-help"].returncode == 0, runs["evaluate-help"].stderr
    assert "Traceback" not in runs["evaluate-help"].stderr
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "evaluate" in capsys.readouterr().out
    text = runs["evaluate-help"].stdout
    for word in ("SPEC.json", "--out", "OUT.npz", "--resolution", "density", "log_det_inverse", "mass"):
        assert word in text, word
