"""Scaled dot-product attention and the relative-position score terms of BERT.

Dimensions: B batch, N heads, S query length, T key length, H head size, D = N*H hidden size.
"""

import math

from .softmax import softmax


def split_heads(x, num_heads):
    """[B, L, D] -> [B, N, L, H] as a strided view (no copy)."""
    b, length, d = x.shape
    return x.reshape(b, length, num_heads, d // num_heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """[B, N, L, H] -> [B, L, N*H] (one copy, into row-major order)."""
    b, n, length, h = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, length, n * h)


def attention(q, k, v, mask=None, head_mask=None, position_scores=None):
    """softmax((q k^T + position_scores) / sqrt(H) + mask) * head_mask, then @ v.

    q [B, N, S, H], k [B, N, T, H], v [B, N, T, H]; mask additive, broadcastable to [B, N, S, T];
    head_mask broadcastable to [B, N, S, T] (multiplies the probabilities, as transformers does, and the
    returned probabilities include it); position_scores [B, N, S, T] or None.
    Returns (context [B, N, S, H], probs [B, N, S, T]).

    Order of operations follows transformers' eager attention: relative-position terms are added before
    the division by sqrt(H), the mask after it. A fully masked row (every entry finfo.min) gives uniform
    probabilities, as in transformers.
    """
    scores = q @ k.swapaxes(-1, -2)  # [B, N, S, T]
    if position_scores is not None:
        scores += position_scores
    scores /= math.sqrt(q.shape[-1])
    if mask is not None:
        scores += mask
    probs = softmax(scores)  # [B, N, S, T]
    if head_mask is not None:
        probs *= head_mask
    context = probs @ v  # [B, N, S, H]
    return context, probs


def relative_position_embeddings(distance_embedding, query_positions, key_positions, max_position_embeddings):
    """Look up distance embeddings E[l, r] = W[(q_l - k_r) + max_position_embeddings - 1].

    distance_embedding [2 P - 1, H]; query_positions [S]; key_positions [T] -> [S, T, H].
    """
    distance = query_positions[:, None] - key_positions[None, :]  # [S, T]
    return distance_embedding[distance + (max_position_embeddings - 1)]


def relative_key_scores(q, emb):
    """sum_h q[b, n, l, h] E[l, r, h] -> [B, N, S, T]   (q [B, N, S, H], E [S, T, H]).

    Computed as S batched matmuls: (q arranged [S, B*N, H]) @ (E^T [S, H, T]) -> [S, B*N, T].
    """
    b, n, s, h = q.shape
    per_query = q.transpose(2, 0, 1, 3).reshape(s, b * n, h) @ emb.swapaxes(1, 2)  # [S, B*N, T]
    return per_query.reshape(s, b, n, -1).transpose(1, 2, 0, 3)  # [B, N, S, T]


def relative_query_key_scores(k, emb):
    """sum_h k[b, n, r, h] E[l, r, h] -> [B, N, S, T]   (k [B, N, T, H], E [S, T, H]).

    Computed as T batched matmuls: (k arranged [T, B*N, H]) @ (E arranged [T, H, S]) -> [T, B*N, S].
    """
    b, n, t, h = k.shape
    per_key = k.transpose(2, 0, 1, 3).reshape(t, b * n, h) @ emb.transpose(1, 2, 0)  # [T, B*N, S]
    return per_key.reshape(t, b, n, -1).transpose(1, 2, 3, 0)  # [B, N, S, T]
