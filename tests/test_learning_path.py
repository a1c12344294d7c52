"""The learning path: its order, its 2x2 Jacobians, and links that open exactly the state a step shows."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import flowviz
from flowviz.flow import Flow
from flowviz.learning_path import (
    MULTIMODAL,
    STEPS,
    explorer_link,
    inverse_jacobian_at,
    multimodal_spec,
    one_d_link,
)
from flowviz.line import DEFAULT_BASE, DEFAULT_MAP, build_line_base, build_line_map, probe
from flowviz.spec import decode_token

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


def test_the_steps_follow_the_order_of_the_ideas():
    titles = [s.title.split(" · ")[1].lower() for s in STEPS]
    order = ["change of variables", "three cases", "jacobian of the inverse", "one mode to many",
             "log p = prior term + log-det", "triangular", "train your own"]  # fmt: skip
    assert [any(word in t for t in titles[i : i + 1]) for i, word in enumerate(order)] == [True] * 7, titles
    assert [s.page for s in STEPS] == ["1d", "1d", "explore", "explore", "explore", "structure", "train"]


@pytest.mark.parametrize("x", [(1.0, 0.5), (-2.0, 1.5), (0.1, -0.3), (3.0, 3.0)])
def test_the_jacobian_of_the_inverse_is_the_inverse_of_the_jacobian(x):
    jac = inverse_jacobian_at(Flow.from_spec(MULTIMODAL), x)
    assert jac.inside
    np.testing.assert_allclose(jac.product, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(jac.inverse, np.linalg.inv(jac.forward), rtol=1e-9, atol=1e-12)
    # autograd's determinant against the layers' analytic log|det J_f⁻¹|
    assert np.log(abs(np.linalg.det(jac.inverse))) == pytest.approx(jac.log_det_inverse, abs=1e-9)
    # z really is f⁻¹(x)
    flow = Flow.from_spec(MULTIMODAL)
    back = flow.forward(torch.tensor(jac.z[None], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(back, x, atol=1e-9)


def test_an_affine_flows_jacobians_are_its_matrix_and_its_inverse():
    matrix = [[1.5, 0.4], [-0.3, 0.8]]
    flow = Flow.from_spec({"base": {"type": "gaussian"}, "layers": [{"type": "affine", "matrix": matrix}]})
    jac = inverse_jacobian_at(flow, (0.7, -1.2))
    np.testing.assert_allclose(jac.forward, matrix, atol=1e-12)
    np.testing.assert_allclose(jac.inverse, np.linalg.inv(matrix), atol=1e-12)


def _start_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/start.py").run()
    assert not at.exception, at.exception
    return at


def _links(at: AppTest) -> list[tuple[str, str, dict]]:
    return [
        (link.proto.page, link.proto.label, {k: v[0] for k, v in parse_qs(link.proto.query_string).items()})
        for link in at.get("page_link")
    ]


def _chart_traces(at: AppTest, index: int = 0) -> list[dict]:
    """The data of the page's index-th chart, without its layout (heights differ between pages)."""
    charts = [e for e in at.get("bidi_component") if e.proto.component_name == "flowviz.live_chart"]
    return json.loads(json.loads(charts[index].proto.json)["figure"])["data"]


def test_every_step_links_to_its_page_in_order():
    links = [(page, query) for page, label, query in _links(_start_page()) if label.startswith("Open")]
    assert [page for page, _ in links] == ["1d", "1d", "explore", "explore", "explore", "structure", "train"]
    assert links[0][1] == {"probe": "0"} and links[1][1] == {"case": "volume"}
    assert decode_token(links[2][1]["spec"]) == MULTIMODAL
    assert decode_token(links[3][1]["spec"]) == multimodal_spec(1.1)


def test_the_1d_links_open_the_picture_the_step_shows():
    at = _start_page()
    at.slider(key="path.probe").set_value(0.8).run()
    at.radio(key="path.case").set_value("compress").run()
    links = [query for page, label, query in _links(at) if page == "1d"]
    assert links == [{"probe": "0.8"}, {"case": "compress"}]
    shown = [_chart_traces(at, 0), _chart_traces(at, 1)]
    for query, traces in zip(links, shown, strict=True):
        page = AppTest.from_file(str(ROOT / "app_pages" / "one_d.py"), default_timeout=120)
        for name, value in query.items():
            page.query_params[name] = value
        page.run()
        assert not page.exception and not page.warning
        assert _chart_traces(page) == traces, query  # the same curves, interval, probe and histogram
        assert dict(page.query_params) == {}  # adopted once: later edits are the person's own
    # and the numbers at the probe are the change of variables at x = 0.8
    truth = probe(build_line_base(*DEFAULT_BASE), build_line_map(*DEFAULT_MAP), 0.8)
    assert one_d_link(probe=0.8) == "/1d?probe=0.8"
    assert truth.density == pytest.approx(truth.base_density * np.exp(truth.log_det_inverse))


def test_the_explorer_links_open_the_flow_the_step_shows():
    at = _start_page()
    at.slider(key="path.push").set_value(0.5).run()
    (_, _, query) = [link for link in _links(at) if link[0] == "explore"][1]
    spec = multimodal_spec(0.5)
    assert decode_token(query["spec"]) == spec
    assert explorer_link(spec) == f"/explore?spec={query['spec']}"
    page = AppTest.from_file(str(ROOT / "app_pages" / "explore.py"), default_timeout=120)
    page.query_params["spec"] = query["spec"]
    page.run()
    assert not page.exception
    (mass,) = [m.value for m in page.metric if m.label == "Mass in view"]
    assert mass == f"{float(flowviz.evaluate(spec)['mass']):.4f}"


@pytest.mark.parametrize(
    ("query", "problem"),
    [({"case": "squash"}, "case='squash' is not one of volume, compress, expand"),
     ({"probe": "nan"}, "probe='nan' is not a finite number"),
     ({"probe": "left"}, "probe='left' is not a finite number")],
)  # fmt: skip
def test_a_1d_link_that_cannot_be_used_is_named_and_the_page_opens_anyway(query, problem):
    page = AppTest.from_file(str(ROOT / "app_pages" / "one_d.py"), default_timeout=120)
    for name, value in query.items():
        page.query_params[name] = value
    page.run()
    assert not page.exception
    assert [w.value for w in page.warning if problem in w.value], [w.value for w in page.warning]
    assert [m.value for m in page.metric if m.label == "z = f⁻¹(x)"]  # the default picture is there


def test_a_1d_link_state_then_the_persons_own_changes():
    page = AppTest.from_file(str(ROOT / "app_pages" / "one_d.py"), default_timeout=120)
    page.query_params["case"] = "expand"
    page.run()
    (density,) = [float(m.value) for m in page.metric if m.label == "p_X(x)"]
    assert density == pytest.approx(0.5)  # uniform on [0, 1] through slope 2
    page.session_state["one_d.probe_x"] = 0.0  # as the page's sliders set them
    page.session_state["one_d.affine_slope"] = 1.0
    page.run()
    (density,) = [float(m.value) for m in page.metric if m.label == "p_X(x)"]
    assert density == pytest.approx(1.0)  # the edits stay: the link is not applied again


def test_the_explorer_points_newcomers_to_the_path_until_dismissed():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    first = at.get("page_link")[0].proto
    assert (first.page, first.label) == ("start", "Start here")
    assert any("New to normalizing flows?" in m.value for m in at.markdown)
    at.button(key="fv_start_pointer_close").click().run()
    assert not any("New to normalizing flows?" in m.value for m in at.markdown)
    assert [link.proto.page for link in at.get("page_link")] == ["structure"]  # the next idea remains
