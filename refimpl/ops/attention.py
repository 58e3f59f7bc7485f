"""Scaled dot-product attention and the relative-position score terms of BERT.

Dimensions: B batch, N heads, S query length, T key length, H head size, D = N*H hidden size.
"""

import math

from ..backend import array_module
from .softmax import softmax


def split_heads(x, num_heads):
    """[B, L, D] -> [B, N, L, H] (a strided view)."""
    b, length, d = x.shape
    return x.reshape(b, length, num_heads, d // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[B, N, L, H] -> [B, L, N*H]."""
    b, n, length, h = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, length, n * h)


def attention(q, k, v, mask=None, head_mask=None, position_scores=None, record=None):
    """context = P v, with P = softmax((q k^T + position_scores) / sqrt(H) + mask) * head_mask.

    q [B, N, S, H], k [B, N, T, H], v [B, N, T, H]; mask additive, broadcastable to [B, N, S, T];
    head_mask broadcastable to [B, N, S, T] (multiplies the probabilities, as transformers does; the
    returned probabilities include it); position_scores [B, N, S, T] or None.
    Returns (context [B, N, S, H], probs [B, N, S, T]).

    The order of operations is transformers' eager attention: relative-position terms are added before
    the division by sqrt(H), the mask after it. A fully masked row (every entry finfo.min) gives uniform
    probabilities, as in transformers. ``record``: None, or ``record(name, array)`` called with the
    intermediates ``scores`` (q k^T), ``masked_scores`` (the softmax's input) and ``probs`` (valid during the
    call: an implementation may go on working in place, so a record keeps a copy).
    """
    scores = q @ k.swapaxes(-1, -2)  # [B, N, S, T]
    if record is not None:
        record("scores", scores)
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    if record is not None:
        record("masked_scores", scores)
    probs = softmax(scores)
    if head_mask is not None:
        probs = probs * head_mask
    if record is not None:
        record("probs", probs)
    return probs @ v, probs


def relative_position_embeddings(distance_embedding, query_positions, key_positions, max_position_embeddings):
    """E[l, r] = W[(q_l - k_r) + max_position_embeddings - 1]: the embedding of each query-key distance.

    distance_embedding [2 P - 1, H]; query_positions [S]; key_positions [T] -> [S, T, H].
    """
    distance = query_positions[:, None] - key_positions[None, :]  # [S, T]
    return distance_embedding[distance + (max_position_embeddings - 1)]


def relative_key_scores(q, emb):
    """sum_h q[b, n, l, h] E[l, r, h] -> [B, N, S, T]   (q [B, N, S, H], E [S, T, H])."""
    return array_module(q).einsum("bnlh,lrh->bnlr", q, emb)


def relative_query_key_scores(k, emb):
    """sum_h k[b, n, r, h] E[l, r, h] -> [B, N, S, T]   (k [B, N, T, H], E [S, T, H])."""
    return array_module(k).einsum("bnrh,lrh->bnlr", k, emb)
