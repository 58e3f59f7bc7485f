"""Scaled dot-product attention and the relative-position score terms of BERT.

Dimensions: B batch, N heads, S query length, T key length, H head size, D = N*H hidden size.
"""

import math
from typing import Any, NamedTuple

import numpy as np

from ..backend import array_module
from .embeddings import embedding_backward
from .precision import computed_in_float32, divide, matmul
from .softmax import softmax, softmax_backward


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

    Half precision (refimpl.ops.precision): each product sums in float32 and rounds once; the division
    is a float32 division by float32(sqrt(H)); the additions of the position terms and of the mask, and the
    head mask's product, are half operations; the softmax is float32, rounded once. A mask entry is
    finfo(half).min (-65504 for float16), so a masked score of -16 or below overflows to -inf in float16
    (numpy's overflow warning is silenced: the value is the one wanted), in transformers too; a fully masked row then holds only -inf and its probabilities are NaN in both.
    """
    scores = matmul(q, k.swapaxes(-1, -2))  # [B, N, S, T]
    if record is not None:
        record("scores", scores)
    if position_scores is not None:
        scores = scores + position_scores
    scores = divide(scores, math.sqrt(q.shape[-1]))
    if mask is not None:
        with np.errstate(over="ignore"):
            scores = scores + mask
    if record is not None:
        record("masked_scores", scores)
    probs = softmax(scores)
    if head_mask is not None:
        probs = probs * head_mask
    if record is not None:
        record("probs", probs)
    return matmul(probs, v), probs


def relative_position_embeddings(distance_embedding, query_positions, key_positions, max_position_embeddings):
    """E[l, r] = W[(q_l - k_r) + max_position_embeddings - 1]: the embedding of each query-key distance.

    distance_embedding [2 P - 1, H]; query_positions [S]; key_positions [T] -> [S, T, H].
    """
    distance = query_positions[:, None] - key_positions[None, :]  # [S, T]
    return distance_embedding[distance + (max_position_embeddings - 1)]


@computed_in_float32
def relative_key_scores(q, emb):
    """sum_h q[b, n, l, h] E[l, r, h] -> [B, N, S, T]   (q [B, N, S, H], E [S, T, H])."""
    return array_module(q).einsum("bnlh,lrh->bnlr", q, emb)


@computed_in_float32
def relative_query_key_scores(k, emb):
    """sum_h k[b, n, r, h] E[l, r, h] -> [B, N, S, T]   (k [B, N, T, H], E [S, T, H])."""
    return array_module(k).einsum("bnrh,lrh->bnlr", k, emb)


# --- training: forward with a tape, and the backward -------------------------------------------------


class AttentionTape(NamedTuple):
    """What :func:`attention_backward` needs from :func:`attention_forward`."""

    q: Any  # [B, N, S, H]
    k: Any  # [B, N, T, H]
    v: Any  # [B, N, T, H]
    probs: Any  # softmax output P [B, N, S, T]
    weights: Any  # A = P * dropout * head_mask, what multiplied v [B, N, S, T]
    dropout: Any  # the dropout factor keep / (1 - p), broadcastable to [B, N, S, T], or None
    head_mask: Any  # broadcastable to [B, N, S, T], or None


def attention_forward(q, k, v, mask=None, head_mask=None, position_scores=None, dropout=None):
    """:func:`attention` in training mode: the same operations in the same order, with dropout of the
    probabilities between the softmax and the head mask (transformers' order), and a tape.

    A = softmax((q k^T + position_scores) / sqrt(H) + mask) * dropout * head_mask;  context = A v.
    ``dropout``: the factor keep / (1 - p) (``ops.dropout.dropout_factor``) or None (no dropout).
    Returns (context [B, N, S, H], A [B, N, S, T], AttentionTape).
    """
    scores = q @ k.swapaxes(-1, -2)  # [B, N, S, T]
    if position_scores is not None:
        scores = scores + position_scores
    scores = scores / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    probs = softmax(scores)
    weights = probs
    if dropout is not None:
        weights = weights * dropout
    if head_mask is not None:
        weights = weights * head_mask
    return weights @ v, weights, AttentionTape(q, k, v, probs, weights, dropout, head_mask)


def attention_backward(dcontext, tape):
    """Gradients of context = A v (see :func:`attention_forward`), dcontext [B, N, S, H]:

        dv = A^T dcontext                      dA = dcontext v^T
        dP = dA * dropout * head_mask          dZ = P * (dP - sum_T(dP * P))       (softmax backward)
        dq = dZ k / sqrt(H)    dk = dZ^T q / sqrt(H)    d(position_scores) = dZ / sqrt(H)

    The additive mask is a constant: its entries get no gradient, and a fully masked row (uniform P)
    passes dZ on to q and k exactly as torch's autograd does. Returns (dq, dk, dv, dposition_scores).
    """
    q, k, v = tape.q, tape.k, tape.v
    dv = tape.weights.swapaxes(-1, -2) @ dcontext  # [B, N, T, H]
    dp = dcontext @ v.swapaxes(-1, -2)  # [B, N, S, T]
    if tape.head_mask is not None:
        dp = dp * tape.head_mask
    if tape.dropout is not None:
        dp = dp * tape.dropout
    dz = softmax_backward(dp, tape.probs) / math.sqrt(q.shape[-1])  # [B, N, S, T]
    dq = dz @ k
    dk = dz.swapaxes(-1, -2) @ q
    return dq, dk, dv, dz


def relative_key_scores_backward(dscores, q, emb):
    """Gradients of scores[b, n, l, r] = sum_h q[b, n, l, h] E[l, r, h]:
    dq[b, n, l, h] = sum_r dscores[b, n, l, r] E[l, r, h];  dE[l, r, h] = sum_{b, n} dscores[b, n, l, r] q[b, n, l, h]."""
    xp = array_module(q)
    return xp.einsum("bnlr,lrh->bnlh", dscores, emb), xp.einsum("bnlr,bnlh->lrh", dscores, q)


def relative_query_key_scores_backward(dscores, k, emb):
    """Gradients of scores[b, n, l, r] = sum_h k[b, n, r, h] E[l, r, h]:
    dk[b, n, r, h] = sum_l dscores[b, n, l, r] E[l, r, h];  dE[l, r, h] = sum_{b, n} dscores[b, n, l, r] k[b, n, r, h]."""
    xp = array_module(k)
    return xp.einsum("bnlr,lrh->bnrh", dscores, emb), xp.einsum("bnlr,bnrh->lrh", dscores, k)


def relative_position_embeddings_backward(demb, query_positions, key_positions, max_position_embeddings, num_rows):
    """Gradient of E[l, r] = W[q_l - k_r + P - 1] (:func:`relative_position_embeddings`): dE [S, T, H]
    scattered into the rows of W [2 P - 1, H] (rows used by several (l, r) pairs add up)."""
    distance = query_positions[:, None] - key_positions[None, :] + (max_position_embeddings - 1)  # [S, T]
    return embedding_backward(demb, distance, num_rows)
