"""Text a person supplied (a file's name, a message quoting it), shown as itself inside Streamlit markdown."""

from __future__ import annotations

import re

# The characters that act inside a line of Streamlit's markdown: emphasis (* _ ~), code (`), links and
# images ([ ]), HTML and entities (< > &), LaTeX ($), icons, emoji and colours (:smile:, :red[...]), and
# the backslash itself. CommonMark lets a backslash escape each of them. (Characters that act only at
# the start of a line, # - + 1., are left alone: a name is always shown inside a sentence.)
_MARKUP = re.compile(r"([\\`*_\[\]<>&$~:])")


def literal(text: str) -> str:
    """``text`` escaped so that markdown shows it, inside a line, character for character (no links, emphasis or LaTeX).

    A file named ``[click](http://x).json`` or ``**$x$**.csv`` is shown with that name,
    not as a link or bold formula; line breaks become spaces (a name is one line).
    """
    return _MARKUP.sub(r"\\\1", " ".join(str(text).splitlines()))
