"""The same code on CuPy: every golden model loaded with backend="cupy" must give the numpy backend's
results within the float32 tolerance table. Needs an NVIDIA GPU and `pip install -e ".[gpu]"`;
skipped (visibly) elsewhere. Run on a GPU machine with: python -m pytest -q -m cupy
"""

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import refimpl
from reference import assert_outputs_match, refimpl_outputs

pytestmark = pytest.mark.cupy
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
GOLDENS = sorted(p.parent.name for p in WEIGHTS.glob("*/golden.json"))


@pytest.mark.parametrize("name", GOLDENS)
def test_cupy_equals_numpy(cupy, name):
    directory = WEIGHTS / name
    meta = json.loads((directory / "golden.json").read_text())
    tensors = safetensors.numpy.load_file(str(directory / "golden.safetensors"))
    inputs = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
    cls = getattr(refimpl, meta["class"])
    on_cpu = cls.from_pretrained(directory)(**inputs, **meta["forward_flags"])
    gpu_model = cls.from_pretrained(directory, backend="cupy")
    on_gpu = gpu_model(**{k: cupy.asarray(v) for k, v in inputs.items()}, **meta["forward_flags"])
    assert isinstance(on_gpu.to_tuple()[0], cupy.ndarray)
    assert_outputs_match(refimpl_outputs(on_gpu), refimpl_outputs(on_cpu), "float32", context=f"cupy vs numpy: {name}")
