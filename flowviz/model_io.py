"""Save and load trained flows without executing anything from the file.

A model file is a safetensors file (https://huggingface.co/docs/safetensors):
an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
Reading one parses JSON and copies numbers; no pickle, no code. The JSON header's
``__metadata__`` holds, as strings:

- ``format``: ``flowviz-model``; ``format_version``: ``1``;
- ``architecture``: JSON of :class:`~flowviz.train.ModelConfig` plus the data's
  standardisation (``mean``, ``scale``), enough to rebuild the layers;
- ``title``: what was trained on what; ``training``: a JSON summary (steps, NLLs);
- ``checksum``: SHA-256 over the architecture and every tensor's name, dtype,
  shape and bytes, so a damaged or edited file is refused, not half-loaded.

Only the learnable parameters are stored; everything derived from the
architecture (the standardisation layer, the fixed rotations) is rebuilt from it,
so the two can never disagree. A round trip is bit-exact.

Anything wrong raises :class:`~flowviz.errors.SpecError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from flowviz.errors import SpecError
from flowviz.layers.learned import ActNorm
from flowviz.train import ModelConfig, TrainedModel, build_model

FORMAT = "flowviz-model"
FORMAT_VERSION = "1"
# A model the Train page or the CLI trains has at most about a million weights (12 couplings of
# two hidden layers of 256 units, 32 bins and ActNorm: 1,088,676). The architecture alone may ask for far more within ModelConfig's
# limits (64 couplings of 8 x 1024 units: half a billion, 2 GB to build), so a file is measured
# against this budget, from its header, before anything is built: loading one costs at most a few
# times MAX_WEIGHTS x 8 bytes (the file, its tensors and the flow in float64).
MAX_WEIGHTS = 2_000_000
MAX_HEADER_BYTES = 256 * 2**10  # the most tensors an architecture has (1,280) take 120 KB of header
MAX_FILE_BYTES = 8 + MAX_HEADER_BYTES + 8 * MAX_WEIGHTS
_DTYPES = {torch.float32: "F32", torch.float64: "F64"}
_HEADER_DTYPES = {"F32": torch.float32, "F64": torch.float64}


# --------------------------------------------------------------------------- writing


def _canonical_architecture(architecture: dict) -> str:
    return json.dumps(architecture, sort_keys=True, separators=(",", ":"))


def _checksum(architecture_json: str, tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(architecture_json.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"\n{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_bytes(model: TrainedModel) -> bytes:
    """The model file's bytes: the flow's parameters and the architecture that rebuilds it."""
    tensors = {name: p.detach().contiguous().clone() for name, p in model.flow.named_parameters()}
    architecture_json = _canonical_architecture(model.architecture)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture_json,
        "title": model.title,
        "training": json.dumps(model.training, sort_keys=True, allow_nan=False, default=float),
        "checksum": _checksum(architecture_json, tensors),
    }
    return safetensors.torch.save(tensors, metadata=metadata)


def save_model(model: TrainedModel, path: str | Path) -> None:
    """Write the model file (use :func:`flowviz.cli.write_atomically` for an all-or-nothing write)."""
    Path(path).write_bytes(model_bytes(model))


# --------------------------------------------------------------------------- reading


def _header(data: bytes, place: str) -> dict:
    """The safetensors JSON header, checked for shape before any tensor is read."""
    not_model = "not a flowviz model file"
    if len(data) < 8:
        raise SpecError(place, f"{not_model}: it is {len(data)} bytes long, too short to hold a header")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_BYTES or size < 2:
        raise SpecError(place, f"{not_model}: it does not start with a safetensors header")
    if 8 + size > len(data):
        raise SpecError(place, "the file is truncated: its header runs past the end of the file")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, absurd numbers or nesting
        raise SpecError(place, f"{not_model}: its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise SpecError(place, f"{not_model}: its header is not a JSON object")
    return header


def _metadata(header: dict, place: str) -> dict[str, str]:
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise SpecError(
            place, f"a safetensors file, but not a flowviz model (no {FORMAT!r} marker in its metadata)"
        )
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise SpecError(
            place, f"model format version {version!r}; this flowviz reads version {FORMAT_VERSION} only"
        )
    for key in ("architecture", "checksum"):
        if not isinstance(metadata.get(key), str):
            raise SpecError(place, f"the model's metadata has no {key!r}")
    return metadata


def _architecture(text: str, place: str) -> dict:
    try:
        architecture = json.loads(text)
    except (ValueError, RecursionError):
        raise SpecError(f"{place}: architecture", "is not valid JSON") from None
    if not isinstance(architecture, dict) or set(architecture) != {"model", "mean", "scale"}:
        raise SpecError(
            f"{place}: architecture", "must be an object with exactly 'model', 'mean' and 'scale'"
        )
    if not isinstance(architecture["model"], dict):
        raise SpecError(f"{place}: architecture.model", "must be an object")
    try:
        ModelConfig.from_dict(architecture["model"])
    except SpecError as error:
        raise SpecError(f"{place}: architecture.{error.place}", error.reason) from None
    except (TypeError, ValueError, OverflowError) as error:
        raise SpecError(f"{place}: architecture.model", str(error)) from None
    for key in ("mean", "scale"):
        value = architecture[key]
        ok = isinstance(value, list) and len(value) == 2 and all(_finite(v) for v in value)
        if not ok or (key == "scale" and min(value) <= 0):
            what = "two positive finite numbers" if key == "scale" else "two finite numbers"
            shown = f", got [{float(value[0]):.6g}, {float(value[1]):.6g}]" if ok else ""
            raise SpecError(f"{place}: architecture.{key}", f"must be {what}{shown}")
    return architecture


def _finite(value) -> bool:
    """A JSON number that is a finite float64 (an integer beyond float64 is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _read_bytes(source: str | Path | bytes, place: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = Path(source)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(
                place, f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB; not a flowviz model"
            )
        if not path.is_file():  # a FIFO would block, a device never end
            raise SpecError(place, "not a regular file; give the path of a model file")
        with path.open("rb") as handle:  # the size may have grown since stat: read no more than allowed
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise SpecError(
                place, f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB; not a flowviz model"
            )
        return data
    except FileNotFoundError:
        raise SpecError(place, "no such file") from None
    except IsADirectoryError:
        raise SpecError(place, "this is a folder, not a model file") from None
    except OSError as error:
        raise SpecError(place, f"cannot read the file ({error.strerror})") from None


def _check_budget(config: ModelConfig, place: str) -> None:
    """Refuse an architecture larger than :data:`MAX_WEIGHTS` before anything is built."""
    count = config.weight_count()
    if count > MAX_WEIGHTS:
        raise SpecError(
            f"{place}: architecture",
            f"asks for {count:,} weights, but flowviz loads models of at most {MAX_WEIGHTS:,}",
        )


def _check_declared_tensors(header: dict, expected: dict[str, tuple[int, ...]], place: str) -> None:
    """The tensors the header declares (names, shapes, dtypes) against the weights the architecture has.

    Read from the header alone, before any tensor data is copied out of the file.
    """
    declared = {key: value for key, value in header.items() if key != "__metadata__"}
    missing = sorted(set(expected) - set(declared))
    unexpected = sorted(set(declared) - set(expected))
    if missing:
        raise SpecError(place, f"the weights {missing[0]!r} are missing for this architecture")
    if unexpected:
        raise SpecError(place, f"unexpected weights {unexpected[0]!r} for this architecture")
    dtypes = set()
    for tensor_name, entry in declared.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise SpecError(place, f"the weights {tensor_name!r} have no valid shape in the header")
        if tuple(shape) != expected[tensor_name]:
            raise SpecError(
                place,
                f"the weights {tensor_name!r} have shape {tuple(shape)}, "
                f"but the architecture needs {expected[tensor_name]}",
            )
        dtypes.add(_HEADER_DTYPES[dtype] if dtype in _HEADER_DTYPES else str(dtype))
    if len(dtypes) > 1 or not dtypes <= set(_DTYPES):
        raise SpecError(
            place, f"the weights must all be float32 or all float64, got {sorted(map(str, dtypes))}"
        )


def load_model(source: str | Path | bytes, name: str | None = None) -> TrainedModel:
    """Read a model file (a path or its bytes); the flow comes back in eval mode.

    Refuses, with a SpecError naming the problem: files that are not safetensors,
    safetensors files that are not flowviz models, unknown format versions, a bad
    architecture, missing/unexpected/misshapen tensors, non-finite weights, and any
    change to the tensors or the architecture after saving (the checksum).
    """
    place = name or (str(source) if isinstance(source, (str, Path)) else "model file")
    data = _read_bytes(source, place)
    header = _header(data, place)
    metadata = _metadata(header, place)
    architecture = _architecture(metadata["architecture"], place)
    config = ModelConfig.from_dict(architecture["model"])
    _check_budget(config, place)  # before anything is built
    flow = build_model(config, architecture["mean"], architecture["scale"])
    expected = {name: tuple(p.shape) for name, p in flow.named_parameters()}
    _check_declared_tensors(header, expected, place)  # before any tensor is copied
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, RuntimeError) as error:
        raise SpecError(place, f"the tensor data is truncated or damaged ({error})") from None

    dtypes = {t.dtype for t in tensors.values()}
    for tensor_name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise SpecError(place, f"the weights {tensor_name!r} hold NaN or infinite values")
    architecture_json = _canonical_architecture(architecture)
    if (
        metadata["architecture"] != architecture_json
        or _checksum(architecture_json, tensors) != metadata["checksum"]
    ):
        raise SpecError(place, "the file does not match the checksum stored in it: it was changed or damaged")

    dtype = dtypes.pop() if dtypes else torch.float32
    flow = flow.to(dtype)
    with torch.no_grad():
        for tensor_name, parameter in flow.named_parameters():
            parameter.copy_(tensors[tensor_name])
    for layer in flow.layers:
        if isinstance(layer, ActNorm):
            layer.initialized.fill_(True)
    try:
        training = json.loads(metadata.get("training", "{}"))
    except (ValueError, RecursionError):  # a summary for people, not needed to use the model
        training = {}
    if not isinstance(training, dict):
        training = {}
    title = metadata.get("title", "")
    return TrainedModel(flow.eval(), architecture, title if isinstance(title, str) else "", training)
