"""Model files: a bit-exact round trip, and every foreign, damaged or edited file refused without running it."""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest
import safetensors.torch
import torch

from flowviz.errors import SpecError
from flowviz.model_io import load_model, model_bytes, save_model
from flowviz.train import ModelConfig, TrainConfig, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained(kind: str = "nsf", actnorm: bool = False) -> Trainer:
    points = np.random.default_rng(0).standard_normal((300, 2)) * [3.0, 0.5] + [10.0, -2.0]
    model = ModelConfig(kind=kind, layers=3, hidden=12, depth=1, bins=5, actnorm=actnorm, mixing="rotation")
    trainer = Trainer(points, model, TrainConfig(steps=15, val_every=5))
    trainer.step(15)
    return trainer


@pytest.fixture(scope="module")
def saved() -> tuple[Trainer, bytes]:
    trainer = _trained()
    return trainer, model_bytes(trainer.result("nsf on test points"))


@pytest.mark.parametrize(("kind", "actnorm"), [("nsf", False), ("realnvp", True)])
def test_round_trip_is_bit_exact(tmp_path, kind, actnorm):
    trainer = _trained(kind, actnorm)
    original = trainer.result(f"{kind} flow")
    path = tmp_path / "model.safetensors"
    path.write_bytes(model_bytes(original))
    loaded = load_model(path)
    assert loaded.title == f"{kind} flow"
    assert loaded.architecture == original.architecture
    assert loaded.training["steps"] == 15
    before, after = original.flow.state_dict(), loaded.flow.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert value.dtype == after[name].dtype and torch.equal(value, after[name]), name
    x = torch.randn(500, 2) * 3 + torch.tensor([10.0, -2.0])
    with torch.no_grad():
        assert torch.equal(original.flow.log_prob(x), loaded.flow.log_prob(x))
    assert not loaded.flow.training
    reloaded = load_model(model_bytes(loaded))  # saving a loaded model changes nothing
    with torch.no_grad():
        assert torch.equal(reloaded.flow.log_prob(x), original.flow.log_prob(x))


def test_save_model_writes_the_model_file_that_loads_back(saved, tmp_path):
    trainer, _ = saved
    model = trainer.result("nsf on test points")
    path = tmp_path / "saved.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.architecture == model.architecture and loaded.title == model.title
    x = torch.randn(200, 2)
    with torch.no_grad():
        assert torch.equal(loaded.flow.log_prob(x), model.flow.log_prob(x))


def test_loading_from_bytes(saved):
    trainer, data = saved
    assert load_model(data).architecture == trainer.architecture()


def _refused(data: bytes, match: str, tmp_path) -> str:
    path = tmp_path / "suspect.safetensors"
    path.write_bytes(data)
    with pytest.raises(SpecError, match=match) as error:
        load_model(path)
    message = str(error.value)
    assert "suspect.safetensors" in message and "\n" not in message
    return message


class _Payload:
    """Unpickling this would create a file: proof that something from the file ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_are_refused_without_being_run(tmp_path):
    marker = tmp_path / "ran"
    _refused(pickle.dumps(_Payload(str(marker))), "not a flowviz model", tmp_path)
    buffer = tmp_path / "torch.pt"
    torch.save({"payload": _Payload(str(marker)), "w": torch.ones(2)}, buffer)
    _refused(buffer.read_bytes(), "not a flowviz model", tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "too short"),
        (b"1234567", "too short"),
        (b"x,y\n1,2\n3,4\n", "not a flowviz model"),
        (struct.pack("<Q", 10) + b"not json!!", "not valid JSON"),
        (struct.pack("<Q", 4) + b"[1] ", "not a JSON object"),
        (struct.pack("<Q", 1000) + b"{}", "truncated"),
    ],
)
def test_foreign_files_are_refused(tmp_path, data, match):
    _refused(data, match, tmp_path)


def test_a_safetensors_file_that_is_not_a_model(tmp_path):
    plain = safetensors.torch.save({"weight": torch.ones(3)})
    _refused(plain, "not a flowviz model", tmp_path)
    other = safetensors.torch.save({"weight": torch.ones(3)}, metadata={"format": "pt"})
    _refused(other, "not a flowviz model", tmp_path)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_files_are_refused(tmp_path, saved, keep):
    _, data = saved
    _refused(data[: int(len(data) * keep)], "truncated", tmp_path)


def test_a_changed_weight_fails_the_checksum(tmp_path, saved):
    _, data = saved
    tampered = bytearray(data)
    tampered[-10] ^= 0x01
    _refused(bytes(tampered), "checksum", tmp_path)


def _rewrite(data: bytes, change_metadata=None, change_tensors=None) -> bytes:
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    tensors = safetensors.torch.load(data)
    if change_metadata:
        change_metadata(metadata)
    if change_tensors:
        change_tensors(tensors)
    return safetensors.torch.save(tensors, metadata=metadata)


def test_edited_architecture_or_metadata_is_refused(tmp_path, saved):
    _, data = saved

    def more_bins(metadata):
        architecture = json.loads(metadata["architecture"])
        architecture["model"]["bins"] = 9
        metadata["architecture"] = json.dumps(architecture)

    _refused(_rewrite(data, more_bins), "weights .* have shape", tmp_path)

    def shifted_mean(metadata):
        architecture = json.loads(metadata["architecture"])
        architecture["mean"] = [0.0, 0.0]
        metadata["architecture"] = json.dumps(architecture, sort_keys=True, separators=(",", ":"))

    _refused(_rewrite(data, shifted_mean), "checksum", tmp_path)

    def bad_kind(metadata):
        metadata["architecture"] = metadata["architecture"].replace('"nsf"', '"maf"')

    _refused(_rewrite(data, bad_kind), "architecture.model.kind", tmp_path)
    _refused(_rewrite(data, lambda m: m.update(format_version="7")), "version", tmp_path)
    _refused(
        _rewrite(data, lambda m: m.update(architecture="{")), "architecture: is not valid JSON", tmp_path
    )
    _refused(_rewrite(data, lambda m: m.pop("checksum")), "no 'checksum'", tmp_path)

    def zero_scale(metadata):
        architecture = json.loads(metadata["architecture"])
        architecture["scale"] = [1.0, 0.0]
        metadata["architecture"] = json.dumps(architecture)

    _refused(_rewrite(data, zero_scale), "architecture.scale", tmp_path)


def test_missing_extra_or_non_finite_weights_are_refused(tmp_path, saved):
    _, data = saved
    name = next(iter(safetensors.torch.load(data)))
    _refused(_rewrite(data, change_tensors=lambda t: t.pop(name)), "missing", tmp_path)
    _refused(_rewrite(data, change_tensors=lambda t: t.update(extra=torch.ones(1))), "unexpected", tmp_path)

    def poison(tensors):
        tensors[name] = torch.full_like(tensors[name], float("nan"))

    _refused(_rewrite(data, change_tensors=poison), "NaN", tmp_path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_model(tmp_path / "nothing.safetensors")
    with pytest.raises(SpecError, match="folder"):
        load_model(tmp_path)


def test_absurd_numbers_and_nesting_in_the_metadata_are_refused(tmp_path, saved):
    """Numbers beyond float64, integers with thousands of digits, deep nesting: a message, never a crash."""
    _, data = saved

    def huge_mean(metadata):
        architecture = json.loads(metadata["architecture"])
        metadata["architecture"] = json.dumps(architecture).replace(
            '"mean": [', '"mean": [1' + "0" * 400 + ", ", 1
        )

    def architecture_text(text):
        return lambda metadata: metadata.update(architecture=text)

    message = _refused(_rewrite(data, huge_mean), "architecture", tmp_path)
    assert "finite" in message or "not valid JSON" in message
    _refused(_rewrite(data, architecture_text("1" + "0" * 5000)), "architecture", tmp_path)
    _refused(_rewrite(data, architecture_text("[" * 100_000 + "]" * 100_000)), "architecture", tmp_path)
    # a header nested beyond the parser's depth
    deep = b"[" * 50_000 + b"]" * 50_000
    _refused(struct.pack("<Q", len(deep)) + deep, "not a flowviz model", tmp_path)


def test_a_garbled_training_summary_does_not_stop_a_good_model(saved):
    """The training summary is for people (not covered by the checksum): garbage there is ignored."""
    trainer, data = saved
    for text in ("[" * 100_000 + "]" * 100_000, "1" + "0" * 5000, "[1, 2]", "{"):
        model = load_model(_rewrite(data, lambda m, text=text: m.update(training=text)))
        assert model.training == {}
        assert model.architecture == trainer.architecture()


# --------------------------------------------------------------------------- hostile files and memory

MIB = 2**20


def test_an_oversized_architecture_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    """A few KB that ask for half a billion weights: refused from the header, build_model never runs."""
    import flowviz.model_io
    from bench.uploads import HUGE, crafted_model_bytes

    def no_building(*args, **kwargs):
        raise AssertionError("the model was built before its file was checked")

    monkeypatch.setattr(flowviz.model_io, "build_model", no_building)
    message = _refused(crafted_model_bytes(HUGE), "at most 2,000,000", tmp_path)
    assert "architecture: asks for 470,483,072 weights" in message  # 64 couplings of 8 x 1024 units


def test_declared_shapes_are_checked_before_any_tensor_is_read(tmp_path, saved, monkeypatch):
    """Within the budget, a header whose tensors do not fit the architecture is refused from the header."""
    import flowviz.model_io

    _, data = saved

    def more_hidden(metadata):
        architecture = json.loads(metadata["architecture"])
        architecture["model"]["hidden"] = 500
        metadata["architecture"] = json.dumps(architecture)

    def no_reading(data):
        raise AssertionError("tensors were copied out of the file before its header was checked")

    edited = _rewrite(data, more_hidden)
    monkeypatch.setattr(flowviz.model_io.safetensors.torch, "load", no_reading)
    _refused(edited, r"have shape \(12,?\), but the architecture needs \(500,?\)", tmp_path)


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(),
        ModelConfig(layers=2, hidden=7, depth=3, bins=4, actnorm=True),
        ModelConfig(kind="realnvp", layers=3, hidden=5, depth=2, actnorm=True, mixing="swap"),
        ModelConfig(kind="realnvp", layers=1, hidden=2, depth=1),
    ],
)
def test_the_weight_count_is_the_built_models(config):
    from flowviz.train import build_model

    assert config.weight_count() == sum(p.numel() for p in build_model(config).parameters())


@pytest.mark.slow
def test_ten_concurrent_crafted_uploads_stay_within_the_memory_ceiling():
    """10 threads loading crafted files through the upload path: resident growth under 64 MiB.

    Before the header check, each one built a 1.9 GB network. (bench/uploads.py measures the same
    and more; figures in its docstring's command.)
    """
    from bench.uploads import concurrent_peak, crafted_model_bytes

    result = concurrent_peak(crafted_model_bytes(), threads=10, rounds=2)
    assert [outcome.endswith("at most 2,000,000") for outcome in result["outcomes"]] == [True]
    assert result["growth_bytes"] < 64 * MIB


@pytest.mark.slow
def test_cli_score_of_a_crafted_file_peaks_near_the_cost_of_importing(tmp_path):
    """`score crafted.safetensors data.csv` exits 2 and its peak resident set is the imports' plus < 64 MiB."""
    from bench.uploads import crafted_model_bytes, import_peak, score_peak

    result = score_peak(crafted_model_bytes(), tmp_path)
    assert result["status"] == 2 and "at most 2,000,000" in result["message"]
    assert result["peak_bytes"] < import_peak() + 64 * MIB


def test_the_largest_header_an_architecture_needs_fits_the_limit():
    """64 couplings of 8 hidden layers with ActNorm: 1,280 tensors, and a 255-character title."""
    from flowviz.model_io import MAX_HEADER_BYTES
    from flowviz.train import TrainedModel, build_model

    config = ModelConfig(kind="realnvp", layers=64, hidden=2, depth=8, actnorm=True)
    architecture = {"model": vars(config).copy(), "mean": [0.0, 0.0], "scale": [1.0, 1.0]}
    data = model_bytes(TrainedModel(build_model(config), architecture, "x" * 255, {}))
    assert struct.unpack("<Q", data[:8])[0] < MAX_HEADER_BYTES / 2
    assert load_model(data).architecture == architecture


@pytest.mark.slow
def test_ten_concurrent_uploads_of_the_largest_header_stay_within_the_memory_ceiling():
    """A header padded to the limit with empty entries: the most JSON one file makes the reader parse."""
    from bench.uploads import concurrent_peak, crafted_header_bytes

    result = concurrent_peak(crafted_header_bytes(), threads=10, rounds=1)
    assert [outcome.endswith("are missing for this architecture") for outcome in result["outcomes"]] == [True]
    assert result["growth_bytes"] < 128 * MIB


def test_the_app_accepts_the_largest_model_file_and_no_upload_much_larger():
    """Streamlit holds each upload in memory: its limit admits every loadable model and bounds the rest."""
    import tomllib
    from pathlib import Path

    from flowviz.model_io import MAX_FILE_BYTES

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    limit = config["server"]["maxUploadSize"] * 1e6  # Streamlit counts megabytes
    assert MAX_FILE_BYTES <= limit <= 32e6
