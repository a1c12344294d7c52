"""Start here: the ideas of normalizing flows in order, each beside a live picture, each one click
from the page that shows it in full."""

from __future__ import annotations

import streamlit as st

from flowviz.ui.path import learning_path, next_idea

st.title("Start here: normalizing flows in seven ideas")
st.markdown(
    "A normalizing flow turns a simple density into a complicated one by pushing it through an "
    "invertible map, and can still say exactly how likely every point is. Seven ideas get you there, "
    "in the order a first course takes them. Each picture is live: change what it offers, then open "
    "the full page in exactly that state."
)
learning_path()
next_idea("start")
