"""BERT as pure functions over checkpoint-named parameters.

Dimension legend (google-research/bert style):
    B  batch                      S  tokens in this call (query length)
    P  cached (past) positions    T  key length = P + S
    E  encoder length (cross-attention keys)
    D  hidden size                N  attention heads        H  head size = D / N
    F  intermediate size          V  vocabulary size        L  layers

Every function takes ``p``, a :class:`Params` view whose names are transformers' checkpoint names relative
to the block (``p["attention.self.query.weight"]``), plus arrays; it returns arrays. Dropout is the
identity (inference). Behaviour follows transformers 4.57.6 with eager attention, including where that
is surprising; each such place says so.
"""

from __future__ import annotations

from ..backend import array_module as _xp
from ..backend import map_rows
from ..ops.activations import get_activation
from ..ops.attention import (
    attention,
    merge_heads,
    relative_key_scores,
    relative_position_embeddings,
    relative_query_key_scores,
    single_query_attention,
    split_heads,
)
from ..ops.layer_norm import layer_norm
from ..ops.linear import linear

# --- embeddings ------------------------------------------------------------------------------------


def bert_embeddings(p, cfg, input_ids, token_type_ids, position_ids, inputs_embeds=None):
    """LayerNorm(word[ids] + token_type[tt] + position[pos]) -> [B, S, D].

    input_ids, token_type_ids, position_ids [B, S] (position_ids may be [1, S]); ``inputs_embeds`` [B, S, D]
    replaces the word lookup. Position embeddings are added only for ``absolute`` position embeddings
    (the relative kinds add their terms inside attention). Summation order is transformers'.
    """
    x = p["word_embeddings.weight"][input_ids] if inputs_embeds is None else inputs_embeds  # [B, S, D]
    x = x + p["token_type_embeddings.weight"][token_type_ids]
    if cfg.position_embedding_type == "absolute":
        x += p["position_embeddings.weight"][position_ids]
    return layer_norm(x, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)


# --- attention blocks ------------------------------------------------------------------------------


def _heads(p, name, x, num_heads):
    """Project x [B, S, D] with the ``name`` linear and split into heads -> [B, N, S, H].

    The projection is row-wise, so it runs block by block over the tokens (``map_rows``).
    """
    weight, bias = p[name + ".weight"], p[name + ".bias"]
    return split_heads(map_rows(lambda rows: linear(rows, weight, bias), x, width=weight.shape[0]), num_heads)


def relative_position_scores(p, cfg, q, k, query_positions, key_positions):
    """The relative-position terms added to q k^T (before scaling), or None for absolute embeddings.

    relative_key:        sum_h q[l, h] E[l, r, h]
    relative_key_query:  sum_h q[l, h] E[l, r, h] + sum_h k[r, h] E[l, r, h]
    with E[l, r] = distance_embedding[query_positions[l] - key_positions[r] + max_position_embeddings - 1].
    q [B, N, S, H], k [B, N, T, H] -> [B, N, S, T].
    """
    if cfg.position_embedding_type == "absolute":
        return None
    emb = relative_position_embeddings(
        p["distance_embedding.weight"], query_positions, key_positions, cfg.max_position_embeddings
    ).astype(q.dtype, copy=False)  # [S, T, H]
    scores = relative_key_scores(q, emb)
    if cfg.position_embedding_type == "relative_key_query":
        scores += relative_query_key_scores(k, emb)
    return scores


def self_attention(p, cfg, x, mask, head_mask):
    """Self-attention of x over itself, no cache: the encoder's, or a decoder's with a causal ``mask``.

    p: ``attention.self.`` block. x [B, S, D]; mask additive, broadcastable to [B, N, S, S].
    Returns (context [B, S, D], probs [B, N, S, S]).
    """
    xp = _xp(x)
    n = cfg.num_attention_heads
    # The three projections, row block by row block (each block of x read once): 3 x [B, S, D].
    w = [(p[name + ".weight"], p[name + ".bias"]) for name in ("query", "key", "value")]
    qkv = map_rows(lambda rows: tuple(linear(rows, *wb) for wb in w), x, width=tuple(wb[0].shape[0] for wb in w))
    q, k, v = (split_heads(h, n) for h in qkv)  # [B, N, S, H]
    positions = xp.arange(x.shape[1])
    extra = relative_position_scores(p, cfg, q, k, positions, positions)
    context, probs = attention(q, k, v, mask, head_mask, extra)  # [B, N, S, H]
    return merge_heads(context), probs  # [B, S, D]


def cached_self_attention(p, cfg, x, mask, head_mask, cache, layer):
    """Causal self-attention of x's S new positions over the P cached ones and themselves.

    The new keys and values are written into ``cache`` (a KVCache) at [P, P + S) in place; attention
    then reads positions [0, T). mask additive [B, 1, S, T] (causal and padding).
    Relative positions: transformers 4.57.6 gives *every* query the position T - 1 whenever a cache is in
    use (it assumes one new token per step); we do the same so results match tensor for tensor. With
    one token per step, as in generation, this is also the exact math.
    Returns (context [B, S, D], probs [B, N, S, T]).
    """
    xp = _xp(x)
    n = cfg.num_attention_heads
    q, k_new, v_new = _heads(p, "query", x, n), _heads(p, "key", x, n), _heads(p, "value", x, n)
    k, v = cache.write(layer, k_new, v_new)  # [B, N, T, H] views of the cache
    t = k.shape[2]
    query_positions = xp.full(x.shape[1], t - 1)
    extra = relative_position_scores(p, cfg, q, k, query_positions, xp.arange(t))
    context, probs = _attend(q, k, v, mask, head_mask, extra)
    return merge_heads(context), probs


def cross_attention_kv(p, cfg, encoder_hidden_states):
    """Keys and values of the encoder output for one layer's cross-attention: 2 x [B, N, E, H].

    Computed once per sequence and reused at every decoding step.
    """
    n = cfg.num_attention_heads
    return _heads(p, "key", encoder_hidden_states, n), _heads(p, "value", encoder_hidden_states, n)


def cross_attention(p, cfg, x, kv, mask, head_mask):
    """Attention of decoder positions x [B, S, D] over encoder keys/values ``kv`` (2 x [B, N, E, H]).

    Always absolute (no relative-position terms), as in transformers. mask additive [B, 1, 1|S, E].
    Returns (context [B, S, D], probs [B, N, S, E]).
    """
    q = _heads(p, "query", x, cfg.num_attention_heads)  # [B, N, S, H]
    context, probs = _attend(q, kv[0], kv[1], mask, head_mask)
    return merge_heads(context), probs


def _attend(q, k, v, mask, head_mask, position_scores=None):
    """The decoder's attention: :func:`single_query_attention` for one new position (a decode step),
    else :func:`attention`. Same formula either way (tests/test_decode_attention.py)."""
    if q.shape[2] == 1:
        return single_query_attention(q, k, v, mask, head_mask, position_scores)
    return attention(q, k, v, mask, head_mask, position_scores)


def attention_output(p, cfg, context, residual):
    """LayerNorm(dense(context) + residual): the ``attention.output.`` block. [B, S, D] -> [B, S, D]."""
    h = linear(context, p["dense.weight"], p["dense.bias"])
    h += residual
    return layer_norm(h, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps, out=h)


def feed_forward(p, cfg, x):
    """LayerNorm(W2 act(W1 x + b1) + b2 + x): ``intermediate.`` then ``output.``. [B, S, D] -> [B, S, D]."""
    act = get_activation(cfg.hidden_act)
    h = linear(x, p["intermediate.dense.weight"], p["intermediate.dense.bias"])  # [B, S, F]
    h = act(h, out=h)  # in place: no second [B, S, F] array
    h = linear(h, p["output.dense.weight"], p["output.dense.bias"])  # [B, S, D]
    h += x
    return layer_norm(h, p["output.LayerNorm.weight"], p["output.LayerNorm.bias"], cfg.layer_norm_eps, out=h)


# --- layers and stacks -----------------------------------------------------------------------------


def encoder_layer(p, cfg, x, mask, head_mask):
    """One encoder layer: self-attention, add & norm, feed-forward, add & norm.

    p: ``encoder.layer.{i}.``. x [B, S, D] -> (x [B, S, D], self-attention probs [B, N, S, S]).
    """
    context, probs = self_attention(p.sub("attention.self."), cfg, x, mask, head_mask)  # [B, S, D]
    # From here on every token is independent: both blocks run row block by row block, one block per
    # core (``map_rows``).
    out_p = p.sub("attention.output.")
    x = map_rows(lambda c, r: feed_forward(p, cfg, attention_output(out_p, cfg, c, r)), context, x)
    return x, probs


def decoder_layer(p, cfg, x, mask, head_mask, cache, layer, cross_kv, cross_mask):
    """One decoder layer: causal self-attention (through ``cache`` if given), cross-attention over the
    encoder (if ``cross_kv`` is given), feed-forward; each followed by add & norm.

    x [B, S, D] -> (x [B, S, D], self probs [B, N, S, T], cross probs [B, N, S, E] or None).
    """
    if cache is None:
        context, probs = self_attention(p.sub("attention.self."), cfg, x, mask, head_mask)
    else:
        context, probs = cached_self_attention(p.sub("attention.self."), cfg, x, mask, head_mask, cache, layer)
    # The add & norm blocks and the feed-forward are row-wise: row blocks, as in ``encoder_layer``.
    self_out = p.sub("attention.output.")
    if cross_kv is None:
        x = map_rows(lambda c, r: feed_forward(p, cfg, attention_output(self_out, cfg, c, r)), context, x)
        return x, probs, None
    x = map_rows(lambda c, r: attention_output(self_out, cfg, c, r), context, x)
    context, cross_probs = cross_attention(p.sub("crossattention.self."), cfg, x, cross_kv, cross_mask, head_mask)
    cross_out = p.sub("crossattention.output.")
    x = map_rows(lambda c, r: feed_forward(p, cfg, attention_output(cross_out, cfg, c, r)), context, x)
    return x, probs, cross_probs


def encoder_stack(p, cfg, x, mask, head_masks, output_hidden_states=False, output_attentions=False):
    """The L encoder layers. p: ``encoder.``. x [B, S, D] -> (x, hidden_states or None, attentions or None).

    hidden_states: the L + 1 inputs/outputs of the layers (embeddings first); attentions: L [B, N, S, S].
    """
    hidden, attns = [], []
    for i in range(cfg.num_hidden_layers):
        hidden.append(x)
        x, probs = encoder_layer(p.sub(f"layer.{i}."), cfg, x, mask, head_masks[i])
        attns.append(probs)
    hidden.append(x)
    return x, (tuple(hidden) if output_hidden_states else None), (tuple(attns) if output_attentions else None)


def decoder_stack(p, cfg, x, mask, head_masks, cache, encoder_hidden_states, cross_mask,
                  output_hidden_states=False, output_attentions=False):
    """The L decoder layers. p: ``encoder.`` (transformers keeps that name for a decoder's layers).

    cache: a KVCache or None. Cross-attention runs when the config has it and either
    ``encoder_hidden_states`` [B, E, D] is given or the cache already holds the encoder's K/V.
    Returns (x, cache advanced by S (or None), hidden_states, attentions, cross_attentions).
    """
    use_cross = cfg.add_cross_attention and (
        encoder_hidden_states is not None or (cache is not None and cache.cross_keys is not None)
    )
    hidden, attns, cross_attns, cross_keys, cross_values = [], [], [], [], []
    for i in range(cfg.num_hidden_layers):
        layer_p = p.sub(f"layer.{i}.")
        cross_kv = None
        if use_cross:
            if cache is not None and cache.cross_keys is not None:
                cross_kv = (cache.cross_keys[i], cache.cross_values[i])
            else:
                cross_kv = cross_attention_kv(layer_p.sub("crossattention.self."), cfg, encoder_hidden_states)
            cross_keys.append(cross_kv[0])
            cross_values.append(cross_kv[1])
        hidden.append(x)
        x, probs, cross_probs = decoder_layer(layer_p, cfg, x, mask, head_masks[i], cache, i, cross_kv, cross_mask)
        attns.append(probs)
        cross_attns.append(cross_probs)
    hidden.append(x)
    if cache is not None:
        cache = cache.advanced(x.shape[1], cross_keys or None, cross_values or None)
    return (
        x,
        cache,
        tuple(hidden) if output_hidden_states else None,
        tuple(attns) if output_attentions else None,
        tuple(cross_attns) if output_attentions and use_cross else None,
    )


# --- pooler and heads ------------------------------------------------------------------------------


def pooler(p, x):
    """tanh(dense(x[:, 0])): the first token's final state, projected. p: ``pooler.``. [B, S, D] -> [B, D]."""
    xp = _xp(x)
    return xp.tanh(linear(x[:, 0], p["dense.weight"], p["dense.bias"]))


def lm_prediction_head(p, cfg, x, output_weight, output_weight_t=None):
    """Masked/causal LM logits: decoder(LayerNorm(act(dense(x)))) + bias.

    p: ``cls.predictions.``; output_weight [V, D] (the word embeddings when tied). [B, S, D] -> [B, S, V].
    ``output_weight_t``: optionally the same matrix transposed, contiguous [D, V]; the product is then
    h @ output_weight_t + bias — ``linear``'s formula x W^T + b with W^T already laid out row-major. For
    the few rows of a decode step this runs 1.5-2.5x faster on OpenBLAS than either form ``linear`` can
    use with the [V, D] checkpoint layout (measured, 2 threads, V=30522, D=384: 1 row 0.7 vs 1.8 ms, 32
    rows 6.8 vs 10.3-12.5 ms).
    """
    act = get_activation(cfg.hidden_act)
    h = act(linear(x, p["transform.dense.weight"], p["transform.dense.bias"]))
    h = layer_norm(h, p["transform.LayerNorm.weight"], p["transform.LayerNorm.bias"], cfg.layer_norm_eps)
    if output_weight_t is not None:
        y = h.reshape(-1, h.shape[-1]) @ output_weight_t  # one [B*S, D] x [D, V] product (a 3-D h would
        y += p["bias"]  # make numpy run B separate [S, D] x [D, V] products, each re-reading the matrix)
        return y.reshape(h.shape[:-1] + (y.shape[-1],))
    return linear(h, output_weight, p["bias"])
