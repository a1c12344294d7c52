"""flowviz: normalizing flows you can see and touch.

The core (everything here but ``flowviz.ui``) never imports Streamlit:

>>> import flowviz
>>> arrays = flowviz.evaluate({"base": {"type": "gaussian"}, "layers": [{"type": "rotation", "degrees": 30}]})
>>> round(float(arrays["mass"]), 3)
0.999
"""

from flowviz.errors import SpecError
from flowviz.flow import Flow
from flowviz.grid import deformed_grid, evaluate, evaluate_flow
from flowviz.spec import decode_token, encode_token, parse_spec

__all__ = [
    "Flow",
    "SpecError",
    "decode_token",
    "deformed_grid",
    "encode_token",
    "evaluate",
    "evaluate_flow",
    "parse_spec",
]
__version__ = "0.1.0"
