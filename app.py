"""flowviz: the Streamlit shell. Navigation only; each page lives in app_pages/."""

import contextlib

import streamlit as st
import torch

from flowviz.ui import fairness

# Display formulas at text size (the layer formulas sit in a narrow column beside the sliders);
# one too wide for a phone scrolls sideways inside its own box instead of being cut off.
FORMULA_STYLE = (
    "<style>.katex-display > .katex { font-size: 1em; }"
    " .katex-display { overflow-x: auto; overflow-y: hidden; padding: 2px 0; }</style>"
)


def main() -> None:
    # One server process serves every visitor (and every training run): one intra-op
    # thread each keeps them from fighting over the cores, which costs far more than
    # it saves on grids of this size.
    torch.set_num_threads(1)

    st.set_page_config(page_title="flowviz: normalizing flows you can see", page_icon="🌀", layout="wide")
    st.html(FORMULA_STYLE)

    explorer = st.Page(
        "app_pages/explore.py", title="Explorer (2D)", icon=":material/explore:", url_path="explore"
    )

    def root() -> None:
        """The root address opens the Explorer at its own address (so the navigation marks it),
        keeping any ?spec= link."""
        st.switch_page(explorer, query_params=st.query_params.to_dict())

    # In the order of the ideas: the path through them first, triangular Jacobians before training.
    pages = [
        st.Page(root, title="Explorer (2D)", url_path="home", default=True, visibility="hidden"),
        st.Page("app_pages/start.py", title="Start here", icon=":material/school:", url_path="start"),
        explorer,
        st.Page(
            "app_pages/one_d.py",
            title="Change of variables (1D)",
            icon=":material/straighten:",
            url_path="1d",
        ),
        st.Page(
            "app_pages/structure.py",
            title="Jacobian structure",
            icon=":material/grid_on:",
            url_path="structure",
        ),
        st.Page(
            "app_pages/train.py", title="Train a flow", icon=":material/model_training:", url_path="train"
        ),
    ]
    page = st.navigation(pages, position="top")
    # While a page runs, training waits (flowviz.ui.fairness); not for the Train page, whose
    # visitor is watching the training.
    with fairness.quick_run() if page.url_path != "train" else contextlib.nullcontext():
        page.run()


# A training process (multiprocessing, "spawn") re-reads the main script as "__mp_main__":
# there it must draw nothing (Streamlit calls without a running app only log warnings).
if __name__ != "__mp_main__":
    main()
