"""The fast set's decode-step attention (one query, two batched products) equals the reference
attention() it stands in for: same formula, with masks (2-D padding, causal, fully masked rows), head masks and relative-position scores,
on strided views of a preallocated cache as the decoder passes them."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.kernels.attention import single_query_attention
from refimpl.ops.attention import attention


@settings(deadline=None, max_examples=60, suppress_health_check=list(HealthCheck))
@given(
    seed=st.integers(0, 2**31 - 1),
    b=st.integers(1, 5),
    n=st.integers(1, 4),
    h=st.integers(1, 16),
    t=st.integers(1, 40),
    extra=st.integers(0, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
    with_mask=st.booleans(),
    with_head_mask=st.booleans(),
    with_positions=st.booleans(),
)
def test_single_query_attention_equals_attention(seed, b, n, h, t, extra, dtype, with_mask, with_head_mask,
                                                 with_positions):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(b, n, 1, h)).astype(dtype)
    cache_k = rng.normal(size=(b, n, t + extra, h)).astype(dtype)  # capacity beyond the filled T
    cache_v = rng.normal(size=(b, n, t + extra, h)).astype(dtype)
    k, v = cache_k[:, :, :t], cache_v[:, :, :t]  # strided views, as KVCache.write returns them
    mask = head_mask = pos = None
    if with_mask:
        keep = rng.random((b, t)) < 0.7
        keep[0] = False  # a fully masked row: uniform probabilities in both
        mask = np.where(keep, 0.0, np.finfo(dtype).min).astype(dtype)[:, None, None, :]
    if with_head_mask:
        head_mask = rng.random((1, n, 1, 1)).astype(dtype)
    if with_positions:
        pos = rng.normal(size=(b, n, 1, t)).astype(dtype)
    want_ctx, want_p = attention(q, k, v, mask, head_mask, pos)
    ctx, p = single_query_attention(q, k, v, mask, head_mask, pos)
    assert ctx.shape == want_ctx.shape and p.shape == want_p.shape
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(p, want_p, **tol)
    np.testing.assert_allclose(ctx, want_ctx, **tol)


def test_single_query_attention_rejects_several_queries():
    x = np.zeros((1, 1, 2, 4), np.float32)
    with pytest.raises(ValueError):
        single_query_attention(x, x, x)
