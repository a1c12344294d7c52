"""A least-recently-used cache bounded by the memory its values hold.

Grids are cached by the canonical spec so that a rerun with the same flow costs
nothing. One 512² grid of every array is about 20 MB, and a link may ask for
2048² (about 300 MB): a cache bounded by a number of entries alone could hold
gigabytes. This one counts the bytes of the NumPy arrays in each value (also
inside dicts, lists and tuples) and forgets the least recently used values
beyond its budget, always keeping the newest.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


def nbytes(value) -> int:
    """Bytes held by the NumPy arrays in ``value`` (a dict, list or tuple is searched)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 0


def array_cache(max_bytes: int, max_entries: int = 32) -> Callable:
    """Decorate a function of hashable arguments: its results are kept within ``max_bytes``
    and ``max_entries``. Safe to call from several threads: a call with the arguments of one
    still running waits for its result instead of computing it again."""

    def decorate(function: Callable) -> Callable:
        entries: OrderedDict = OrderedDict()
        running: dict = {}  # arguments being computed -> an event set when they are done
        lock = threading.Lock()
        held = 0

        @functools.wraps(function)
        def cached(*args):
            nonlocal held
            while True:
                with lock:
                    if args in entries:
                        entries.move_to_end(args)
                        return entries[args][0]
                    done = running.get(args)
                    if done is None:
                        running[args] = threading.Event()
                        break
                done.wait()  # then look again (had that call failed, this one computes)
            try:
                value = function(*args)
                size = nbytes(value)
                with lock:
                    if args not in entries:
                        entries[args] = (value, size)
                        held += size
                    while len(entries) > 1 and (held > max_bytes or len(entries) > max_entries):
                        _, (_, dropped) = entries.popitem(last=False)
                        held -= dropped
            finally:
                with lock:
                    running.pop(args).set()
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
