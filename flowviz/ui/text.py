"""Text a person supplied (a file's name, a message quoting it), shown as itself inside Streamlit markdown."""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation; $ also starts LaTeX in Streamlit's markdown.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&=^\"'])")


def literal(text: str) -> str:
    """``text`` escaped so that markdown shows it character for character (no links, emphasis or LaTeX).

    A file named ``[click](http://x).json`` or ``**$x$**.csv`` is shown with that name,
    not as a link or bold formula; line breaks become spaces (a name is one line).
    """
    return _MARKUP.sub(r"\\\1", " ".join(str(text).splitlines()))
