"""``python -m flowviz``: see :mod:`flowviz.cli`."""

import sys

from flowviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
