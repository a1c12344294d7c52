"""Resident memory under hostile model files: concurrent uploads and the CLI's ``score``.

    PYTHONPATH=$PWD .venv/bin/python bench/uploads.py [--threads 10] [--rounds 3]

Crafted files are small (tens of KB) but declare an architecture as large as
ModelConfig allows (64 couplings of 8 x 1024 units, half a billion weights). The
upload path the Train page uses (``load_model(bytes, name)``) runs in ``--threads``
threads at once while a sampler reads this process's resident set every 5 ms.
For comparison, the same threads then load the largest model the budget admits
(MAX_WEIGHTS float64 weights, a legitimate file). Last, ``python -m flowviz score``
runs on a crafted file and on the largest model, and its peak resident set
(ru_maxrss of the child) is reported. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import safetensors.torch
import torch

from flowviz.errors import SpecError
from flowviz.model_io import (
    FORMAT,
    FORMAT_VERSION,
    MAX_WEIGHTS,
    _canonical_architecture,
    _checksum,
    load_model,
)
from flowviz.train import ModelConfig, TrainedModel, build_model

ROOT = Path(__file__).resolve().parents[1]
HUGE = ModelConfig(kind="realnvp", layers=64, hidden=1024, depth=8, bins=2, mixing="swap")


def crafted_model_bytes(config: ModelConfig = HUGE) -> bytes:
    """A small file whose architecture asks for ``config`` but that holds one tiny tensor (valid checksum)."""
    architecture = {"model": vars(config).copy(), "mean": [0.0, 0.0], "scale": [1.0, 1.0]}
    architecture_json = _canonical_architecture(architecture)
    tensors = {"layers.0.conditioner.net.net.0.weight": torch.zeros(1024, 1)}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture_json,
        "title": "crafted",
        "training": "{}",
        "checksum": _checksum(architecture_json, tensors),
    }
    return safetensors.torch.save(tensors, metadata=metadata)


def crafted_header_bytes() -> bytes:
    """A valid small architecture whose header is padded to MAX_HEADER_BYTES with empty tensor entries.

    The most JSON the reader parses for one file: tens of thousands of small objects.
    """
    from flowviz.model_io import MAX_HEADER_BYTES

    config = ModelConfig(kind="realnvp", layers=1, hidden=2, depth=1)
    architecture_json = _canonical_architecture(
        {"model": vars(config).copy(), "mean": [0.0, 0.0], "scale": [1.0, 1.0]}
    )
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture_json,
        "checksum": "0",
    }
    head = json.dumps({"__metadata__": metadata})[:-1]
    entries, size, k = [], len(head), 0
    while size < MAX_HEADER_BYTES - 64:
        entry = f',"t{k}":{{}}'
        entries.append(entry)
        size += len(entry)
        k += 1
    header = (head + "".join(entries) + "}").encode()
    return len(header).to_bytes(8, "little") + header


def largest_model_bytes() -> bytes:
    """A legitimate float64 model file as close to MAX_WEIGHTS as one-hidden-layer couplings get."""
    from flowviz.model_io import model_bytes

    config = ModelConfig(kind="realnvp", layers=1, hidden=700, depth=2, mixing="swap")
    while replace(config, layers=config.layers + 1).weight_count() <= MAX_WEIGHTS:
        config = replace(config, layers=config.layers + 1)
    flow = build_model(config).double()
    return model_bytes(
        TrainedModel(flow, {"model": vars(config).copy(), "mean": [0.0, 0.0], "scale": [1.0, 1.0]})
    )


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """VmHWM: this process's peak resident set (ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def concurrent_peak(data: bytes, threads: int = 10, rounds: int = 3) -> dict:
    """Peak resident growth (bytes) while ``threads`` threads each load ``data`` ``rounds`` times."""
    with contextlib.suppress(SpecError):  # once first: a server's imports are not the uploads' cost
        load_model(data, name="upload.safetensors")
    baseline = resident_bytes()
    peak = baseline
    done = threading.Event()
    outcomes: list[str] = []

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes())
            time.sleep(0.005)

    def upload() -> None:
        for _ in range(rounds):
            try:
                load_model(data, name="upload.safetensors")
                outcomes.append("loaded")
            except SpecError as error:
                outcomes.append(str(error))

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=upload) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    sampler.join()
    return {"growth_bytes": peak - baseline, "baseline_bytes": baseline, "outcomes": sorted(set(outcomes))}


def import_peak() -> int:
    """Peak resident set of a Python that only imports flowviz's CLI and torch: the floor under ``score``."""
    code = (
        "import sys, torch, flowviz.cli, flowviz.model_io, flowviz.train; "
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return (
        int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout)
        * 1024
    )


def score_peak(model: bytes, folder: Path) -> dict:
    """Peak resident set of ``python -m flowviz score`` on the model (its own process)."""
    model_path, data_path = folder / "model.safetensors", folder / "data.csv"
    model_path.write_bytes(model)
    data_path.write_text("x,y\n" + "".join(f"{i % 7 - 3},{i % 5 - 2}\n" for i in range(1000)))
    code = (
        "import sys; from flowviz.cli import main; status = main(sys.argv[1:]); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
        "print(int(hwm) * 1024, file=sys.stderr); sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "score", str(model_path), str(data_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = result.stderr.strip().splitlines()
    return {"peak_bytes": int(lines[-1]), "status": result.returncode, "message": lines[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    mib = 2**20
    crafted, header, largest = crafted_model_bytes(), crafted_header_bytes(), largest_model_bytes()
    report = {
        "crafted_file_bytes": len(crafted),
        "header_file_bytes": len(header),
        "largest_file_bytes": len(largest),
    }
    for label, data in (("crafted", crafted), ("header", header), ("largest", largest)):
        result = concurrent_peak(data, args.threads, args.rounds)
        report[f"{label}_uploads_growth_mib"] = round(result["growth_bytes"] / mib, 1)
        report[f"{label}_uploads_outcomes"] = result["outcomes"]
    report["import_only_peak_mib"] = round(import_peak() / mib, 1)
    with tempfile.TemporaryDirectory() as folder:
        for label, data in (("crafted", crafted), ("largest", largest)):
            result = score_peak(data, Path(folder))
            report[f"score_{label}_peak_mib"] = round(result["peak_bytes"] / mib, 1)
            report[f"score_{label}_status"] = result["status"]
    report["process_peak_mib"] = round(peak_resident_bytes() / mib, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
