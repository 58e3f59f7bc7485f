"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU — chosen once, when a model is loaded.

Every other module takes its array module from its inputs (``xp = array_module(x)``) and never imports
cupy itself. (``erf``, which NumPy lacks, is in ``refimpl.ops.erf``; the worker threads of the fast
kernels in ``refimpl.kernels.threads``.)
"""

from __future__ import annotations

import sys

import numpy as np

from .errors import ConfigError

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64", "float16", "bfloat16")
HALF_DTYPES = ("float16", "bfloat16")  # stored in 16 bits, computed in float32 (refimpl.ops.precision)


def get_backend(name: str = "numpy"):
    """The array module for backend ``name`` ("numpy" or "cupy")."""
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ConfigError(
                f"backend='cupy' needs CuPy: `pip install refimpl[gpu]` (cupy-cuda12x) on a machine with a CUDA GPU ({e})"
            ) from None
        return cupy
    raise ConfigError(f"unknown backend {name!r}; choose one of {BACKENDS}")


def bfloat16():
    """numpy's bfloat16 dtype, from ``ml_dtypes`` (optional: imported only when bfloat16 is asked for),
    or a ConfigError saying how to install it."""
    try:
        import ml_dtypes
    except ImportError:
        raise ConfigError(
            "dtype='bfloat16' on numpy needs the ml_dtypes package (numpy has no bfloat16): "
            "`pip install refimpl[bfloat16]` (ml_dtypes), or use dtype='float16' / 'float32'"
        ) from None
    return np.dtype(ml_dtypes.bfloat16)


def resolve_dtype(dtype, backend: str = "numpy"):
    """Map "float32" / "float64" / "float16" / "bfloat16" (or a numpy dtype) to a numpy dtype, checking the
    backend has it. None means the default, float32 (as transformers' default dtype; numpy would read None
    as float64). float16 and bfloat16 are storage dtypes computed in float32 (docs/precision.md, "Half
    precision"); bfloat16 needs ``ml_dtypes`` and runs on numpy only (CuPy has no bfloat16).
    "auto" is resolved from config.json by ``from_pretrained`` before it gets here."""
    if dtype is None:
        dtype = "float32"
    if isinstance(dtype, str):
        key = dtype
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = getattr(dtype, "__name__", None) or str(dtype)  # torch.float16 and the like: name the value
            if key.startswith("torch."):
                key = key[len("torch."):]
            if key not in DTYPES:
                raise ConfigError(f"dtype={dtype!r} is not a dtype; choose one of {list(DTYPES)} or 'auto'") from None
    if key == "auto":
        raise ConfigError("dtype='auto' is read from a checkpoint's config.json: pass it to from_pretrained(dir, "
                          "dtype='auto'), or give one of " + str(list(DTYPES)))
    if key not in DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}; choose one of {list(DTYPES)} (or 'auto' in from_pretrained)")
    if key == "bfloat16":
        if backend == "cupy":
            raise ConfigError("dtype='bfloat16' is not available on the cupy backend (CuPy has no bfloat16); "
                              "use dtype='float16' or 'float32' there, or backend='numpy'")
        return bfloat16()
    return np.dtype(key)


SAFETENSORS_FLOATS = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def auto_dtype(config, tensors, files) -> str:
    """What ``dtype="auto"`` means for a checkpoint, as in transformers 4.57.6 (``_get_dtype``): the config's
    ``dtype`` (config.json's ``"dtype"``, or the older key ``"torch_dtype"``) when it is set, else the dtype
    of the checkpoint's first floating-point tensor (as stored in its file: a BF16 safetensors tensor is
    bfloat16, though refimpl's reader widens it). Returns the dtype's name ("float16", ...)."""
    extra = getattr(config, "extra", {}) or {}
    declared = extra.get("dtype", extra.get("torch_dtype"))
    if declared is not None:
        name = str(declared).removeprefix("torch.")
        if name not in DTYPES:
            raise ConfigError(f"dtype='auto': config.json gives dtype {declared!r}, which refimpl does not compute "
                              f"in; pass one of {list(DTYPES)} instead of 'auto'")
        return name
    for name, arr in tensors.items():
        kind = np.dtype(arr.dtype).kind if hasattr(arr, "dtype") else None
        if kind != "f":
            continue
        source = (files or {}).get(name, "")
        if str(source).endswith(".safetensors"):
            from .checkpoint import read_safetensors_header

            entries = read_safetensors_header(source)[0]  # name -> (dtype, shape, start, end)
            stored = entries.get(name, (None,))[0]
            if stored in SAFETENSORS_FLOATS:
                return SAFETENSORS_FLOATS[stored]
        return np.dtype(arr.dtype).name
    return "float32"


def array_module(x):
    """numpy or cupy, whichever owns array ``x`` (numpy for anything that is not a cupy array)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


def to_host(x):
    """A numpy copy (or view) of ``x``, wherever it lives. Non-arrays pass through unchanged."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return x


def finfo_min(dtype) -> float:
    """The dtype's most negative finite value: the additive mask constant transformers uses
    (``torch.finfo(dtype).min``: -65504 for float16, -3.3895e38 for bfloat16)."""
    return float(np.finfo(dtype).min)
