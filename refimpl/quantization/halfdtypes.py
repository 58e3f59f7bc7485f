"""The half-precision dtypes: numpy's float16, and bfloat16 from ``ml_dtypes`` (optional, imported lazily)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def bfloat16():
    """numpy's bfloat16 dtype from ml_dtypes, or a ConfigError saying how to install it."""
    try:
        import ml_dtypes
    except ImportError:
        raise ConfigError(
            "bfloat16 on numpy needs the ml_dtypes package (numpy has no bfloat16): "
            "`pip install refimpl[bfloat16]` (ml_dtypes)"
        ) from None
    return np.dtype(ml_dtypes.bfloat16)


def dtype_of(name) -> np.dtype:
    """"float32" / "float16" / "bfloat16" / "float64" (or a dtype) as a numpy dtype."""
    key = name if isinstance(name, str) else np.dtype(name).name
    if key == "bfloat16":
        return bfloat16()
    return np.dtype(key)
