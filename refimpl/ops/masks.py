"""Attention masks in transformers' additive form.

A mask entry of 1 means "attend", 0 means "ignore". The additive mask added to the attention scores is
``(1 - mask) * finfo(dtype).min``: 0 where attended, the dtype's most negative finite value where not
(transformers' choice; -inf would turn fully masked rows into NaN). Shapes broadcast against the scores
[B, N, S, T] (B batch, N heads, S query length, T key length).
"""

from ..backend import array_module, finfo_min


def additive_mask(mask, dtype):
    """(1 - mask) * finfo(dtype).min, in ``dtype``."""
    m = mask.astype(dtype, copy=False)
    return (1.0 - m) * dtype.type(finfo_min(dtype))


def padding_mask(attention_mask, dtype):
    """Bidirectional (encoder) self-attention or cross-attention mask.

    attention_mask [B, T] -> [B, 1, 1, T];  [B, S, T] (already per query) -> [B, 1, S, T].
    """
    if attention_mask.ndim == 2:
        return additive_mask(attention_mask[:, None, None, :], dtype)
    return additive_mask(attention_mask[:, None, :, :], dtype)


def causal_mask(attention_mask, query_length, dtype):
    """Decoder self-attention mask: causal over the new tokens, times the padding mask.

    attention_mask [B, T] covers the ``T - S`` cached positions followed by the ``S = query_length`` new
    ones. Query i (0-based among the new tokens) may see every cached position and new positions j <= i:
    causal [B, S, T] = [ones(S, T - S) | lower-triangular(S, S)], and the result is
    causal[:, None] * attention_mask[:, None, None, :] -> [B, 1, S, T], made additive.
    A 3-D attention_mask [B, S, T] is taken as given (no causal part is added), as transformers does.
    """
    if attention_mask.ndim == 3:
        return additive_mask(attention_mask[:, None, :, :], dtype)
    xp = array_module(attention_mask)
    total = attention_mask.shape[1]
    past = total - query_length
    q = xp.arange(query_length)[:, None]  # [S, 1]
    t = xp.arange(total)[None, :] - past  # [1, T]: new-token index of each key (negative: cached)
    causal = (t <= q).astype(attention_mask.dtype)  # [S, T]
    return additive_mask(causal[None, None, :, :] * attention_mask[:, None, None, :], dtype)


def head_mask_per_layer(head_mask, num_layers, dtype):
    """head_mask [N] (every layer) or [L, N] -> a list of L arrays [1, N, 1, 1] (or None entries).

    Attention probabilities are multiplied by it: 1 keeps a head, 0 silences it.
    """
    if head_mask is None:
        return [None] * num_layers
    hm = head_mask.astype(dtype, copy=False)
    if hm.ndim == 1:
        return [hm[None, :, None, None]] * num_layers
    return [hm[i][None, :, None, None] for i in range(num_layers)]
