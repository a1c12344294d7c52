"""The command line: ``python -m flowviz evaluate | train | score | sample``.

Every command reports a problem with its input as one line on standard error,
with no traceback, exits with status 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from flowviz.errors import SpecError

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line usage, reported like argparse does (status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see --help)")


def write_atomically(path: Path, write: Callable[[object], None], mode: str = "wb") -> None:
    """Write through a temporary file in the same folder, renamed into place when complete."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(str(path), f"cannot write: the folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_evaluate(args: argparse.Namespace) -> int:
    from flowviz.grid import evaluate
    from flowviz.spec import MAX_RESOLUTION

    if args.resolution is not None and not 2 <= args.resolution <= MAX_RESOLUTION:
        raise SpecError("--resolution", f"{args.resolution}, but it must be between 2 and {MAX_RESOLUTION}")
    arrays = evaluate(Path(args.spec), resolution=args.resolution)
    write_atomically(Path(args.out), lambda handle: np.savez(handle, **arrays))
    n = len(arrays["x"])
    print(f"wrote {args.out}: {n}x{n} grid, mass in view {float(arrays['mass']):.6f}", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"evaluate": cmd_evaluate}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m flowviz",
        description="Normalizing flows from the command line: evaluate a flow spec on a grid, "
        "train a flow on 2D data, score data under a trained model, sample from it.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a flow spec on its view's grid and write the arrays to an .npz file",
        description="Evaluate the flow described by SPEC.json on the grid of its view. "
        "OUT.npz receives x, y, density, log_density, base_log_prob, log_det_inverse "
        "(log_density = base_log_prob + log_det_inverse), log_det_forward and mass "
        "(the probability the window holds).",
    )
    evaluate.add_argument("spec", metavar="SPEC.json", help="the flow spec (see flow-spec.md)")
    evaluate.add_argument("--out", required=True, metavar="OUT.npz", help="where to write the arrays")
    evaluate.add_argument(
        "--resolution", type=int, metavar="N", help="grid points per axis (overrides the spec's view)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except SpecError as error:
        print(str(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
