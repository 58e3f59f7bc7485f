"""refimpl.backend: backend and dtype selection (erf's accuracy contract is in tests/test_ops_erf.py)."""

import numpy as np
import pytest

from refimpl.backend import get_backend, resolve_dtype
from refimpl.errors import ConfigError


def test_backend_and_dtype_selection():
    assert get_backend("numpy") is np
    assert resolve_dtype("float64") == np.float64
    with pytest.raises(ConfigError, match="unknown backend 'torch'"):
        get_backend("torch")
    with pytest.raises(ConfigError, match="unsupported dtype 'int8'"):
        resolve_dtype("int8")
    assert resolve_dtype("float16", "numpy") == np.float16  # half storage computed in float32 (tests/test_precision.py)
    with pytest.raises(ConfigError, match="bfloat16.*cupy"):
        resolve_dtype("bfloat16", "cupy")
