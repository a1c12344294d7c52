"""flowviz installed in its environment: the Explorer's Python download and the CLI run from any folder.

These run the environment's own python (``sys.executable``) in a temporary folder outside the
project, with no PYTHONPATH: they pass only where ``make`` has installed the package itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from flowviz.spec import encode_token, parse_spec
from flowviz.ui.share import python_snippet

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app_pages" / "explore.py")
SPEC = {
    "base": {"type": "gaussian", "mean": [0.3, -0.2], "cov": [[1.0, 0.3], [0.3, 0.8]]},
    "layers": [{"type": "rotation", "degrees": 30}, {"type": "planar", "w": [2, 0], "u": [0.8, 0.4], "b": 0}],
    "view": {"xlim": [-3, 3], "ylim": [-3, 3], "resolution": 96},
}


def _outside_the_project(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    assert ROOT not in folder.resolve().parents, "the check must run outside the project"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_downloaded_snippet_runs_from_any_folder_and_prints_the_pages_mass(tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["spec"] = encode_token(parse_spec(SPEC))
    at.run()
    shown = next(m.value for m in at.metric if m.label == "Mass in view")
    script = tmp_path / "flow.py"
    script.write_text(python_snippet(parse_spec(SPEC)))
    run = _outside_the_project([sys.executable, str(script)], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    printed = re.search(r"Mass in view: (\S+)", run.stdout)
    assert printed and printed.group(1) == shown, (run.stdout, shown)
    assert "python flow.py" in script.read_text()  # the snippet says how it is run


def test_command_line_runs_from_any_folder(tmp_path):
    (tmp_path / "flow.json").write_text(json.dumps(SPEC))
    run = _outside_the_project(
        [sys.executable, "-m", "flowviz", "evaluate", "flow.json", "--out", "arrays.npz"], tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "arrays.npz").stat().st_size > 0
