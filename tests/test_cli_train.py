"""The train / score / sample commands, run as a person runs them: subprocesses.

Happy paths with small --steps; then every kind of bad input: exit status 2, one
clear line on standard error, no traceback, and nothing written.
"""

from __future__ import annotations

import math
import os
import signal
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flowviz.data import csv_text, read_csv, toy_set

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def flowviz(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flowviz", *map(str, args)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    points = toy_set("two_moons", 600, seed=5)
    (folder / "moons.csv").write_text(csv_text(points))
    (folder / "moons_px.csv").write_text(csv_text(points * 50.0 + 400.0))
    bad = {
        "empty.csv": "",
        "one_column.csv": "x\n1\n2\n3\n",
        "text.csv": "x,y\n1,2\n3,four\n",
        "nan.csv": "1,2\nnan,3\n4,5\n",
        "inf.csv": "1,2\n3,inf\n4,5\n",
        "one_point.csv": "x,y\n1,2\n",
        "no_spread.csv": "1,2\n1,3\n1,4\n",
        "huge.csv": "1e308,1\n-1e308,3\n1e307,2\n",
        "beyond_float32.csv": "1e39,1\n-1e39,3\n5e38,2\n",
        "below_float32.csv": "1,1e-39\n1.5,-1e-39\n2,0\n",
        "long_field.csv": "x,y\n1,2\n1," + "2" * 200_000 + "\n",
    }
    for name, text in bad.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def trained(work) -> dict[str, Path]:
    """Models trained in parallel on the same points in two units (for the 2 log 50 check)."""
    jobs = {
        "moons": ("moons.csv", "moons.safetensors"),
        "moons_px": ("moons_px.csv", "moons_px.safetensors"),
    }
    with ThreadPoolExecutor(2) as pool:
        results = dict(
            zip(
                jobs,
                pool.map(
                    # a time limit far beyond 100 steps: the schedule follows steps alone, so the
                    # two runs stay step for step alike on a loaded machine
                    lambda job: flowviz(
                        "train",
                        job[0],
                        "--out",
                        job[1],
                        "--steps",
                        "100",
                        "--seconds",
                        "600",
                        "--seed",
                        "3",
                        "--threads",  # two runs side by side: one core each
                        "1",
                        cwd=work,
                    ),
                    jobs.values(),
                ),
                strict=True,
            )
        )
    for name, result in results.items():
        assert result.returncode == 0, result.stderr
        assert (work / jobs[name][1]).exists()
    return {name: work / out for name, (_, out) in jobs.items()} | {"stderr": results["moons"].stderr}


@pytest.fixture(scope="module")
def runs(work, trained) -> dict[str, subprocess.CompletedProcess]:
    """The happy-path commands after training, run in parallel."""
    calls = {
        "score": ["score", trained["moons"], "moons.csv"],
        "score_px": ["score", trained["moons_px"], "moons_px.csv"],
        "sample": ["sample", trained["moons"], "--n", "500", "--out", "samples.csv", "--seed", "7"],
        "sample_again": ["sample", trained["moons"], "--n", "500", "--out", "again.csv", "--seed", "7"],
    }
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda call: flowviz(*call, cwd=work), calls.values()))
    return dict(zip(calls, results, strict=True))


def test_train_reports_progress_and_writes_the_model(trained):
    stderr = trained["stderr"]
    assert "train NLL" in stderr and "steps/s" in stderr
    assert "wrote moons.safetensors: 100 steps" in stderr
    assert "Traceback" not in stderr


def test_score_prints_the_nll_as_the_last_line(runs):
    result = runs["score"]
    assert result.returncode == 0, result.stderr
    value = float(result.stdout.strip().splitlines()[-1])
    assert 0.5 < value < 3.0  # two moons, noise 0.1: entropy about 1.4 nats


def test_nll_is_in_the_data_units_pixels_shift_it_by_2_log_50(runs):
    plain, pixels = runs["score"], runs["score_px"]
    shift = float(pixels.stdout.splitlines()[-1]) - float(plain.stdout.splitlines()[-1])
    # Standardisation makes both runs see the same points, to float32 rounding.
    assert shift == pytest.approx(2 * math.log(50.0), abs=0.01)


def test_sample_writes_n_points_as_csv(work, runs):
    assert runs["sample"].returncode == 0, runs["sample"].stderr
    samples = read_csv(work / "samples.csv")
    assert samples.shape == (500, 2)
    assert (work / "samples.csv").read_text().startswith("x,y\n")
    assert runs["sample_again"].returncode == 0
    assert np.array_equal(read_csv(work / "again.csv"), samples)  # the seed fixes the draws
    data = read_csv(work / "moons.csv")
    assert np.abs(samples.mean(0) - data.mean(0)).max() < 0.3


@pytest.mark.parametrize("command", [None, "train", "score", "sample"])
def test_help_explains_each_command(command, capsys):
    from flowviz.cli import main

    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text and len(text) > 200
    if command is None:
        assert all(word in text for word in ("train", "score", "sample", "evaluate"))


BAD_CALLS = {
    "train: empty file": (["train", "empty.csv", "--out", "out/m.safetensors"], "empty"),
    "train: one column": (["train", "one_column.csv", "--out", "out/m.safetensors"], "1 column"),
    "train: text": (["train", "text.csv", "--out", "out/m.safetensors"], "'four' is not a number"),
    "train: NaN": (["train", "nan.csv", "--out", "out/m.safetensors"], "not a finite number"),
    "train: inf": (["train", "inf.csv", "--out", "out/m.safetensors"], "not a finite number"),
    "train: one point": (["train", "one_point.csv", "--out", "out/m.safetensors"], "only 1 point"),
    "train: no spread": (["train", "no_spread.csv", "--out", "out/m.safetensors"], "no spread in x"),
    "train: missing file": (["train", "missing.csv", "--out", "out/m.safetensors"], "no such file"),
    "train: zero seconds": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--seconds", "0"],
        "positive",
    ),
    "train: seconds not a number": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--seconds", "soon"],
        "must be a number",
    ),
    "train: negative steps": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--steps", "-5"],
        "positive",
    ),
    "train: unknown model": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--model", "maf"],
        "invalid choice",
    ),
    "train: no such folder": (["train", "moons.csv", "--out", "nowhere/m.safetensors"], "does not exist"),
    "train: values too large": (["train", "huge.csv", "--out", "out/m.safetensors"], "too large"),
    "train: beyond float32": (
        ["train", "beyond_float32.csv", "--out", "out/m.safetensors"],
        "beyond_float32.csv: the x values reach 1e+39, beyond float32's range",
    ),
    "train: below float32": (
        ["train", "below_float32.csv", "--out", "out/m.safetensors"],
        "below_float32.csv: the y values have a standard deviation of 8.16e-40, below float32's range",
    ),
    "train: a field too long": (["train", "long_field.csv", "--out", "out/m.safetensors"], "line 3"),
    "train: out is a folder": (["train", "moons.csv", "--out", "out"], "is a folder"),
    "train: out is empty": (["train", "moons.csv", "--out", ""], "is empty"),
    "train: too many threads": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--threads", "100000"],
        "threads must be between 1 and",
    ),
    "train: negative seed": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--seed", "-1"],
        "seed must be between",
    ),
    "train: seed beyond 64 bits": (
        ["train", "moons.csv", "--out", "out/m.safetensors", "--seed", "9" * 23],
        "seed must be between",
    ),
    "score: a CSV as the model": (["score", "moons.csv", "moons.csv"], "not a flowviz model"),
    "score: truncated model": (["score", "truncated.safetensors", "moons.csv"], "truncated"),
    "score: missing model": (["score", "missing.safetensors", "moons.csv"], "no such file"),
    "score: bad data": (["score", "model_copy.safetensors", "nan.csv"], "not a finite number"),
    "sample: not a model": (
        ["sample", "moons.csv", "--n", "10", "--out", "out/s.csv"],
        "not a flowviz model",
    ),
    "sample: zero points": (
        ["sample", "model_copy.safetensors", "--n", "0", "--out", "out/s.csv"],
        "positive",
    ),
    "sample: out is a folder": (
        ["sample", "model_copy.safetensors", "--n", "10", "--out", "out"],
        "is a folder",
    ),
    "sample: seed beyond 64 bits": (
        ["sample", "model_copy.safetensors", "--n", "3", "--out", "out/s.csv", "--seed", "9" * 23],
        "seed must be between",
    ),
    "sample: no such folder": (
        ["sample", "model_copy.safetensors", "--n", "10", "--out", "nowhere/s.csv"],
        "does not exist",
    ),
}


SUBPROCESS_CASES = [
    "train: empty file",
    "train: NaN",
    "train: no spread",
    "score: truncated model",
    "sample: zero points",
]


def _prepare_bad_inputs(work: Path, trained) -> None:
    data = trained["moons"].read_bytes()
    (work / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (work / "model_copy.safetensors").write_bytes(data)
    (work / "out").mkdir(exist_ok=True)


@pytest.fixture(scope="module")
def bad_results(work, trained) -> dict[str, tuple[subprocess.CompletedProcess, list[str]]]:
    """A representative set of bad calls as real processes (in parallel): status, stderr, no traceback."""
    _prepare_bad_inputs(work, trained)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda name: flowviz(*BAD_CALLS[name][0], cwd=work), SUBPROCESS_CASES))
    left = sorted(p.name for p in (work / "out").iterdir())
    return {name: (result, left) for name, result in zip(SUBPROCESS_CASES, results, strict=True)}


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_in_a_real_process_exits_2_with_one_line(bad_results, case):
    result, left_in_out = bad_results[case]
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert BAD_CALLS[case][1] in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert left_in_out == []  # no model, no samples, no temporary file


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_every_bad_input_exits_2_with_one_line_and_writes_nothing(work, trained, case, capsys, monkeypatch):
    """The whole table through the same entry point, in this process (each subprocess costs seconds)."""
    from flowviz.cli import main

    _prepare_bad_inputs(work, trained)
    monkeypatch.chdir(work)
    capsys.readouterr()
    status = main(BAD_CALLS[case][0])
    out, err = capsys.readouterr()
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert BAD_CALLS[case][1] in lines[0]
    assert out == ""
    assert sorted(p.name for p in (work / "out").iterdir()) == []


def test_written_files_follow_the_umask(work, trained, monkeypatch):
    """Outputs are made as any file the person writes would be (not private temporary files)."""
    from flowviz.cli import main

    monkeypatch.chdir(work)
    old = os.umask(0o022)
    try:
        assert main(["sample", str(trained["moons"]), "--n", "5", "--out", "public.csv"]) == 0
    finally:
        os.umask(old)
    assert (work / "public.csv").stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- outputs that must not be replaced


def _status_and_line(args: list, capsys) -> tuple[int, str]:
    from flowviz.cli import main

    capsys.readouterr()
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err.strip()


def test_out_refuses_an_input_a_link_a_pipe_or_a_device_before_any_work(work, trained, capsys, monkeypatch):
    import flowviz.cli

    monkeypatch.chdir(work)
    monkeypatch.setattr(
        flowviz.cli, "check_readable", lambda text: pytest.fail("read before --out was checked")
    )
    data = (work / "moons.csv").read_bytes()
    model = trained["moons"].read_bytes()
    (work / "link.csv").unlink(missing_ok=True)
    (work / "link.csv").symlink_to(work / "moons.csv")
    (work / "pipe.out").unlink(missing_ok=True)
    os.mkfifo(work / "pipe.out")
    cases = [
        (["train", "moons.csv", "--out", "moons.csv"], "moons.csv: is the input 'moons.csv'"),
        (["train", "moons.csv", "--out", "./moons.csv"], "is the input"),
        (["sample", trained["moons"], "--n", "3", "--out", trained["moons"]], "is the input"),
        (["train", "moons.csv", "--out", "link.csv"], "link.csv: is a symbolic link"),
        (["train", "moons.csv", "--out", "pipe.out"], "pipe.out: is not a regular file"),
        (["sample", trained["moons"], "--n", "3", "--out", "/dev/null"], "/dev/null: is not a regular file"),
    ]
    for args, message in cases:
        status, line = _status_and_line(args, capsys)
        assert status == 2 and message in line and "\n" not in line, (args, line)
    assert (work / "moons.csv").read_bytes() == data and trained["moons"].read_bytes() == model
    assert (work / "link.csv").is_symlink() and stat.S_ISFIFO(os.lstat(work / "pipe.out").st_mode)


def test_evaluate_refuses_to_overwrite_its_spec(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = b'{"base": {"type": "gaussian"}, "layers": []}'
    (tmp_path / "s.json").write_bytes(spec)
    status, line = _status_and_line(["evaluate", "s.json", "--out", "s.json"], capsys)
    assert status == 2 and "is the input" in line
    assert (tmp_path / "s.json").read_bytes() == spec


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_out_is_found_before_training(tmp_path, work, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    status, line = _status_and_line(["train", work / "moons.csv", "--out", locked / "m.safetensors"], capsys)
    assert status == 2 and "is not writable" in line


def test_pipes_and_devices_as_inputs_are_refused_without_reading(work, trained, capsys, monkeypatch):
    monkeypatch.chdir(work)
    (work / "input.fifo").unlink(missing_ok=True)
    os.mkfifo(work / "input.fifo")
    for args in (
        ["score", "/dev/zero", "moons.csv"],
        ["score", trained["moons"], "/dev/zero"],
        ["score", trained["moons"], "input.fifo"],
        ["train", "input.fifo", "--out", "m.safetensors"],
        ["evaluate", "input.fifo", "--out", "e.npz"],
    ):
        status, line = _status_and_line(args, capsys)
        assert status == 2 and "is not a regular file" in line, (args, line)


WRITER = """
import sys, time
from pathlib import Path
from flowviz.cli import main, write_atomically

def slow(handle):
    handle.write(b"half a model")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)

sys.argv = ["x"]
try:
    write_atomically(Path("out.bin"), slow)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_killed_write_leaves_no_hidden_file_and_the_old_output_intact(tmp_path, signal_number):
    """Killed mid-write: the old OUT is untouched; SIGTERM/SIGINT leave nothing, SIGKILL a visible
    OUT.partial-PID-* that the next write of OUT removes."""
    from flowviz.cli import write_atomically

    (tmp_path / "out.bin").write_bytes(b"the previous model")
    code = WRITER.replace(
        'sys.argv = ["x"]',
        # SIGINT as an interactive shell delivers it (a shell that starts the tests in the
        # background makes its children ignore SIGINT, and Python then keeps it ignored)
        "import signal; from flowviz.cli import _terminated; signal.signal(signal.SIGTERM, _terminated); "
        "signal.signal(signal.SIGINT, signal.default_int_handler)",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal_number)
    child.wait(timeout=30)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert (tmp_path / "out.bin").read_bytes() == b"the previous model"
    assert not [name for name in left if name.startswith(".")], left
    if signal_number == signal.SIGKILL:
        assert len(left) == 2 and left[1].startswith(f"out.bin.partial-{child.pid}-"), left
        write_atomically(tmp_path / "out.bin", lambda handle: handle.write(b"new"))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
        assert (tmp_path / "out.bin").read_bytes() == b"new"
    else:
        assert left == ["out.bin"]


def test_a_folder_that_refuses_writing_is_found_before_reading_or_training(work, capsys, monkeypatch):
    """As root every folder is writable, so the permission answer is simulated; the order is what is tested."""
    import flowviz.cli

    monkeypatch.chdir(work)
    monkeypatch.setattr(flowviz.cli.os, "access", lambda path, mode: False)
    monkeypatch.setattr(
        flowviz.cli, "check_readable", lambda text: pytest.fail("read before --out was checked")
    )
    status, line = _status_and_line(["train", "moons.csv", "--out", "m.safetensors"], capsys)
    assert status == 2 and line == "m.safetensors: cannot write: the folder '.' is not writable"


def test_train_defaults_use_every_core_and_the_shared_training_defaults(monkeypatch):
    """`train` without options: every core, 30 s, and the configs the Train page and bench/train.py use."""
    from flowviz import cli
    from flowviz.train import ModelConfig, TrainConfig

    args = cli.build_parser().parse_args(["train", "data.csv", "--out", "m.safetensors"])
    assert args.threads == (os.cpu_count() or 1)
    assert args.seconds == 30.0 and args.steps is None
    built = {}

    class Recorder:
        def __init__(self, points, model, train):
            built.update(model=model, train=train)
            raise SystemExit(0)

    monkeypatch.setattr("flowviz.train.Trainer", Recorder)
    monkeypatch.setattr(cli, "check_writable", lambda *a, **k: Path("m.safetensors"))
    monkeypatch.setattr(cli, "check_readable", lambda text: text)
    monkeypatch.setattr(
        "flowviz.data.read_csv", lambda source: np.random.default_rng(0).standard_normal((50, 2))
    )
    with pytest.raises(SystemExit):
        cli.cmd_train(args)
    assert built["model"] == ModelConfig()
    assert built["train"] == replace(TrainConfig(), seconds=30.0, steps=None, seed=0)
    assert built["train"].ema == 0.998 and built["model"].bins == 12
