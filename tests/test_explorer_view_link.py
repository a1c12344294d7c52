"""The Explorer's view options travel in its link: log scale, samples, the extra views.

They are query parameters beside ?spec= (log=1, samples=N, views=terms,layers,probe), kept
in the address bar as the options change, in the share link, and taken from a link once.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from flowviz.flow import Flow
from flowviz.spec import encode_token, parse_spec

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "explore.py")
SPEC = parse_spec(
    {
        "base": {"type": "gaussian"},
        "layers": [{"type": "rotation", "degrees": 30}],
        "view": {"xlim": [-4, 4], "ylim": [-4, 4], "resolution": 64},
    }
)
TERMS_CAPTION = "The change of variables, term by term"


def open_explorer(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(SPEC)
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def query(at: AppTest) -> dict[str, str]:
    return {name: value[0] if isinstance(value, list) else value for name, value in at.query_params.items()}


def shared_link_query(at: AppTest) -> dict[str, str]:
    at.segmented_control(key="fv_extras").set_value(["Share"]).run()
    (link,) = [c.value for c in at.code if "?spec=" in c.value]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


def test_options_set_on_the_page_go_into_the_address_and_the_share_link():
    at = open_explorer({})
    assert set(query(at)) == {"spec"}  # at their defaults the options stay out of the link
    at.toggle(key="fv_log").set_value(True).run()
    at.toggle(key="fv_samples_on").set_value(True).run()
    at.slider(key="fv_samples_n").set_value(1200).run()
    at.pills(key="fv_extra").set_value(["Probe a point", "Change-of-variables terms"]).run()
    expected = {"spec": encode_token(SPEC), "log": "1", "samples": "1200", "views": "terms,probe"}
    assert query(at) == expected
    assert shared_link_query(at) == expected
    at.toggle(key="fv_log").set_value(False).run()
    at.pills(key="fv_extra").set_value([]).run()
    assert query(at) == {"spec": encode_token(SPEC), "samples": "1200"}


def test_a_link_opens_with_its_view_options_on():
    at = open_explorer({"log": "1", "samples": "800", "views": "probe,terms"})
    assert not at.warning
    assert at.toggle(key="fv_log").value is True
    assert at.toggle(key="fv_samples_on").value is True
    assert at.slider(key="fv_samples_n").value == 800
    assert at.pills(key="fv_extra").value == ["Change-of-variables terms", "Probe a point"]
    assert any(TERMS_CAPTION in c.value for c in at.caption)
    # the probe view is there and shows log p_X at its point as the flow computes it
    px, py = (s.value for s in at.slider if s.label in ("Probe x₁", "Probe x₂"))
    truth = float(Flow.from_spec(SPEC).log_prob(torch.tensor([[px, py]], dtype=torch.float64))[0])
    assert f"{truth:.4f}" in " ".join(latex.value for latex in at.latex)
    # the person's later changes are theirs: the link is read once
    at.toggle(key="fv_log").set_value(False).run()
    assert at.toggle(key="fv_log").value is False and "log" not in query(at)


def test_a_round_trip_through_the_link_restores_every_option():
    first = open_explorer({})
    first.toggle(key="fv_samples_on").set_value(True).run()
    first.pills(key="fv_extra").set_value(["Layer by layer"]).run()
    second = open_explorer({k: v for k, v in query(first).items() if k != "spec"})
    for key in ("fv_log", "fv_samples_on", "fv_samples_n", "fv_extra"):
        assert second.session_state[key] == first.session_state[key], key


@pytest.mark.parametrize(
    ("params", "named", "kept"),
    [
        ({"log": "maybe", "views": "terms"}, "log='maybe' is not 1 or 0", {"fv_extra": ["Change-of-variables terms"]}),
        ({"samples": "250", "log": "1"}, "samples='250' is not a multiple of 100", {"fv_log": True}),
        ({"samples": "-1"}, "samples='-1'", {"fv_samples_on": False}),
        ({"views": "terms,zoom"}, "views='zoom' is not one of terms, layers, probe", {"fv_extra": ["Change-of-variables terms"]}),
    ],
)  # fmt: skip
def test_bad_values_are_named_in_one_line_and_the_rest_is_used(params, named, kept):
    at = open_explorer(params)
    (warning,) = [w.value for w in at.warning]
    assert named in warning and "\n" not in warning
    for key, value in kept.items():
        assert at.session_state[key] == value


def test_the_view_options_and_the_extras_survive_a_visit_to_another_page():
    """Streamlit forgets a widget's state when a run does not draw it: the options (and what the
    controls also show) are kept apart."""
    at = AppTest.from_file(str(Path(PAGE).parents[1] / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/explore.py").run()
    at.toggle(key="fv_log").set_value(True).run()
    at.toggle(key="fv_samples_on").set_value(True).run()
    at.slider(key="fv_samples_n").set_value(1200).run()
    at.pills(key="fv_extra").set_value(["Probe a point"]).run()
    at.segmented_control(key="fv_extras").set_value(["JSON", "Share"]).run()
    at.switch_page("app_pages/one_d.py").run()
    assert "fv_log" not in at.session_state  # the widget's own state is gone with its page
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    assert at.toggle(key="fv_log").value is True
    assert at.toggle(key="fv_samples_on").value is True
    assert at.slider(key="fv_samples_n").value == 1200
    assert at.pills(key="fv_extra").value == ["Probe a point"]
    assert at.segmented_control(key="fv_extras").value == ["JSON", "Share"]
    assert {name: query(at).get(name) for name in ("log", "samples", "views")} == {
        "log": "1",
        "samples": "1200",
        "views": "probe",
    }
