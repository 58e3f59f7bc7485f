"""``ops.attention``, fast: attention block by block in cache over the threads, one-query decode steps
with two batched products, relative-position terms as batched matrix products.

Dimensions: B batch, N heads, S query length, T key length, H head size, D = N*H hidden size.
"""

import math

import numpy as np

from ..backend import array_module
from ..ops import attention as reference
from ..ops.precision import is_half
from .softmax import softmax
from .threads import map_blocks, workers


def attention(q, k, v, mask=None, head_mask=None, position_scores=None, record=None):
    """``ops.attention.attention``: the same arguments, results and order of operations.

    One query position (S = 1, a decode step): :func:`single_query_attention`. Otherwise: block by block over (batch element, group of heads), each block's scores small
    enough to stay in L2 from Q K^T through the softmax to the product with V. Each block writes its
    scores straight into its slab of ``probs`` and works there in place; K^T is made contiguous per
    block (a strided transposed operand is several times slower in the BLAS); the context is written
    into a [B, S, N, H] array, so that merging the heads afterwards is a reshape, not a copy. The blocks
    are independent and go to the cores through ``map_blocks``; on cupy there is one block.
    Half precision runs the reference, which states the half rule (float32 products rounded once, ...).
    """
    if is_half(q.dtype):
        return reference.attention(q, k, v, mask, head_mask, position_scores, record)
    xp = array_module(q)
    b, n, s, h = q.shape
    if s == 1:
        return single_query_attention(q, k, v, mask, head_mask, position_scores, record)
    t = k.shape[2]
    probs = xp.empty((b, n, s, t), dtype=q.dtype)
    # with a recorder, each block also copies its scores before and after the mask into full arrays
    raw = xp.empty_like(probs) if record is not None else None
    masked = xp.empty_like(probs) if record is not None else None
    context = xp.empty((b, s, n, h), dtype=q.dtype).transpose(0, 2, 1, 3)  # [B, N, S, H] view
    scale = math.sqrt(h)
    mask, head_mask, position_scores = (_as_4d(a) for a in (mask, head_mask, position_scores))

    def block(where):  # where: (batch slice, head slice)
        scores = probs[where]  # [b', n', S, T], written in place from here on
        kt = xp.ascontiguousarray(k[where].swapaxes(-1, -2))  # [b', n', H, T]
        xp.matmul(q[where], kt, out=scores)
        if raw is not None:
            raw[where] = scores
        if position_scores is not None:
            scores += position_scores[_broadcast(position_scores, where)]
        scores /= scale
        if mask is not None:
            scores += mask[_broadcast(mask, where)]
        if masked is not None:
            masked[where] = scores
        softmax(scores, out=scores)
        if head_mask is not None:
            scores *= head_mask[_broadcast(head_mask, where)]
        xp.matmul(scores, v[where], out=context[where])

    map_blocks(block, _attention_blocks(b, n, s, t, q.itemsize, xp))
    if record is not None:
        record("scores", raw)
        record("masked_scores", masked)
        record("probs", probs)
    return context, probs


def _as_4d(a):
    """A [.., S, T]-broadcastable array with leading 1s added up to 4 dimensions (None stays None)."""
    return None if a is None else a.reshape((1,) * (4 - a.ndim) + a.shape)


def _broadcast(a, where):
    """The index of block ``where`` = (batch slice, head slice) into ``a``, whose size-1 dims broadcast."""
    return tuple(w if a.shape[i] != 1 else slice(None) for i, w in enumerate(where))


_MIN_SPLIT = 32768  # score elements: below this per block, splitting the heads over threads costs more than it saves


def _attention_blocks(b, n, s, t, itemsize, xp, budget=1 << 20):
    """(batch slice, head slice) pairs: one batch element and as many heads as keep the block's scores
    within ``budget`` bytes (L2-sized); on cupy, everything at once."""
    if xp is not np:
        return [(slice(None), slice(None))]
    heads = max(1, min(n, budget // max(1, s * t * itemsize)))
    per_element = -(-workers() // b)  # blocks per batch element so that every thread gets one,
    if n * s * t >= per_element * _MIN_SPLIT:  # unless the blocks would be too small to pay for a thread
        heads = min(heads, max(1, -(-n // per_element)))
    return [(slice(i, i + 1), slice(j, min(j + heads, n))) for i in range(b) for j in range(0, n, heads)]


def relative_key_scores(q, emb):
    """``ops.attention.relative_key_scores``: sum_h q[b, n, l, h] E[l, r, h] -> [B, N, S, T], computed as S batched matmuls: (q arranged [S, B*N, H]) @ (E^T [S, H, T]) -> [S, B*N, T].
    """
    if is_half(q.dtype):
        return reference.relative_key_scores(q, emb)
    b, n, s, h = q.shape
    per_query = q.transpose(2, 0, 1, 3).reshape(s, b * n, h) @ emb.swapaxes(1, 2)  # [S, B*N, T]
    return per_query.reshape(s, b, n, -1).transpose(1, 2, 0, 3)  # [B, N, S, T]


def relative_query_key_scores(k, emb):
    """``ops.attention.relative_query_key_scores``: sum_h k[b, n, r, h] E[l, r, h] -> [B, N, S, T], computed as T batched matmuls: (k arranged [T, B*N, H]) @ (E arranged [T, H, S]) -> [T, B*N, S].
    """
    if is_half(k.dtype):
        return reference.relative_query_key_scores(k, emb)
    b, n, t, h = k.shape
    per_key = k.transpose(2, 0, 1, 3).reshape(t, b * n, h) @ emb.transpose(1, 2, 0)  # [T, B*N, S]
    return per_key.reshape(t, b, n, -1).transpose(1, 2, 3, 0)  # [B, N, S, T]


def single_query_attention(q, k, v, mask=None, head_mask=None, position_scores=None, record=None):
    """:func:`attention` for one query position (S = 1), the decode step: the same formula, computed
    with two batched products over all (batch element, head) pairs at once instead of block by block.

    q [B, N, 1, H], k [B, N, T, H], v [B, N, T, H] (k and v may be strided views of a KV cache, e.g.
    ``cache[:, :, :T]``); mask, head_mask, position_scores as for :func:`attention`.
    Returns (context [B, N, 1, H], probs [B, N, 1, T]).

    The scores are computed as k q^T ([B, N, T, H] @ [B, N, H, 1] -> [B, N, T, 1], a matrix-vector
    product per (batch element, head) reading the cached keys in place: no transposed copy of K, which
    :func:`attention` makes every call), then viewed as [B, N, 1, T]. Then, in the same order as
    :func:`attention`: + position_scores, / sqrt(H), + mask, softmax, * head_mask, @ v.
    """
    xp = array_module(q)
    b, n, s, h = q.shape
    if s != 1:
        raise ValueError(f"single_query_attention takes one query position, got {s}")
    t = k.shape[2]
    scores = xp.matmul(k, q.reshape(b, n, h, 1)).reshape(b, n, 1, t)  # [B, N, 1, T], fresh array
    if record is not None:
        record("scores", scores)
    if position_scores is not None:
        scores += position_scores
    scores /= math.sqrt(h)
    if mask is not None:
        scores += mask
    if record is not None:
        record("masked_scores", scores)
    softmax(scores, out=scores)
    if head_mask is not None:
        scores *= head_mask
    if record is not None:
        record("probs", scores)
    return xp.matmul(scores, v), scores
