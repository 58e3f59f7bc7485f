"""LLM.int8 (bitsandbytes' ``Linear8bitLt``): row-wise int8 weights and inputs, outlier columns in full precision.

Row-wise quantization of a matrix A [rows, cols] (``int8_vectorwise_quant``; bitsandbytes' default CPU
kernel, backends/default/ops.py), A first rounded to **float16** (bitsandbytes casts both the weight and
the layer input to float16 for this step)::

    outliers    = |A| >= threshold        (threshold > 0 only; compared in float16)
    outlier_cols = the columns holding any outlier (sorted)
    A' = A with its outliers set to 0
    row_stats[r] = max_c |A'[r, c]|        float32 ("SCB" for a weight, "SCA" for an input)
    q[r, c] = round_half_even(A'[r, c] * s[r]) as int8,  s[r] = (1 / row_stats[r]) * 127 in float32
              (torch evaluates ``127 / t`` as ``t.reciprocal() * 127``: not a correctly rounded division)
    if rows > 1: q[:, outlier_cols] = 0
    a row of zeros has row_stats 0 and q 0 (torch: 0 * inf = NaN, which its int8 cast turns into 0)

The int8 linear (``MatMul8bitLt.forward`` at inference), for x [..., I] and the weight's (CB [O, I] int8,
SCB [O] float32)::

    CA, SCA, cols = int8_vectorwise_quant(float16(x), threshold)
    acc = CA @ CB^T                                   int32, exact (computed here in float64: |acc| < 2^53)
    y   = float32(acc) * (SCA[:, None] * SCB[None, :]) * 6.200124e-05       float32; the constant is ~1/127^2
    y  += bias                                        (float32)
    y   = y in x's dtype
    if threshold > 0 and cols:                        the outlier columns, in x's dtype:
        y += x[:, cols] @ (CB[:, cols] * SCB[:, None] * 7.874015718698502e-3)^T      (1/127; torch's addmm)
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32


def int8_vectorwise_quant(a, threshold: float = 0.0):
    """Row-wise int8 quantization of ``a`` [..., cols] (rounded to float16 first). Returns
    (q int8 [rows, cols], row_stats float32 [rows], outlier_cols int64 [k] or None when threshold is 0)."""
    a16 = np.asarray(a).astype(np.float16)
    cols = a16.shape[-1]
    a16 = a16.reshape(-1, cols).copy()
    rows = a16.shape[0]
    outlier_cols = None
    if threshold > 0.0:
        outliers = np.abs(a16) >= np.float16(threshold)
        outlier_cols = np.flatnonzero(outliers.any(axis=0)).astype(np.int64)
        a16[outliers] = 0
    row_stats = np.abs(a16).max(axis=1).astype(_F32) if cols else np.zeros(rows, _F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = ((_F32(1.0) / row_stats) * _F32(127.0)).astype(_F32)
        q = np.rint(a16.astype(_F32) * scale[:, None])
    q = np.where(np.isfinite(q), q, 0).astype(np.int8)
    if rows > 1 and outlier_cols is not None:
        q[:, outlier_cols] = 0
    return q, row_stats, outlier_cols


def int8_vectorwise_dequant(q, row_stats) -> np.ndarray:
    """q * row_stats[:, None] * (1/127) in float32 (bitsandbytes' ``int8_vectorwise_dequant``)."""
    return ((q.astype(_F32) * np.asarray(row_stats, _F32)[:, None]) * _F32(7.874015718698502e-3)).astype(_F32)


def int8_linear(x, cb, scb, bias=None, threshold: float = 0.0):
    """LLM.int8's x W^T + b (module docstring).   x [..., I], cb int8 [O, I], scb float32 [O] -> [..., O] in x's dtype."""
    lead, i = x.shape[:-1], x.shape[-1]
    a = x.reshape(-1, i)
    ca, sca, cols = int8_vectorwise_quant(a, threshold)
    acc = ca.astype(np.float64) @ cb.astype(np.float64).T  # exact integers
    y = (acc.astype(np.int32).astype(_F32) * (sca[:, None] * scb[None, :]).astype(_F32)).astype(_F32)
    y = (y * _F32(6.200124e-05)).astype(_F32)
    if bias is not None:
        y += bias.astype(_F32)
    y = y.astype(x.dtype, copy=False)
    if cols is not None and cols.size:
        sub_b = int8_vectorwise_dequant(cb[:, cols], scb).astype(x.dtype)  # [O, k]
        y = y + a[:, cols] @ sub_b.T
    return y.reshape(lead + (cb.shape[0],))
