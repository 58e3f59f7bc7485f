"""The fast ways the ops are computed (row blocks, attention blocks, chunks, in-place outputs, worker
threads) against the textbook formulas written out directly. Tolerances: float64 1e-12 (only the
summation order differs), float32 a few ulps of the values compared."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.backend import cpu_threads, erf, map_blocks, map_rows, row_blocks, workers
from refimpl.ops.activations import ACT2FN, gelu, gelu_tanh
from refimpl.ops.attention import attention
from refimpl.ops.layer_norm import layer_norm
from refimpl.ops.linear import input_major, linear
from refimpl.ops.softmax import softmax


def textbook_attention(q, k, v, mask=None, head_mask=None, position_scores=None):
    scores = np.einsum("bnsh,bnth->bnst", q, k)
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    e = np.exp(scores - scores.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    if head_mask is not None:
        p = p * head_mask
    return np.einsum("bnst,bnth->bnsh", p, v), p


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), n=st.integers(1, 5), s=st.integers(1, 9), t=st.integers(1, 9), h=st.integers(1, 7),
       masked=st.booleans(), heads=st.booleans(), positions=st.booleans(), threads=st.booleans(),
       seed=st.integers(0, 2**16))
def test_attention_blocks_match_textbook(b, n, s, t, h, masked, heads, positions, threads, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((b, n, length, h)) for length in (s, t, t))
    mask = np.where(rng.random((b, 1, 1, t)) < 0.3, np.finfo(np.float64).min, 0.0) if masked else None
    head_mask = rng.integers(0, 2, (1, n, 1, 1)).astype(np.float64) if heads else None
    position_scores = rng.standard_normal((b, n, s, t)) if positions else None
    with cpu_threads(np) if threads else _nothing():
        ctx, probs = attention(q, k, v, mask, head_mask, position_scores)
    want_ctx, want_probs = textbook_attention(q, k, v, mask, head_mask, position_scores)
    np.testing.assert_allclose(probs, want_probs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ctx, want_ctx, rtol=0, atol=1e-12)
    assert ctx.shape == (b, n, s, h) and probs.shape == (b, n, s, t)


def test_attention_large_scores_split_into_head_blocks():
    """S = T = 600: one head's scores (1.4 MB) fill a block; several blocks per batch element."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 600, 8)).astype(np.float32) for _ in range(3))
    with cpu_threads(np):
        ctx, probs = attention(q, k, v)
    want_ctx, want_probs = textbook_attention(*(a.astype(np.float64) for a in (q, k, v)))
    assert np.abs(probs - want_probs).max() < 1e-6
    assert np.abs(ctx - want_ctx).max() < 1e-5


def test_fully_masked_row_is_uniform():
    q = k = v = np.ones((1, 1, 2, 4), np.float32)
    mask = np.full((1, 1, 1, 2), np.finfo(np.float32).min, np.float32)
    _, probs = attention(q, k, v, mask)
    assert np.all(probs == 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_softmax_in_place(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7, 33)).astype(dtype) * 3 + 1
    w, b = rng.standard_normal(33).astype(dtype), rng.standard_normal(33).astype(dtype)
    mean = x.mean(-1, keepdims=True)
    want = (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-12) * w + b
    tol = 1e-5 if dtype == np.float32 else 1e-13
    got = layer_norm(x, w, b, 1e-12)
    np.testing.assert_allclose(got, want, atol=tol)
    y = x.copy()
    assert layer_norm(y, w, b, 1e-12, out=y) is y
    np.testing.assert_array_equal(y, got)
    e = np.exp(x - x.max(-1, keepdims=True))
    want_softmax = e / e.sum(-1, keepdims=True)
    np.testing.assert_allclose(softmax(x), want_softmax, atol=tol)
    z = x.copy()
    assert softmax(z, out=z) is z
    np.testing.assert_array_equal(z, softmax(x))


@pytest.mark.parametrize("rows", [1, 7, 63, 64, 255, 300])
def test_linear_few_and_many_rows(rows):
    rng = np.random.default_rng(rows)
    x, w, b = rng.standard_normal((rows, 37)), rng.standard_normal((29, 37)), rng.standard_normal(29)
    y = linear(x, w, b)
    assert y.flags.c_contiguous and y.shape == (rows, 29)
    np.testing.assert_allclose(y, x @ w.T + b, atol=1e-12)
    np.testing.assert_allclose(linear(x[None], w), (x @ w.T)[None], atol=1e-12)
    stored = input_major(w)  # the same matrix laid out [I, O]: same values, same products
    assert stored.shape == w.shape and np.array_equal(stored, w) and stored.T.flags.c_contiguous
    y2 = linear(x, stored, b)
    assert y2.flags.c_contiguous and y2.shape == (rows, 29)
    np.testing.assert_allclose(y2, x @ w.T + b, atol=1e-12)
    assert input_major(w.astype(np.float32), np.float64).dtype == np.float64


@pytest.mark.parametrize("fn", [gelu, gelu_tanh])
def test_chunked_activations_match_whole_array_formula(fn):
    x = np.random.default_rng(2).standard_normal((3, 20001)).astype(np.float32) * 4  # several chunks
    if fn is gelu:
        want = x * 0.5 * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))
    else:
        want = 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    got = fn(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    y = x.copy()
    assert fn(y, out=y) is y
    np.testing.assert_array_equal(y, got)
    strided = np.empty((3, 40002), np.float32)[:, ::2]  # a non-contiguous out
    fn(x, out=strided)
    np.testing.assert_array_equal(strided, got)


def test_every_activation_accepts_out():
    x = np.linspace(-3, 3, 11)
    for name, fn in ACT2FN.items():
        out = np.empty_like(x)
        assert fn(x, out=out) is out, name
        np.testing.assert_array_equal(out, fn(x), err_msg=name)


@pytest.mark.parametrize("rows", [1, 31, 64, 1000, 4096])
def test_map_rows_equals_whole_call_with_and_without_threads(rows):
    rng = np.random.default_rng(rows)
    x, y = rng.standard_normal((rows, 5)), rng.standard_normal((rows, 3))

    def fn(a, c):
        return np.concatenate([a * 2, c.sum(-1, keepdims=True)], -1), a[..., :2] - 1

    want = fn(x, y)
    for region in (_nothing(), cpu_threads(np)):
        with region:
            got = map_rows(fn, x.reshape(1, rows, 5), y.reshape(1, rows, 3), width=(6, 2))
        np.testing.assert_array_equal(got[0][0], want[0])
        np.testing.assert_array_equal(got[1][0], want[1])


def test_row_blocks_cover_rows_in_order():
    for rows in (1, 31, 32, 100, 4096, 4097):
        blocks = row_blocks(rows, np)
        assert blocks[0].start == 0 and blocks[-1].stop == rows
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))


def test_map_blocks_runs_every_block_once_and_propagates_errors():
    seen = []
    with cpu_threads(np):
        map_blocks(seen.append, range(50))
        assert sorted(seen) == list(range(50))

        def boom(i):
            if i == 7:
                raise ValueError("block 7")

        with pytest.raises(ValueError, match="block 7"):
            map_blocks(boom, range(20))
        inner = []
        map_blocks(lambda i: (inner.append(workers()), map_blocks(lambda j: None, range(3))), range(4))
        assert set(inner) == {1}  # no nested threading inside a block


def test_region_is_opened_only_for_inputs_worth_splitting():
    """Fewer than two row blocks' worth of rows: no region (the BLAS keeps its threads); else the region's
    threads are the BLAS's thread count on entry, and the BLAS runs single-threaded inside."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    from refimpl.backend import _MIN_BLOCK_ROWS

    before = blas_threads()
    with cpu_threads(np, rows=2 * _MIN_BLOCK_ROWS - 1):
        assert workers() == 1 and blas_threads() == before
    with cpu_threads(np, rows=2 * _MIN_BLOCK_ROWS):
        assert workers() == max(before)
        if max(before) > 1:
            assert set(blas_threads()) == {1}
    assert blas_threads() == before


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
