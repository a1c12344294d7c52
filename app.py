"""flowviz: the Streamlit shell. Navigation only; each page lives in app_pages/."""

import streamlit as st
import torch

# One server process serves every visitor (and every training run): one intra-op
# thread each keeps them from fighting over the cores, which costs far more than
# it saves on grids of this size.
torch.set_num_threads(1)

st.set_page_config(page_title="flowviz: normalizing flows you can see", page_icon="🌀", layout="wide")
# Display formulas at text size: the layer formulas sit in a narrow column beside the sliders.
st.html("<style>.katex-display > .katex { font-size: 1em; }</style>")

pages = [
    # The Explorer answers at "/" (default page) and at "/explore": Streamlit serves a default
    # page only at the root, so the second address is the same script as a hidden page.
    st.Page(
        "app_pages/explore.py",
        title="Explorer (2D)",
        icon=":material/explore:",
        url_path="home",
        default=True,
    ),
    st.Page(
        "app_pages/explore.py",
        title="Explorer (2D)",
        icon=":material/explore:",
        url_path="explore",
        visibility="hidden",
    ),
    st.Page(
        "app_pages/one_d.py", title="Change of variables (1D)", icon=":material/straighten:", url_path="1d"
    ),
    st.Page("app_pages/train.py", title="Train a flow", icon=":material/model_training:", url_path="train"),
    st.Page(
        "app_pages/structure.py", title="Jacobian structure", icon=":material/grid_on:", url_path="structure"
    ),
]
st.navigation(pages, position="top").run()
