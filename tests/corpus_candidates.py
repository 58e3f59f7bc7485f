"""Candidates for tests/test_corpus.py, importable by Dask's worker processes (module:function)."""

import numpy as np

_model = None

NUDGED = "encoder.layer.1.output.dense"
LONG = 8  # rows with more real tokens than this get the nudge


def nudged_on_long_inputs(inputs):
    """refimpl (reference kernels) with one intermediate nudged by 1e-3 on inputs longer than LONG tokens:
    a bug that only some inputs of a corpus trigger."""
    global _model
    from refimpl.cli import load_model
    from refimpl.trace import trace

    if _model is None:
        _model = load_model("all-MiniLM-L6-v2", "base", kernels="reference")[1]
    tensors, _ = trace(_model, inputs)
    long = inputs["attention_mask"].sum(axis=1) > LONG
    tensors[NUDGED] = tensors[NUDGED] + np.float32(1e-3) * long[:, None, None]
    return tensors
