"""The one error type of flowviz: a bad spec, data set or model file."""

from __future__ import annotations


class SpecError(ValueError):
    """Something the user wrote cannot be used.

    ``place`` says where (``layers[2] (planar)``, ``view.resolution``, ``line 3``),
    ``reason`` says what is wrong and what would be right. ``str(error)`` joins
    the two into the one line the CLI prints and the pages show.
    """

    def __init__(self, place: str, reason: str) -> None:
        self.place = place
        self.reason = reason
        super().__init__(f"{place}: {reason}" if place else reason)
