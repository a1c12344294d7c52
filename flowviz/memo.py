"""The one cache of flowviz: least recently used, bounded by the memory its values hold.

Grids are cached by the canonical spec so that a rerun with the same flow costs
nothing. One 512² grid of every array is about 20 MB, and a link may ask for
2048² (about 300 MB): a cache bounded by a number of entries alone could hold
gigabytes. This one counts the bytes each value holds (NumPy arrays and torch
tensors, strings and bytes, also inside dicts, lists, tuples, dataclasses and
plotly figures) and forgets the least recently used values beyond its budget,
always keeping the newest.

It is shared by every session's script thread: a call waits for the same call
running in another thread instead of computing it twice. Values are shared too,
so a caller must not change what it gets back.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np


def nbytes(value) -> int:
    """Bytes held by ``value``: its arrays, tensors, strings and bytes, searched through
    dicts (their values), lists, tuples, sets, dataclasses and plotly figures. A number counts
    8 bytes; ``None`` and other objects nothing; an object reached twice is counted once."""
    total, seen, pending = 0, set(), [value]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, (bool, int, float)):
            total += 8  # as a float64 would hold it (plotly keeps some numbers in lists)
        elif isinstance(item, complex):
            total += 16
        elif isinstance(item, str):
            total += len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            total += len(item) if not isinstance(item, memoryview) else item.nbytes
        elif isinstance(item, dict):
            pending.extend(item.values())  # the keys are names, short and shared
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            pending.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif _is_plotly_figure(item):
            pending.extend((item._data, item._layout))  # what the figure holds, not a copy of it
        elif isinstance(getattr(item, "nbytes", None), int):  # a torch tensor, among others
            total += item.nbytes
    return total


def _is_plotly_figure(value) -> bool:
    return (
        type(value).__module__.startswith("plotly") and hasattr(value, "_data") and hasattr(value, "_layout")
    )


def digest(*parts) -> bytes:
    """A 16-byte canonical key for ``parts``: arrays and tensors by dtype, shape and bytes,
    anything else by its ``repr`` (so numbers, strings and tuples of them)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if hasattr(part, "detach") and hasattr(part, "numpy"):  # a torch tensor
            part = part.detach().cpu().numpy()
        if isinstance(part, np.ndarray):
            h.update(f"array {part.dtype.str} {part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(f"{type(part).__name__} {part!r}".encode())
        h.update(b"\x00")
    return h.digest()


def array_cache(
    max_bytes: int, max_entries: int = 32, key: Callable[..., Hashable] | None = None
) -> Callable:
    """Decorate a function: its results are kept within ``max_bytes`` and ``max_entries``.

    Without ``key`` the arguments must be hashable, and are bound to the function's
    signature with its defaults, so ``f(a)``, ``f(a, 0)`` and ``f(a, seed=0)`` share an
    entry. With ``key``, ``key(*args, **kwargs)`` gives the canonical form of unhashable
    arguments (a :func:`digest` of arrays, a canonical JSON).

    Safe to call from several threads: a call with the arguments of one still running
    waits for its result instead of computing it again.
    """

    def decorate(function: Callable) -> Callable:
        entries: OrderedDict = OrderedDict()
        running: dict = {}  # arguments being computed -> an event set when they are done
        lock = threading.Lock()
        held = 0
        signature = inspect.signature(function)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        plain = all(p.kind in positional for p in signature.parameters.values())

        def key_of(args: tuple, kwargs: dict) -> Hashable:
            if key is not None:
                return key(*args, **kwargs)
            if plain and not kwargs and len(args) == len(signature.parameters):
                return args  # the common case, without binding
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return tuple(
                tuple(sorted(v.items()))
                if signature.parameters[k].kind is inspect.Parameter.VAR_KEYWORD
                else v
                for k, v in bound.arguments.items()
            )

        @functools.wraps(function)
        def cached(*args, **kwargs):
            nonlocal held
            k = key_of(args, kwargs)
            while True:
                with lock:
                    if k in entries:
                        entries.move_to_end(k)
                        return entries[k][0]
                    done = running.get(k)
                    if done is None:
                        running[k] = threading.Event()
                        break
                done.wait()  # then look again (had that call failed, this one computes)
            try:
                value = function(*args, **kwargs)
                size = nbytes(value)
                with lock:
                    if k not in entries:
                        entries[k] = (value, size)
                        held += size
                    while len(entries) > 1 and (held > max_bytes or len(entries) > max_entries):
                        _, (_, dropped) = entries.popitem(last=False)
                        held -= dropped
            finally:
                with lock:
                    running.pop(k).set()
            return value

        def cache_clear() -> None:
            nonlocal held
            with lock:
                entries.clear()
                held = 0

        def cache_bytes() -> int:
            return held

        cached.cache_clear = cache_clear
        cached.cache_bytes = cache_bytes
        cached.cache_len = lambda: len(entries)
        return cached

    return decorate
