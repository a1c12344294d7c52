"""The Explorer's session state: one canonical spec and the stack edits on it.

The spec is the single state of the Explorer. Widgets are keyed by a layer's
stable id (so moving a layer moves its controls with it) and by a generation
number that changes whenever the whole spec is replaced from outside (a preset,
an upload, the JSON editor, a link), so every control then starts afresh from
the new spec.
"""

from __future__ import annotations

import copy

import streamlit as st

from flowviz.errors import SpecError
from flowviz.presets import default_spec, new_layer
from flowviz.spec import decode_token, encode_token, parse_spec

SPEC = "fv_spec"
UIDS = "fv_uids"
GEN = "fv_gen"
NEXT_UID = "fv_next_uid"
SELECTED = "fv_selected"
NOTICE = "fv_notice"  # (kind, text) shown once at the top of the page
BASE = "base"
FULL_RERUN = "fv_full_rerun"  # set when a whole new spec is adopted: the whole page must redraw


def _uid() -> str:
    ss = st.session_state
    ss[NEXT_UID] = ss.get(NEXT_UID, 0) + 1
    return f"L{ss[NEXT_UID]}"


def init_state() -> None:
    """Once per session: the spec from the link (?spec=TOKEN), else the default flow."""
    ss = st.session_state
    if SPEC in ss:
        return
    ss[GEN] = 0
    spec = default_spec()
    token = st.query_params.get("spec")
    if token:
        try:
            spec = decode_token(token)
        except SpecError as error:
            notice("error", f"The flow in this link could not be opened: {error}. Showing the default flow.")
    replace_spec(spec)


def notice(kind: str, text: str) -> None:
    st.session_state[NOTICE] = (kind, text)


def take_notice() -> tuple[str, str] | None:
    return st.session_state.pop(NOTICE, None)


def current_spec() -> dict:
    return st.session_state[SPEC]


def generation() -> int:
    return st.session_state[GEN]


def uids() -> list[str]:
    return st.session_state[UIDS]


def replace_spec(spec: dict, select: str | None = None) -> None:
    """Adopt a whole new spec: fresh layer ids and fresh controls."""
    ss = st.session_state
    ss[SPEC] = parse_spec(spec)
    ss[UIDS] = [_uid() for _ in ss[SPEC]["layers"]]
    ss[GEN] = ss.get(GEN, 0) + 1
    ss[SELECTED] = select or (ss[UIDS][0] if ss[UIDS] else BASE)
    ss[FULL_RERUN] = True  # every control is new, the stack list outside the views included


def commit(spec: dict) -> None:
    """Keep an edited spec (already valid) as the current one; layer ids stay."""
    st.session_state[SPEC] = spec


# Longer request lines are refused by servers and proxies (Streamlit's own stops near 128 KB,
# many proxies far sooner): such a link could be copied but never opened.
MAX_LINK_CHARS = 32_000


def sync_url(spec: dict) -> str | None:
    """Keep ?spec=TOKEN in the address bar equal to what is on screen; return the token.

    A token longer than MAX_LINK_CHARS is not put there (None is returned): the bar
    then holds no spec rather than an address that cannot be opened or an older flow.
    """
    token = encode_token(spec)
    if len(token) > MAX_LINK_CHARS:
        if "spec" in st.query_params:
            del st.query_params["spec"]
        return None
    if st.query_params.get("spec") != token:
        st.query_params["spec"] = token
    return token


# ----------------------------------------------------------------------------- stack edits


def _index(uid: str) -> int:
    return uids().index(uid)


def _gone(uid: str) -> bool:
    """Whether the layer is no longer in the stack: a control of it still on the page (its run
    not yet drawn over, as after a preset was loaded) asks for nothing then."""
    return uid not in uids()


def _edit(mutate) -> bool:
    """Apply a stack edit; one the spec refuses (a layer beyond the limit) is shown, not made."""
    ss = st.session_state
    spec = copy.deepcopy(ss[SPEC])
    ids = list(ss[UIDS])
    mutate(spec["layers"], ids)
    try:
        ss[SPEC] = parse_spec(spec)
    except SpecError as error:
        notice("warning", f"Not changed: {error}.")
        return False
    ss[UIDS] = ids
    return True


def move(uid: str, offset: int) -> None:
    if _gone(uid):
        return

    def mutate(layers, ids):
        i = ids.index(uid)
        j = min(max(i + offset, 0), len(ids) - 1)
        layers.insert(j, layers.pop(i))
        ids.insert(j, ids.pop(i))

    _edit(mutate)


def duplicate(uid: str) -> None:
    if _gone(uid):
        return
    new = _uid()

    def mutate(layers, ids):
        i = ids.index(uid)
        layers.insert(i + 1, copy.deepcopy(layers[i]))
        ids.insert(i + 1, new)

    if _edit(mutate):
        st.session_state[SELECTED] = new


def remove(uid: str) -> None:
    if _gone(uid):
        return

    def mutate(layers, ids):
        i = ids.index(uid)
        del layers[i]
        del ids[i]

    i = _index(uid)
    _edit(mutate)
    rest = uids()
    st.session_state[SELECTED] = rest[min(i, len(rest) - 1)] if rest else BASE


def add(kind: str) -> None:
    new = _uid()

    def mutate(layers, ids):
        layers.append(new_layer(kind))
        ids.append(new)

    if _edit(mutate):
        st.session_state[SELECTED] = new


def set_enabled(uid: str, enabled: bool) -> None:
    if _gone(uid):
        return

    def mutate(layers, ids):
        layer = layers[ids.index(uid)]
        if enabled:
            layer.pop("enabled", None)
        else:
            layer["enabled"] = False

    _edit(mutate)
