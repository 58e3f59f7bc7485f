"""Traces: a model's inputs, every recorded intermediate and its outputs, in forward order, in one file.

    from refimpl.trace import trace, save_trace, load_trace
    tensors, meta = trace(model, batch)                  # ordered name -> numpy array, and metadata
    save_trace("golden.safetensors", tensors, meta)      # or .npz
    tensors, meta = load_trace("golden.safetensors")

Names: ``inputs.input_ids`` (and the other model inputs), the recorder's names (docs/intermediates.md),
then ``outputs.<field>`` for each output array (``outputs.last_hidden_state``, ``outputs.logits``...). With
several samples in one file each name is prefixed ``sample.{k}.``. A float64 oracle traced alongside
(``with_oracle``) is stored under ``oracle.`` + the same names. A quantized model's weights add their
quantization states under ``quant.`` (:func:`quantization_states`). The metadata (a JSON object, stored as the
safetensors header's ``refimpl`` entry or the npz's ``__meta__`` array) holds the forward order, the refimpl
version, a digest of the model's config, the dtype, backend, kernel set and how samples were batched.

Traces are made on one core (the BLAS at one thread, no worker threads: :func:`one_core`), so that a
golden does not depend on the machine's core count or on how busy it is: the fast kernels' threading
changes float32 rounding (another split of a product), never the math.

Loading never executes anything: safetensors headers are parsed by the safetensors library, npz files
are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .backend import to_host
from .errors import InputError

FORMATS = ("safetensors", "npz")


def config_digest(config) -> str:
    """sha256 of the model config's JSON (sorted keys): the same config gives the same digest."""
    data = config.to_dict() if hasattr(config, "to_dict") else vars(config)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def one_core():
    """A context in which refimpl (and NumPy's BLAS) runs on one thread: reproducible float32 results."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def trace(model, inputs: dict, recorder_include=None):
    """Run ``model(**inputs)`` with a recorder. Returns (tensors, meta): an ordered dict of host numpy
    arrays (inputs, intermediates, outputs) and the metadata described in the module docstring."""
    from .recorder import Recorder

    rec = Recorder(include=recorder_include)
    with one_core():
        out = model(**inputs, recorder=rec)
    tensors = _inputs_and_records(inputs, rec)
    tensors.update((f"outputs.{k}", v) for k, v in out.arrays().items())
    tensors.update(quantization_states(model))
    return tensors, _meta(model, inputs)


def quantization_states(model) -> dict:
    """``quant.<weight name>.<field>`` for every quantized weight of ``model`` (none for a float model): the
    packed bytes and scales a kernel author compares, not only outputs (refimpl.quantization.weights)."""
    from .quantization.weights import is_quantized, state_arrays

    states = {}
    for name, weight in model.params.items():
        if is_quantized(weight):
            states.update((f"quant.{k}", v) for k, v in state_arrays(name, weight).items())
    return states


def trace_generate(model, inputs: dict, max_new_tokens=8, num_beams=1, recorder_include=None):
    """``model.generate`` on ``inputs`` with a recorder: every decoder step under ``step.{t}.`` and the
    search's choices (docs/intermediates.md), then ``outputs.sequences`` and ``outputs.scores.{t}``.
    Returns (tensors, meta) as :func:`trace`."""
    from .recorder import Recorder

    rec = Recorder(include=recorder_include)
    with one_core():
        out = model.generate(inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                             max_new_tokens=max_new_tokens, num_beams=num_beams, return_dict_in_generate=True,
                             output_scores=True, recorder=rec)
    tensors = _inputs_and_records(inputs, rec)
    tensors["outputs.sequences"] = np.asarray(out.sequences)
    for t, scores in enumerate(out.scores or ()):
        tensors[f"outputs.scores.{t}"] = np.asarray(to_host(scores))
    tensors.update(quantization_states(model))
    meta = _meta(model, inputs)
    meta.update(generate={"max_new_tokens": max_new_tokens, "num_beams": num_beams})
    return tensors, meta


def _inputs_and_records(inputs, rec):
    """``inputs.<name>`` for each model input, then the recorded intermediates, on the host, in order."""
    tensors = {f"inputs.{k}": np.asarray(to_host(v)) for k, v in inputs.items() if v is not None}
    tensors.update((k, np.asarray(to_host(v))) for k, v in rec.items())
    return tensors


def _meta(model, inputs):
    from . import __version__

    return {
        "refimpl": __version__, "model": type(model).__name__, "config_digest": config_digest(model.config),
        "dtype": model.dtype.name, "backend": model.xp.__name__, "kernels": model.kernels.name,
        "batch": int(np.shape(next(iter(inputs.values())))[0]), "threads": "one core (see one_core)",
    }


def save_trace(path, tensors: dict, meta: dict, format=None) -> Path:
    """Write ``tensors`` (ordered) and ``meta`` to ``path`` as safetensors (default) or npz
    (``format="npz"`` or a ``.npz`` name). The order is stored in the metadata."""
    path = Path(path)
    format = format or ("npz" if path.suffix == ".npz" else "safetensors")
    if format not in FORMATS:
        raise InputError(f"unknown trace format {format!r}; choose one of {FORMATS}")
    meta = {**meta, "order": list(tensors)}
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if format == "npz":
        np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    from safetensors.numpy import save_file

    save_file(arrays, str(path), metadata={"refimpl": json.dumps(meta)})
    return path


def load_trace(path):
    """(tensors in forward order, metadata) from a file written by :func:`save_trace`, or any safetensors /
    npz file of tensors (no metadata: the file's own order, an empty dict)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such trace file")
    with open(path, "rb") as f:
        magic = f.read(8)
    try:
        if magic[:2] == b"PK":  # a zip: npz
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
                tensors = {k: z[k] for k in z.files if k != "__meta__"}
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                header = f.metadata() or {}
                meta = json.loads(header["refimpl"]) if "refimpl" in header else {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
    except InputError:
        raise
    except Exception as e:  # not a trace: a clear message, no traceback
        raise InputError(f"{path} is neither a safetensors nor an npz file of tensors ({type(e).__name__}: {e})") from None
    order = [k for k in meta.get("order", []) if k in tensors]
    ordered = {k: tensors[k] for k in order}
    ordered.update((k, v) for k, v in tensors.items() if k not in ordered)
    return ordered, meta
