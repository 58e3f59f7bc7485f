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
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


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


def resolve_dtype(dtype, backend: str = "numpy"):
    """Map "float32" / "float64" / "float16" (or the numpy dtype) to a numpy dtype, checking the backend has it.
    None means the default, float32 (as transformers' default dtype; numpy would read None as float64)."""
    if dtype is None:
        dtype = "float32"
    try:
        key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    except TypeError:
        raise ConfigError(f"dtype={dtype!r} is not a dtype; choose one of {sorted(DTYPES)}") from None
    if key not in DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if key == "float16" and backend == "numpy":
        raise ConfigError(
            "dtype='float16' is supported on the cupy backend only (NumPy has no fast float16 matmul); "
            "use dtype='float32' or backend='cupy'"
        )
    return np.dtype(DTYPES[key])


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
    """The dtype's most negative finite value: the additive mask constant transformers uses."""
    return float(np.finfo(dtype).min)
