"""BERT as pure functions over checkpoint-named parameters.

Dimension legend (google-research/bert style):
    B  batch                      S  tokens in this call (query length)
    P  cached (past) positions    T  key length = P + S
    E  encoder length (cross-attention keys)
    D  hidden size                N  attention heads        H  head size = D / N
    F  intermediate size          V  vocabulary size        L  layers

Every function takes ``ops``, the model's kernel set (``refimpl.kernels.Kernels``: the reference
definitions of ``refimpl/ops`` or their fast versions, same signatures and results), and ``p``, a
:class:`Params` view whose names are transformers' checkpoint names relative to the block
(``p["attention.self.query.weight"]``), plus arrays; it returns arrays. ``ops.record(p, name, x)`` files an
intermediate with the model's recorder, if it has one, under ``p``'s prefix + ``name``
(docs/intermediates.md). ``ops.per_token(fn, p, cfg, *arrays)`` is ``fn(ops, p, cfg, *arrays)`` for the
parts in which every token is independent (the projections, add & norm, the feed-forward): the fast set
runs them on row blocks over the cores, the reference set calls them. Dropout is the identity (inference). Behaviour follows transformers 4.57.6 with
eager attention, including where that is surprising; each such place says so.
"""

from __future__ import annotations

from ..backend import array_module as _xp
from ..ops.attention import merge_heads, relative_position_embeddings, split_heads

# --- embeddings ------------------------------------------------------------------------------------


def bert_embeddings(ops, p, cfg, input_ids, token_type_ids, position_ids, inputs_embeds=None):
    """LayerNorm(word[ids] + token_type[tt] + position[pos]) -> [B, S, D].

    input_ids, token_type_ids, position_ids [B, S] (position_ids may be [1, S]); ``inputs_embeds`` [B, S, D]
    replaces the word lookup. Position embeddings are added only for ``absolute`` position embeddings
    (the relative kinds add their terms inside attention). Summation order is transformers'.
    """
    words = ops.embedding(p["word_embeddings.weight"], input_ids) if inputs_embeds is None else inputs_embeds
    ops.record(p, "word_embeddings", words)  # [B, S, D]
    types = ops.record(p, "token_type_embeddings", ops.embedding(p["token_type_embeddings.weight"], token_type_ids))
    x = words + types
    if cfg.position_embedding_type == "absolute":
        x = x + ops.record(p, "position_embeddings", ops.embedding(p["position_embeddings.weight"], position_ids))
    ops.record(p, "sum", x)
    x = ops.layer_norm(x, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)
    return ops.record(p, "LayerNorm", x)


# --- attention blocks ------------------------------------------------------------------------------


def projection(ops, p, name, x):
    """The ``name`` linear of block ``p`` applied to x, recorded under ``name``. [.., I] -> [.., O]."""
    return ops.record(p, name, ops.linear(x, p[name + ".weight"], p[name + ".bias"]))


def qkv_projections(ops, p, cfg, x):
    """The query, key and value projections of x [B, S, D] (p: ``attention.self.``) -> 3 x [B, S, D]."""
    return projection(ops, p, "query", x), projection(ops, p, "key", x), projection(ops, p, "value", x)


def kv_projections(ops, p, cfg, x):
    """The key and value projections of x [B, E, D] (p: ``crossattention.self.``) -> 2 x [B, E, D]."""
    return projection(ops, p, "key", x), projection(ops, p, "value", x)


def relative_position_scores(ops, p, cfg, q, k, query_positions, key_positions):
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
    scores = ops.relative_key_scores(q, emb)
    if cfg.position_embedding_type == "relative_key_query":
        scores = scores + ops.relative_query_key_scores(k, emb)
    return ops.record(p, "position_scores", scores)


def self_attention(ops, p, cfg, x, mask, head_mask):
    """Self-attention of x over itself, no cache: the encoder's, or a decoder's with a causal ``mask``.

    p: ``attention.self.`` block. x [B, S, D]; mask additive, broadcastable to [B, N, S, S].
    Returns (context [B, S, D], probs [B, N, S, S]).
    """
    q, k, v = (split_heads(h, cfg.num_attention_heads) for h in ops.per_token(qkv_projections, p, cfg, x))  # [B, N, S, H]
    positions = _xp(x).arange(x.shape[1])
    extra = relative_position_scores(ops, p, cfg, q, k, positions, positions)
    context, probs = ops.attention(q, k, v, mask, head_mask, extra, record=ops.recording(p))  # [B, N, S, H]
    return ops.record(p, "context", merge_heads(context)), probs  # [B, S, D]


def cached_self_attention(ops, p, cfg, x, mask, head_mask, cache, layer):
    """Causal self-attention of x's S new positions over the P cached ones and themselves.

    The new keys and values are written into ``cache`` (a KVCache) at [P, P + S) in place; attention
    then reads positions [0, T). mask additive [B, 1, S, T] (causal and padding).
    Relative positions: transformers 4.57.6 gives *every* query the position T - 1 whenever a cache is in
    use (it assumes one new token per step); we do the same so results match tensor for tensor. With
    one token per step, as in generation, this is also the exact math.
    Returns (context [B, S, D], probs [B, N, S, T]).
    """
    xp = _xp(x)
    q, k_new, v_new = (split_heads(h, cfg.num_attention_heads) for h in ops.per_token(qkv_projections, p, cfg, x))
    k, v = cache.write(layer, k_new, v_new)  # [B, N, T, H] views of the cache
    ops.record(p, "cache_key", k)
    ops.record(p, "cache_value", v)
    t = k.shape[2]
    extra = relative_position_scores(ops, p, cfg, q, k, xp.full(x.shape[1], t - 1), xp.arange(t))
    context, probs = ops.attention(q, k, v, mask, head_mask, extra, record=ops.recording(p))
    return ops.record(p, "context", merge_heads(context)), probs


def cross_attention_kv(ops, p, cfg, encoder_hidden_states):
    """Keys and values of the encoder output for one layer's cross-attention: 2 x [B, N, E, H].

    Computed once per sequence and reused at every decoding step.
    """
    k, v = ops.per_token(kv_projections, p, cfg, encoder_hidden_states)  # [B, E, D]
    return split_heads(k, cfg.num_attention_heads), split_heads(v, cfg.num_attention_heads)


def cross_attention(ops, p, cfg, x, kv, mask, head_mask):
    """Attention of decoder positions x [B, S, D] over encoder keys/values ``kv`` (2 x [B, N, E, H]).

    Always absolute (no relative-position terms), as in transformers. mask additive [B, 1, 1|S, E].
    Returns (context [B, S, D], probs [B, N, S, E]).
    """
    q = split_heads(projection(ops, p, "query", x), cfg.num_attention_heads)  # [B, N, S, H]
    context, probs = ops.attention(q, kv[0], kv[1], mask, head_mask, record=ops.recording(p))
    return ops.record(p, "context", merge_heads(context)), probs


def add_norm(ops, p, cfg, h, residual):
    """LayerNorm(dense(h) + residual): an ``attention.output.`` / ``output.`` block. [B, S, *] -> [B, S, D]."""
    y = projection(ops, p, "dense", h)
    y = ops.add_layer_norm(y, residual, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)
    return ops.record(p, "LayerNorm", y)


def attention_output_and_feed_forward(ops, p, cfg, context, x):
    """The token-wise rest of a layer after its (last) attention (p: ``encoder.layer.{i}.``): add & norm
    of ``attention.output.``, then the feed-forward with its add & norm. [B, S, D] -> [B, S, D]."""
    return feed_forward(ops, p, cfg, add_norm(ops, p.sub("attention.output."), cfg, context, x))


def cross_attention_output_and_feed_forward(ops, p, cfg, context, x):
    """As :func:`attention_output_and_feed_forward`, after cross-attention: ``crossattention.output.``."""
    return feed_forward(ops, p, cfg, add_norm(ops, p.sub("crossattention.output."), cfg, context, x))


def feed_forward(ops, p, cfg, x):
    """LayerNorm(W2 act(W1 x + b1) + b2 + x): ``intermediate.`` then ``output.``. [B, S, D] -> [B, S, D]."""
    h = projection(ops, p, "intermediate.dense", x)  # [B, S, F]
    h = ops.record(p, "intermediate.intermediate_act_fn", ops.activation(cfg.hidden_act)(h))
    return add_norm(ops, p.sub("output."), cfg, h, x)  # [B, S, D]


# --- layers and stacks -----------------------------------------------------------------------------


def encoder_layer(ops, p, cfg, x, mask, head_mask):
    """One encoder layer: self-attention, add & norm, feed-forward, add & norm.

    p: ``encoder.layer.{i}.``. x [B, S, D] -> (x [B, S, D], self-attention probs [B, N, S, S]).
    """
    context, probs = self_attention(ops, p.sub("attention.self."), cfg, x, mask, head_mask)  # [B, S, D]
    x = ops.per_token(attention_output_and_feed_forward, p, cfg, context, x)  # [B, S, D]
    return x, probs


def decoder_layer(ops, p, cfg, x, mask, head_mask, cache, layer, cross_kv, cross_mask):
    """One decoder layer: causal self-attention (through ``cache`` if given), cross-attention over the
    encoder (if ``cross_kv`` is given), feed-forward; each followed by add & norm.

    x [B, S, D] -> (x [B, S, D], self probs [B, N, S, T], cross probs [B, N, S, E] or None).
    """
    if cache is None:
        context, probs = self_attention(ops, p.sub("attention.self."), cfg, x, mask, head_mask)
    else:
        context, probs = cached_self_attention(ops, p.sub("attention.self."), cfg, x, mask, head_mask, cache, layer)
    if cross_kv is None:
        x = ops.per_token(attention_output_and_feed_forward, p, cfg, context, x)
        return x, probs, None
    x = ops.per_token(add_norm, p.sub("attention.output."), cfg, context, x)
    context, cross_probs = cross_attention(ops, p.sub("crossattention.self."), cfg, x, cross_kv, cross_mask, head_mask)
    x = ops.per_token(cross_attention_output_and_feed_forward, p, cfg, context, x)
    return x, probs, cross_probs


def encoder_stack(ops, p, cfg, x, mask, head_masks, output_hidden_states=False, output_attentions=False):
    """The L encoder layers. p: ``encoder.``. x [B, S, D] -> (x, hidden_states or None, attentions or None).

    hidden_states: the L + 1 inputs/outputs of the layers (embeddings first); attentions: L [B, N, S, S].
    """
    hidden, attns = [], []
    for i in range(cfg.num_hidden_layers):
        hidden.append(x)
        x, probs = encoder_layer(ops, p.sub(f"layer.{i}."), cfg, x, mask, head_masks[i])
        attns.append(probs)
    hidden.append(x)
    return x, (tuple(hidden) if output_hidden_states else None), (tuple(attns) if output_attentions else None)


def decoder_stack(ops, p, cfg, x, mask, head_masks, cache, encoder_hidden_states, cross_mask,
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
                cross_kv = cross_attention_kv(ops, layer_p.sub("crossattention.self."), cfg, encoder_hidden_states)
            cross_keys.append(cross_kv[0])
            cross_values.append(cross_kv[1])
        hidden.append(x)
        x, probs, cross_probs = decoder_layer(ops, layer_p, cfg, x, mask, head_masks[i], cache, i, cross_kv,
                                              cross_mask)
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


def pooler(ops, p, x):
    """tanh(dense(x[:, 0])): the first token's final state, projected. p: ``pooler.``. [B, S, D] -> [B, D]."""
    h = projection(ops, p, "dense", x[:, 0])
    return ops.record(p, "activation", _xp(h).tanh(h))


def lm_prediction_head(ops, p, cfg, x, output_weight):
    """Masked/causal LM logits: decoder(LayerNorm(act(dense(x)))) + bias.

    p: ``cls.predictions.``; output_weight [V, D] (the word embeddings when tied). [B, S, D] -> [B, S, V].
    """
    h = projection(ops, p, "transform.dense", x)
    h = ops.record(p, "transform.transform_act_fn", ops.activation(cfg.hidden_act)(h))
    h = ops.layer_norm(h, p["transform.LayerNorm.weight"], p["transform.LayerNorm.bias"], cfg.layer_norm_eps)
    ops.record(p, "transform.LayerNorm", h)
    return ops.record(p, "decoder", ops.linear(h, output_weight, p["bias"]))  # [B, S, V]

