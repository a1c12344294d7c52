"""One way to cache: every cache is flowviz.memo.array_cache, keyed by the inputs' canonical form.

A trained flow is keyed by its content, so equal flows share their pictures across sessions;
the pages keep no cache of their own.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from flowviz.explorer import fields_of_flow, samples_of_flow, trained_fields, trained_samples
from flowviz.flow import Flow
from flowviz.grid import flow_key
from flowviz.presets import default_spec
from flowviz.train import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[1]
OTHER_CACHES = re.compile(r"lru_cache|functools\.cache\b|cache_data|cache_resource|OrderedDict\(")
SOURCES = sorted(
    path.relative_to(ROOT).as_posix()
    for folder in ("flowviz", "app_pages")
    for path in (ROOT / folder).rglob("*.py")
    if path.name != "memo.py"
)


@pytest.mark.parametrize("path", SOURCES)
def test_no_other_way_of_caching_creeps_back(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    found = [
        f"{path}:{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if OTHER_CACHES.search(line)
    ]
    assert found == [], "cache with flowviz.memo.array_cache instead:\n" + "\n".join(found)


def test_the_scan_sees_every_page_and_core_module():
    assert {"flowviz/explorer.py", "app_pages/explore.py", "app_pages/structure.py"} <= set(SOURCES)
    assert len(SOURCES) > 30


def _trained(seed: int) -> Flow:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind="realnvp", layers=2, hidden=8, depth=1, mixing="rotation"))


def test_a_flow_key_is_its_content():
    spec = default_spec()
    assert flow_key(Flow.from_spec(spec)) == flow_key(Flow.from_spec(json.loads(json.dumps(spec))))
    flow = _trained(0)
    assert flow_key(flow) == flow_key(copy.deepcopy(flow)) == flow_key(_trained(0))
    assert flow_key(flow) != flow_key(_trained(1))
    nudged = copy.deepcopy(flow)
    with torch.no_grad():
        weight = next(nudged.parameters()).view(-1)
        weight[0] = torch.nextafter(weight[0], weight[0] + 1)  # the smallest change its dtype allows
    assert flow_key(nudged) != flow_key(flow)
    other_base = copy.deepcopy(flow)
    other_base.base_spec = {**flow.base_spec, "mean": [0.5, 0.0]}
    assert flow_key(other_base) != flow_key(flow)


def test_a_trained_flows_pictures_are_shared_by_equal_flows_and_equal_the_direct_computation():
    flow = _trained(2)
    view = {"xlim": [-3.0, 3.0], "ylim": [-2.0, 2.0], "resolution": 32}
    fields = trained_fields(flow, view)
    direct = fields_of_flow(flow, view)
    assert set(fields) == set(direct)
    for name, values in direct.items():
        np.testing.assert_array_equal(fields[name], values)
    # another session's copy of the same flow, its view written in another key order
    assert trained_fields(copy.deepcopy(flow), dict(reversed(list(view.items())))) is fields
    assert trained_fields(_trained(3), view) is not fields
    z0, x = trained_samples(flow, 50)
    np.testing.assert_array_equal(x, samples_of_flow(flow, 50)[1])
    assert trained_samples(copy.deepcopy(flow), 50)[0] is z0


def test_a_trained_flows_strip_is_cached_by_content_and_read_only():
    from flowviz.playback import TRAINED_PREVIEW_RESOLUTION, trained_strip

    flow = _trained(4)
    window = {"xlim": [-3.0, 3.0], "ylim": [-3.0, 3.0]}
    strip = trained_strip(flow, window, 16, False)
    assert trained_strip(copy.deepcopy(flow), window, 16, False) is strip
    assert all(not value.flags.writeable for value in strip.values())
    assert TRAINED_PREVIEW_RESOLUTION == 64


def test_encoded_panels_are_keyed_by_their_values_not_their_identity():
    from flowviz.plots.common import DENSITY_SCALE, colour_map, png_data_uri
    from flowviz.plots.explore import field_image

    values = np.linspace(0.0, 1.0, 64).reshape(8, 8)
    uri = field_image(values, 0.0, 1.0, DENSITY_SCALE)
    assert uri == png_data_uri(colour_map(values, 0.0, 1.0, DENSITY_SCALE))
    assert field_image(values.copy(), 0.0, 1.0, DENSITY_SCALE) is uri
    assert field_image(values.reshape(4, 16), 0.0, 1.0, DENSITY_SCALE) != uri
    assert field_image(values, 0.0, 2.0, DENSITY_SCALE) != uri


def test_the_paths_line_figure_is_the_1d_computation_cached_and_counted_in_bytes():
    from flowviz.line import (
        DEFAULT_BASE,
        DEFAULT_INTERVAL,
        DEFAULT_MAP,
        build_line_base,
        build_line_map,
        probe,
    )
    from flowviz.plots.one_d import line_figure

    base, fmap = json.dumps(DEFAULT_BASE), json.dumps(DEFAULT_MAP)
    line_figure.cache_clear()
    figure, at, (low, high) = line_figure(base, fmap, DEFAULT_INTERVAL, 0.3)
    assert line_figure(base, fmap, DEFAULT_INTERVAL, 0.3)[0] is figure
    truth = probe(build_line_base(*DEFAULT_BASE), build_line_map(*DEFAULT_MAP), 0.3)
    assert at.density == truth.density and low < high
    assert line_figure.cache_bytes() > 10_000  # the figure's arrays count against the budget


def test_the_structure_pages_reports_are_the_paths_coupling_jacobian():
    from flowviz.jacobians import measured_reports, measured_structures
    from flowviz.structure import AffineCouplingND, jacobian_report, random_point

    coupling, autoregressive = measured_reports(6, 0)
    truth = jacobian_report(AffineCouplingND(6, seed=1), random_point(6, 0))
    np.testing.assert_array_equal(coupling.jacobian, truth.jacobian)
    assert np.allclose(np.triu(autoregressive.jacobian, 1), 0.0)  # autoregressive: lower triangular
    assert measured_reports(6, 0)[0] is coupling
    assert measured_structures(0) is measured_structures(0)


def test_a_finished_models_views_are_shared_by_content_and_equal_the_direct_computation():
    from flowviz.grid import as_float64, evaluate_flow
    from flowviz.plots.train import data_window
    from flowviz.trained_views import finished_views

    flow = _trained(5)
    data = np.random.default_rng(0).normal(size=(40, 2))
    views = finished_views(flow, data, 24)
    window = data_window(data)
    assert views["window"] == window
    truth = evaluate_flow(as_float64(flow), {**window, "resolution": 24})
    np.testing.assert_array_equal(views["grid"]["density"], truth["density"])
    with torch.no_grad():
        latent = as_float64(flow).inverse(torch.as_tensor(data)).numpy()
    np.testing.assert_array_equal(views["latent"], latent)
    assert len(views["trace"]) == len(flow.layers) + 1
    # a copy of the model (loaded from a file in another session) and a copy of the data: one entry
    assert finished_views(copy.deepcopy(flow), data.copy(), 24) is views
    assert finished_views(flow, data[:-1], 24) is not views
    assert "latent" not in finished_views(flow, None, 24)
