"""Benchmarks, and the helpers that browser tests and benchmarks share (``bench.support``)."""
