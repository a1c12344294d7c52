"""Each layer type declares its whole contract in its own module.

The spec's fields and checks, the editor's title and controls, the structure
page's caption and the tests' example parameters are read from the layer class,
so that a layer type is named nowhere else: adding one means adding one module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from flowviz.errors import SpecError
from flowviz.layers import LAYER_CLASSES, Planar, build_layer
from flowviz.spec import parse_spec
from flowviz.structure import jacobian_reason

PACKAGE = Path(__file__).resolve().parents[1] / "flowviz"

# Strings elsewhere that merely coincide with a layer type's name and mean something else:
# the "scale" of a trained model's architecture, and a trained model's mixing ("swap",
# "rotation") and coupling kinds ("affine", "spline").
HOMONYMS: dict[str, set[str]] = {
    "model_io.py": {"scale"},
    "train/loop.py": {"scale"},
    "train/process.py": {"scale"},
    "train/model.py": {"swap", "rotation", "affine", "spline"},
}


def modules_naming_each_layer_type() -> dict[str, set[str]]:
    """For each layer type, the modules (of flowviz/ outside its layers/ and the preset data, and the
    pages) that hold its name as a string."""
    named: dict[str, set[str]] = defaultdict(set)
    pages = sorted((PACKAGE.parent / "app_pages").glob("*.py"))
    for path in [*sorted(PACKAGE.rglob("*.py")), *pages]:
        module = path.relative_to(PACKAGE if path.is_relative_to(PACKAGE) else PACKAGE.parent).as_posix()
        if module.startswith("layers/") or module == "presets.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_type_name = isinstance(node, ast.Constant) and node.value in LAYER_CLASSES
            if is_type_name and node.value not in HOMONYMS.get(module, set()):
                named[node.value].add(module)
    return named


def test_no_layer_type_is_named_in_more_than_one_module_outside_its_own():
    spread = {
        kind: sorted(modules)
        for kind, modules in modules_naming_each_layer_type().items()
        if len(modules) > 1
    }
    assert spread == {}


def test_a_layer_built_directly_with_bad_parameters_is_refused_like_the_spec_refuses_it():
    with pytest.raises(SpecError, match=r"w\.u = -2, but it must be > -1 for the layer to be invertible"):
        Planar(w=[1, 0], u=[-2, 0])


def _spec_reason(layer: dict) -> str:
    """The reason the spec gives for refusing one layer."""
    with pytest.raises(SpecError) as refused:
        parse_spec({"base": {"type": "gaussian"}, "layers": [layer]})
    assert refused.value.place == f"layers[0] ({layer['type']})"
    return refused.value.reason


# One invalid entry for each type with a condition: the spec and the class refuse it alike.
INVALID = {
    "affine": {"matrix": [[1.0, 2.0], [2.0, 4.0]]},
    "scale": {"scale": [2.0, 0.0]},
    "leaky_relu": {"negative_slope": 0.0},
    "sinh_arcsinh": {"tailweight": -1.0},
    "planar": {"w": [1.0, 0.0], "u": [-2.0, 0.0]},
    "radial": {"alpha": 1.0, "beta": -1.5},
    "swirl": {"strength": 1.0, "radius": 0.0},
    "spline": {"widths": [1.0, 1.0], "heights": [1.0, 1.0], "derivatives": [0.0]},
    "piecewise_linear": {"knots": [1.0, -1.0], "slopes": [1.0, 1.0, 1.0]},
}


def test_every_type_with_a_condition_has_an_invalid_row():
    with_check = {kind for kind, cls in LAYER_CLASSES.items() if "check" in vars(cls)}
    assert with_check == set(INVALID)


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_built_directly_or_read_from_a_spec_a_bad_layer_gets_the_same_message(kind):
    reason = _spec_reason({"type": kind, **INVALID[kind]})
    with pytest.raises(SpecError) as refused:
        build_layer({"type": kind, **INVALID[kind]})
    assert (refused.value.place, refused.value.reason) == (kind, reason)


@pytest.mark.parametrize("kind", list(LAYER_CLASSES))
def test_each_class_declares_title_caption_defaults_controls_and_examples(kind):
    cls = LAYER_CLASSES[kind]
    assert cls.title and jacobian_reason(cls)
    # Its defaults are a canonical entry already: what "add layer" inserts is what the spec keeps.
    entry = {"type": kind, **cls.defaults}
    assert parse_spec({"base": {"type": "gaussian"}, "layers": [entry]})["layers"] == [entry]
    for control in cls.controls_for(entry):
        assert control.path[0] in cls.fields and control.low < control.high and control.step > 0
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        example = {"type": kind, **cls.example(generator)}
        parse_spec({"base": {"type": "gaussian"}, "layers": [example]})


@pytest.mark.parametrize("kind", list(LAYER_CLASSES))
def test_each_class_docstring_holds_the_formulas_the_app_shows_and_its_paper(kind):
    cls = LAYER_CLASSES[kind]
    assert set(cls.latex) == {"forward", "inverse", "log_det"}
    for formula in cls.latex.values():
        assert formula in cls.__doc__
    assert cls.reference in cls.__doc__
