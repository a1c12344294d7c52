"""Names people supply are shown as themselves in Streamlit's markdown (no links, emphasis, LaTeX)."""

from __future__ import annotations

import re

import pytest

from flowviz.ui.text import literal


def _commonmark_unescape(text: str) -> str:
    """CommonMark: a backslash before ASCII punctuation stands for that character itself."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


@pytest.mark.parametrize(
    "name",
    [
        "[click](http://example.com).json",
        "**bold** _it_ `code`.csv",
        "$x^2$ & <b>tag</b>.json",
        "# title",
        "a\\b",
    ],
)
def test_a_name_is_escaped_so_markdown_shows_it_as_written(name):
    shown = literal(name)
    assert _commonmark_unescape(shown) == name
    # every markdown- or LaTeX-active character is escaped: none stands unescaped
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", shown)
    assert not set(unescaped) & set("[]*_`$<>&~:\\")


def test_line_breaks_become_spaces_and_plain_names_stay():
    assert literal("two\nlines") == "two lines"
    plain = "moons 2024 data"
    assert literal(plain) == plain
    assert literal("naïve, 2024 (v2) #1.csv") == "naïve, 2024 (v2) #1.csv"
