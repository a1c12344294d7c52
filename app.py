"""flowviz: the Streamlit shell. Navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="flowviz: normalizing flows you can see", page_icon="🌀", layout="wide")

pages = [
    st.Page("pages/explore.py", title="Explorer (2D)", icon="🧭", url_path="explore", default=True),
    st.Page("pages/one_d.py", title="Change of variables (1D)", icon="📏", url_path="1d"),
    st.Page("pages/train.py", title="Train a flow", icon="🎯", url_path="train"),
    st.Page("pages/structure.py", title="Jacobian structure", icon="🧱", url_path="structure"),
]
st.navigation(pages, position="top").run()
