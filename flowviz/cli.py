"""The command line: ``python -m flowviz evaluate | train | score | sample``.

Every command reports a problem with its input as one line on standard error,
with no traceback, exits with status 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import math
import os
import signal
import sys
import tempfile
import threading
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


def check_writable(text: str, inputs: Sequence[str | Path] = ()) -> Path:
    """An output path that can be written: named, not a folder, in a folder that exists and can be written,
    and not something that would be destroyed by writing there.

    Checked before any work, so a mistake costs nothing: an existing path that is a
    symbolic link, a pipe, a device or a socket is refused (the write would replace
    it by a regular file: ``--out /dev/null`` as root would replace the system's),
    and so is any of the command's own ``inputs`` (``train data.csv --out data.csv``).
    """
    if not text.strip():
        raise SpecError("--out", "is empty: name the file to write")
    path = Path(text)
    if path.is_symlink():
        raise SpecError(str(path), "is a symbolic link; name a new file or a regular file to replace")
    if path.is_dir():
        raise SpecError(str(path), "is a folder: name a file to write")
    if path.exists() and not path.is_file():
        raise SpecError(str(path), "is not a regular file (a pipe, device or socket); name a file to write")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(str(path), f"cannot write: the folder {str(folder)!r} does not exist")
    for source in inputs:
        with contextlib.suppress(OSError):
            if path.exists() and os.path.samefile(path, source):
                raise SpecError(str(path), f"is the input {str(source)!r}: writing there would destroy it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SpecError(str(path), f"cannot write: the folder {str(folder)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise SpecError(str(path), "cannot write: the file is read-only")
    return path


def check_readable(text: str) -> Path:
    """An input path that names a regular file, if it exists (a missing file is reported by its reader).

    A pipe would block the command until something writes to it, a device such as
    /dev/zero would be read until memory runs out: both are refused before reading.
    """
    path = Path(text)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise SpecError(
            str(path), "is not a regular file (a pipe, device or socket); give the path of a file"
        )
    return path


PARTIAL = ".partial-"  # an unfinished output is OUT.partial-PID-XXXX: visible, and named for what it is


def _remove_abandoned_partials(path: Path, folder: Path) -> None:
    """Remove OUT.partial-PID-* left by a process that was killed outright (SIGKILL) while writing OUT."""
    for leftover in folder.glob(f"{glob.escape(path.name)}{PARTIAL}*"):
        pid = leftover.name[len(path.name) + len(PARTIAL) :].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its writer is gone: nobody will finish it
            leftover.unlink(missing_ok=True)
        except OSError:
            pass


def write_atomically(path: Path, write: Callable[[object], None], mode: str = "wb") -> None:
    """Write through OUT.partial-PID-XXXX in the same folder, renamed to OUT when complete.

    On any failure, an interrupt or SIGTERM the partial file is removed; one left by
    SIGKILL (nothing runs then) is not hidden, and the next write of OUT removes it.
    """
    path = check_writable(str(path))
    folder = path.parent if str(path.parent) else Path(".")
    _remove_abandoned_partials(path, folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{path.name}{PARTIAL}{os.getpid()}-")
    except OSError as error:
        raise SpecError(str(path), f"cannot write ({error.strerror})") from None
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would make it (mkstemp makes it private)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise SpecError(str(path), f"cannot write ({error.strerror})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_evaluate(args: argparse.Namespace) -> int:
    from flowviz.grid import evaluate
    from flowviz.spec import MAX_RESOLUTION

    if args.resolution is not None and not 2 <= args.resolution <= MAX_RESOLUTION:
        raise SpecError("--resolution", f"{args.resolution}, but it must be between 2 and {MAX_RESOLUTION}")
    out = check_writable(args.out, inputs=[args.spec])
    try:
        arrays = evaluate(check_readable(args.spec), resolution=args.resolution, t=args.t)
    except SpecError as error:
        if error.place != "t":
            raise
        raise SpecError("--t", error.reason) from None
    write_atomically(out, lambda handle: np.savez(handle, **arrays))
    n = len(arrays["x"])
    print(f"wrote {args.out}: {n}x{n} grid, mass in view {float(arrays['mass']):.6f}", file=sys.stderr)
    return 0


def _positive(kind: type, name: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0 of the given kind (int or float)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (value > 0 and value < float("inf")):
            raise argparse.ArgumentTypeError(f"{name} must be positive, got {text}")
        return value

    return parse


def _finite(text: str) -> float:
    """An argparse type: any finite number (its range is checked where it is used)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _seed(text: str) -> int:
    """An argparse type: a random seed, a whole number from 0 to 2^63 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"the seed must be between 0 and 2^63 - 1, got {text}")
    return value


# Every core, as a command-line user expects; the app's training processes keep to one thread.
DEFAULT_THREADS = os.cpu_count() or 1


def _threads(text: str) -> int:
    """An argparse type: a thread count from 1 to the number of cores."""
    cores = os.cpu_count() or 1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threads must be a whole number, got {text!r}") from None
    if not 1 <= value <= cores:
        raise argparse.ArgumentTypeError(
            f"threads must be between 1 and {cores} (this machine's cores), got {text}"
        )
    return value


def cmd_train(args: argparse.Namespace) -> int:
    import math

    import torch

    from flowviz.data import read_csv
    from flowviz.model_io import model_bytes
    from flowviz.train import Trainer, check_trainable, default_training

    out = check_writable(args.out, inputs=[args.data])  # before anything is read or trained
    points = check_trainable(read_csv(check_readable(args.data)), place=args.data)
    torch.set_num_threads(args.threads)
    trainer = Trainer(points, *default_training(args.seconds, args.steps, args.seed, args.model))
    print(
        f"training a {args.model} flow on {len(points)} points from {args.data} "
        f"({len(trainer.train_points)} to train, {len(trainer.val_points)} to validate)",
        file=sys.stderr,
    )
    for record in trainer.progress(slice_seconds=1.0):
        val = f"{record.val_nll:.4f}" if record.val_nll is not None else "-"
        print(
            f"step {record.step:6d}  train NLL {record.train_nll:8.4f}  val NLL {val:>8}  "
            f"{record.steps_per_second:6.0f} steps/s  lr {record.lr:.2e}",
            file=sys.stderr,
        )
        for event in record.events:
            print(f"  note: {event}", file=sys.stderr)
    title = f"{args.model} flow trained on {Path(args.data).name}"
    data = model_bytes(trainer.result(title))
    write_atomically(out, lambda handle: handle.write(data))
    best = trainer.best_val_nll
    best_text = f", best validation NLL {best:.4f} at step {trainer.best_step}" if best is not None else ""
    if best is not None and not math.isfinite(best):
        best_text = ""
    print(
        f"wrote {out}: {trainer.step_count} steps in {trainer.active_seconds:.1f} s{best_text}",
        file=sys.stderr,
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from flowviz.data import read_csv
    from flowviz.model_io import load_model
    from flowviz.train import mean_nll

    model_path, data_path = check_readable(args.model), check_readable(args.data)
    model = load_model(model_path)
    points = read_csv(data_path)
    nll = mean_nll(model.flow, points)
    print(f"mean negative log-likelihood of {len(points)} points, nats per point:", file=sys.stderr)
    print(repr(nll))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from flowviz.data import csv_text
    from flowviz.grid import as_float64
    from flowviz.model_io import load_model

    if args.n > MAX_SAMPLES:
        raise SpecError("--n", f"{args.n}, but at most {MAX_SAMPLES} samples can be drawn at once")
    out = check_writable(args.out, inputs=[args.model])
    model = load_model(check_readable(args.model))
    with torch.no_grad():
        samples = as_float64(model.flow).sample(args.n, seed=args.seed).numpy()
    text = csv_text(samples)
    write_atomically(out, lambda handle: handle.write(text), mode="w")
    print(f"wrote {args.out}: {args.n} samples", file=sys.stderr)
    return 0


MAX_SAMPLES = 10_000_000

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "evaluate": cmd_evaluate,
    "train": cmd_train,
    "score": cmd_score,
    "sample": cmd_sample,
}


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
    evaluate.add_argument(
        "--t",
        type=_finite,
        metavar="T",
        help="the flow at time T, from 0 (the base) to K (all K active layers): "
        "the first floor(T) layers, then the next one part of the way",
    )
    _add_training_commands(commands)
    return parser


def _add_training_commands(commands) -> None:
    data_help = "CSV file: two numeric columns x, y, one point per line, an optional header line"
    train = commands.add_parser(
        "train",
        help="train a flow on 2D points from a CSV file and save the model",
        description="Fit a normalizing flow to the points in DATA.csv by maximum likelihood "
        "(Adam, cosine learning-rate schedule, 10% of the points held out to keep the best model). "
        "Training stops after --seconds of wall clock or --steps steps, whichever comes first. "
        "Progress goes to standard error; MODEL is written only when training has finished.",
    )
    train.add_argument("data", metavar="DATA.csv", help=data_help)
    train.add_argument(
        "--out", required=True, metavar="MODEL", help="where to write the model (.safetensors)"
    )
    train.add_argument(
        "--seconds",
        type=_positive(float, "--seconds"),
        default=30.0,
        metavar="S",
        help="training time limit in seconds of wall clock (default 30)",
    )
    train.add_argument(
        "--steps",
        type=_positive(int, "--steps"),
        metavar="N",
        help="at most N optimisation steps (default: no limit)",
    )
    train.add_argument(
        "--model",
        choices=["nsf", "realnvp"],
        default="nsf",
        help="nsf: neural spline couplings (default); realnvp: affine couplings",
    )
    train.add_argument("--seed", type=_seed, default=0, metavar="K", help="random seed (default 0)")
    train.add_argument(
        "--threads",
        type=_threads,
        default=DEFAULT_THREADS,
        metavar="T",
        help=f"torch threads, at most the machine's cores (default {DEFAULT_THREADS}: all of them)",
    )

    score = commands.add_parser(
        "score",
        help="print the mean negative log-likelihood of CSV points under a trained model",
        description="Print the mean negative log-likelihood -log p(x) of the points in DATA.csv under MODEL, "
        "in nats per point, in the data's own coordinates, as the last line of standard output.",
    )
    score.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    score.add_argument("data", metavar="DATA.csv", help=data_help)

    sample = commands.add_parser(
        "sample",
        help="draw samples from a trained model into a CSV file",
        description="Draw N points from MODEL (base samples pushed through the flow) and write them "
        "to OUT.csv with an x,y header.",
    )
    sample.add_argument("model", metavar="MODEL", help="a model file written by 'train'")
    sample.add_argument(
        "--n", type=_positive(int, "--n"), required=True, metavar="N", help="how many samples"
    )
    sample.add_argument("--out", required=True, metavar="OUT.csv", help="where to write the samples")
    sample.add_argument("--seed", type=_seed, default=0, metavar="K", help="random seed (default 0)")


def _terminated(signum, frame) -> None:
    """SIGTERM as an interrupt: the ``finally`` and ``except`` blocks run, so no partial output stays."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
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
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
