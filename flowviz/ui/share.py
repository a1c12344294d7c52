"""Share and reproduce: the link, the JSON file, a Python snippet, and the JSON editor."""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import streamlit as st

from flowviz.errors import SpecError
from flowviz.spec import encode_token, parse_spec, spec_to_json
from flowviz.ui import state
from flowviz.ui.text import literal

JSON_KEY = "fv_json_text"
JSON_ERROR = "fv_json_error"
JSON_GENERATION = "fv_json_generation"  # a new one for each discarded edit
UPLOAD_KEY = "fv_upload"
UPLOAD_ERROR = "fv_upload_error"


def page_url(token: str, extra: dict[str, str] | None = None) -> str:
    """The address that reproduces this screen: ?spec=TOKEN, then ``extra`` query parameters."""
    base = ""
    try:
        base = (st.context.url or "").split("?")[0]
    except Exception:  # no browser context (tests): a relative link still works
        base = ""
    rest = "".join(f"&{name}={urllib.parse.quote(value, safe=',')}" for name, value in (extra or {}).items())
    return f"{base}?spec={token}{rest}"


def python_snippet(spec: dict) -> str:
    """A script that rebuilds this screen's flow; it says how it is run (``make`` installs flowviz
    into the project's environment, so it runs from any folder with that environment's python)."""
    return (
        '"""This flow, rebuilt in Python. Run it with the python of flowviz\'s environment, from any folder:\n\n'
        "    /path/to/flowviz/.venv/bin/python flow.py    (after `make run` or `make test` there)\n"
        '"""\n\n'
        "import flowviz\n\n"
        f"spec = {json.dumps(spec, indent=4)}\n\n"
        "arrays = flowviz.evaluate(spec)  # x, y, density, log_density, base_log_prob, ...\n"
        "print(f\"Mass in view: {float(arrays['mass']):.4f}\")  # as the Explorer shows it\n"
        "flow = flowviz.Flow.from_spec(spec)\n"
        "samples = flow.sample(1000, seed=0)\n"
    )


def too_long_for_a_link(spec: dict) -> str:
    """The warning shown instead of a link when the spec's token exceeds state.MAX_LINK_CHARS."""
    return (
        f"This flow is too large for a link: its address would be {len(encode_token(spec)):,} characters, "
        f"more than the {state.MAX_LINK_CHARS:,} a web address can carry reliably. The address bar no longer "
        "holds it, so a reload would not bring it back: **Download spec (JSON)** under Share keeps it, "
        "and uploading that file restores it."
    )


def link_box(token: str, what: str = "screen", note: str = "", extra: dict[str, str] | None = None) -> None:
    """The link that reproduces ``what`` is on screen, ready to copy (the code box's copy button)."""
    st.markdown(f"**Link to exactly this {what}**{note}:")
    st.code(page_url(token, extra), language=None, wrap_lines=True)


def share_panel(spec: dict, token: str | None, extra: dict[str, str] | None = None) -> None:
    """The link (with ``extra`` query parameters: the view options), the downloads and the upload."""
    if token is None:
        st.warning(too_long_for_a_link(spec))
    else:
        link_box(token, note=" (the address bar holds the same link)", extra=extra)
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download spec (JSON)",
        spec_to_json(spec),
        file_name="flow-spec.json",
        mime="application/json",
        width="stretch",
        key="fv_download",
    )
    c2.download_button(
        "Download as Python",
        python_snippet(spec),
        file_name="flow.py",
        mime="text/x-python",
        width="stretch",
        key="fv_download_py",
    )
    with st.popover("Export as Python", width="stretch"):
        st.code(python_snippet(spec), language="python")
        st.caption("Or from a shell: `python -m flowviz evaluate flow-spec.json --out arrays.npz`")
    st.file_uploader(
        "Upload a spec (JSON)",
        type=["json"],
        key=UPLOAD_KEY,
        on_change=_load_upload,
        help="A flow spec file, as the download button writes it.",
    )
    error = st.session_state.get(UPLOAD_ERROR)
    if error:
        st.error(f"That file was not loaded, the current flow is kept: {literal(error)}")


def _load_upload() -> None:
    ss = st.session_state
    ss[UPLOAD_ERROR] = None
    upload = ss.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        spec = parse_spec(upload.getvalue())
    except SpecError as error:
        ss[UPLOAD_ERROR] = str(error)
        return
    state.replace_spec(spec)
    state.notice("success", f"Loaded the flow from {literal(upload.name)}.")


def _json_key(spec: dict) -> str:
    """The text area's key follows the spec: a new spec gets a fresh text area holding its JSON.

    (Writing a widget's value from the script on every run would make the browser
    drop key presses on other controls while a run is in flight.)
    """
    digest = hashlib.sha1(spec_to_json(spec).encode()).hexdigest()[:12]
    return f"{JSON_KEY}.{digest}.{st.session_state.get(JSON_GENERATION, 0)}"


def absorb_json_edit() -> bool:
    """Before any control is drawn: adopt a committed edit of the JSON text (True), or keep its error."""
    ss = st.session_state
    spec = state.current_spec()
    text = ss.get(_json_key(spec))
    if text is None or text == spec_to_json(spec):
        ss[JSON_ERROR] = None
        return False
    try:
        edited = parse_spec(text)
    except SpecError as error:
        ss[JSON_ERROR] = str(error)
        return False
    ss[JSON_ERROR] = None
    state.replace_spec(edited)
    state.notice("success", "Applied the edited JSON.")
    return True


def json_editor(spec: dict) -> None:
    ss = st.session_state
    st.text_area(
        "Flow spec (JSON): edit and press Ctrl+Enter to apply",
        value=spec_to_json(spec),
        key=_json_key(spec),
        height=320,
        help="The whole flow as one JSON document: base, layers, view. Every control above edits it.",
    )
    if ss.get(JSON_ERROR):
        st.error(f"Not applied: {ss[JSON_ERROR]}")
        st.button("Discard my edit", on_click=_discard_json_edit, args=(spec,), key="fv_json_discard")


def _discard_json_edit(spec: dict) -> None:
    """A new text area holding the spec's JSON: the browser keeps a widget's text under its old key
    (dropping the key's state alone left the bad text on screen, to be sent again)."""
    ss = st.session_state
    ss.pop(_json_key(spec), None)
    ss[JSON_ERROR] = None
    ss[JSON_GENERATION] = ss.get(JSON_GENERATION, 0) + 1
