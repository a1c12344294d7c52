"""The byte-bounded cache behind every cache of flowviz."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from flowviz.memo import array_cache, digest, nbytes


def test_nbytes_counts_arrays_inside_containers():
    value = {"a": np.zeros(10), "b": (np.zeros(3, dtype=np.float32), [np.zeros(2)]), "c": "text"}
    assert nbytes(value) == 80 + 12 + 16 + len("text")


def test_hits_return_the_same_object_and_misses_call_once():
    calls = []

    @array_cache(max_bytes=10_000)
    def build(n):
        calls.append(n)
        return {"a": np.zeros(n)}

    first = build(10)
    assert build(10) is first and calls == [10]
    build(11)
    assert calls == [10, 11] and build.cache_len() == 2
    assert build.cache_bytes() == 8 * 21


def test_least_recently_used_values_go_beyond_the_budget_and_the_newest_stays():
    @array_cache(max_bytes=8 * 250, max_entries=100)
    def build(n):
        return np.zeros(n)

    a, b = build(100), build(100 + 1)  # 1608 bytes: both fit
    assert build.cache_len() == 2
    assert build(100) is a  # a is now the most recently used
    build(102)  # 2424 bytes: b, the least recently used, goes
    assert build.cache_len() == 2 and build(100) is a
    assert build(101) is not b
    huge = build(10_000)  # over the budget alone: kept, as the only entry
    assert build.cache_len() == 1 and build(10_000) is huge


def test_entry_count_is_bounded_too():
    @array_cache(max_bytes=10**9, max_entries=3)
    def build(n):
        return np.zeros(1)

    for n in range(10):
        build(n)
    assert build.cache_len() == 3


def test_threads_share_one_consistent_cache():
    @array_cache(max_bytes=8 * 1000, max_entries=50)
    def build(n):
        return np.full(10, n, dtype=np.float64)

    problems = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for n in rng.integers(0, 200, 500):
            value = build(int(n))
            if value[0] != n:
                problems.append((n, value[0]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    assert build.cache_bytes() == 80 * build.cache_len() <= 8 * 1000


def test_a_call_waits_for_the_same_call_running_in_another_thread_instead_of_repeating_it():
    started, release = threading.Event(), threading.Event()
    calls = []

    @array_cache(max_bytes=10**6)
    def build(n):
        calls.append(n)
        started.set()
        release.wait(5)
        return np.full(3, n)

    results = []
    first = threading.Thread(target=lambda: results.append(build(7)))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: results.append(build(7)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first call, not computing
    release.set()
    first.join(5)
    second.join(5)
    assert calls == [7]
    assert [r.tolist() for r in results] == [[7, 7, 7], [7, 7, 7]]


def test_a_failed_call_lets_a_waiting_call_compute_for_itself():
    attempts = []

    @array_cache(max_bytes=10**6)
    def build(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return np.full(2, n)

    with pytest.raises(ValueError):
        build(3)
    assert build(3).tolist() == [3, 3]
    assert attempts == [3, 3]


def test_nbytes_counts_strings_bytes_tensors_dataclasses_and_figures():
    import dataclasses

    import plotly.graph_objects as go
    import torch

    assert nbytes("a" * 1000) == 1000
    assert nbytes("é" * 10) == 20  # UTF-8: two bytes each
    assert nbytes(b"\x00" * 300) == 300 and nbytes(bytearray(7)) == 7
    assert nbytes(torch.zeros(5, 4, dtype=torch.float64)) == 160
    assert nbytes(3.5) == 8 and nbytes([1, 2.0, True]) == 24 and nbytes(None) == 0

    @dataclasses.dataclass(frozen=True)
    class Held:
        values: np.ndarray
        label: str

    assert nbytes([Held(np.zeros(6), "xy")]) == 48 + 2
    shared = np.zeros(100)
    assert nbytes((shared, shared, {"again": shared})) == 800  # one array, counted once

    z = np.zeros((200, 300))
    figure = go.Figure(go.Heatmap(z=z))
    assert z.nbytes <= nbytes(figure) < z.nbytes + 2000  # the array and a few short strings
    assert nbytes({"figures": [figure]}) == nbytes(figure)


def test_a_cache_of_strings_is_bounded_by_their_bytes():
    @array_cache(max_bytes=10_000, max_entries=1000)
    def text(n):
        return "x" * 3000 + str(n)

    for n in range(10):
        text(n)
    assert text.cache_len() == 3 and text.cache_bytes() == 3 * 3001


def test_defaults_and_keywords_share_the_entry_of_the_same_call():
    calls = []

    @array_cache(max_bytes=10**6)
    def draws(name, n, seed=0):
        calls.append((name, n, seed))
        return np.full(n, seed)

    first = draws("a", 3)
    assert draws("a", 3, 0) is first and draws("a", n=3, seed=0) is first and draws(n=3, name="a") is first
    assert draws("a", 3, seed=1) is not first
    assert calls == [("a", 3, 0), ("a", 3, 1)]


def test_a_key_gives_unhashable_arguments_their_canonical_form():
    calls = []

    @array_cache(max_bytes=10**6, key=lambda values, label: digest(values, label))
    def total(values, label):
        calls.append(label)
        return f"{label}={values.sum()}"

    a = np.arange(6.0)
    assert total(a, "s") == "s=15.0"
    assert total(a.copy(), "s") == "s=15.0" and calls == ["s"]  # equal contents: one call
    total(a.reshape(2, 3), "s")  # same bytes, another shape: another key
    total(a.astype(np.float32), "s")  # same values, another dtype: another key
    assert len(calls) == 3


def test_digest_reads_tensors_as_arrays_and_tells_types_apart():
    import torch

    assert digest(torch.arange(4.0, dtype=torch.float64)) == digest(np.arange(4.0))
    assert digest(1) != digest("1") and digest(1, 2) != digest(12)
    assert digest((1.0, 2.0)) == digest((1.0, 2.0))


def test_variable_arguments_keep_their_shape_in_the_key():
    @array_cache(max_bytes=10**6)
    def joined(*parts, **named):
        return repr((parts, sorted(named.items())))

    assert joined(1, 2) == "((1, 2), [])"
    assert joined((1, 2)) == "(((1, 2),), [])"  # one tuple is not two numbers
    assert joined(1, b=2, a=3) is joined(1, a=3, b=2)
    assert joined.cache_len() == 3
