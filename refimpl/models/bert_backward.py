"""BERT's training math: each layer function of :mod:`refimpl.models.bert` in training mode (dropout, a
tape of what its backward needs) beside its backward, composed from the backward functions of
:mod:`refimpl.ops`.

Dimension legend (as refimpl/models/bert.py): B batch, S tokens, T keys (= S here: no cache), E encoder
length, D hidden size, N heads, H head size, F intermediate size, V vocabulary size.

Each ``<block>_train(t, p, cfg, ...)`` mirrors the function of the same name in bert.py and returns its
outputs and a tape (a NamedTuple); ``<block>_backward(t, p, cfg, d_out, tape)`` returns the gradients
with respect to the block's inputs and adds those of its parameters into ``t.grads`` under their full
checkpoint names (``p.name(...)``), accumulating where a tensor is used twice (a tied LM head). ``t`` is
a :class:`Step`: the kernel set the forward's products run on, the dropout plan and the gradients.

Dropout follows transformers 4.57.6: after the embeddings' LayerNorm, on the attention probabilities
(before the head mask), after the attention-output and output projections (before the residual add &
norm), and on the classifier heads' input. Each site is named as transformers' ``nn.Dropout`` module
(``bert.encoder.layer.0.attention.self.dropout``), so a test can replay torch's masks by name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_module as _xp
from ..errors import InputError
from ..ops.activations import activation_backward, tanh_backward
from ..ops.attention import (
    attention_backward,
    attention_forward,
    merge_heads,
    relative_key_scores,
    relative_key_scores_backward,
    relative_position_embeddings,
    relative_position_embeddings_backward,
    relative_query_key_scores,
    relative_query_key_scores_backward,
    split_heads,
)
from ..ops.dropout import dropout, dropout_factor, dropout_mask
from ..ops.embeddings import embedding_backward
from ..ops.layer_norm import add_layer_norm_forward, layer_norm_backward, layer_norm_forward
from ..ops.linear import linear_backward


class Grads(dict):
    """name -> gradient; :meth:`add` accumulates (a tensor used twice gets the sum, as autograd gives)."""

    def add(self, name, value):
        """Every value added is a new array of the backward's own, so the sum is made in place."""
        if name in self:
            self[name] += value
        else:
            self[name] = value


class Dropout:
    """The dropout plan of one training forward: which sites drop, with which keep masks.

    ``train`` False: no dropout anywhere (torch's ``model.eval()``). Otherwise each site with p > 0 uses
    ``masks[name]`` when given (a boolean keep mask of the site's shape, e.g. torch's, replayed), else a
    mask drawn from ``rng`` (a numpy Generator) in the order the forward reaches the sites. ``used``
    holds every mask applied, by site name.
    """

    def __init__(self, train=False, rng=None, masks=None):
        self.train, self.rng, self.masks, self.used = train, rng, dict(masks or {}), {}

    def keep(self, name, shape, p, xp):
        """The keep mask of site ``name`` (``shape``, probability ``p``), or None when it does not drop."""
        if not self.train or p == 0:
            return None
        if name in self.masks:
            keep = xp.asarray(self.masks[name]).astype(bool)
            if tuple(keep.shape) != tuple(shape):
                raise InputError(f"dropout_masks[{name!r}] has shape {tuple(keep.shape)}, expected {tuple(shape)}")
        elif self.rng is not None:
            keep = xp.asarray(dropout_mask(self.rng, shape, p))
        else:
            raise InputError(
                f"dropout is on at {name} (p={p}) but no generator was given: pass rng=numpy.random.default_rng(seed) "
                "(or dropout_masks={name: keep mask}), or train=False for eval-mode gradients (torch's model.eval())"
            )
        self.used[name] = keep
        return keep


class Step(NamedTuple):
    """What every training function shares: the forward's kernel set, the dropout plan, the gradients."""

    ops: Any  # refimpl.kernels.Kernels (its linear and activation run the forward's products)
    drop: Dropout
    grads: Grads


def _dropout(t, name, x, p):
    """Dropout of x at site ``name`` -> (y, keep or None)."""
    keep = t.drop.keep(name, x.shape, p, _xp(x))
    return dropout(x, keep, p), keep


def _linear(t, p, name, x):
    return t.ops.linear(x, p[name + ".weight"], p.get(name + ".bias"))


def _linear_backward(t, p, name, dy, x):
    """dx of y = x W^T + b for block ``name`` of ``p``; dW and db into the gradients."""
    dx, dw, db = linear_backward(dy, x, p[name + ".weight"], has_bias=(name + ".bias") in p)
    t.grads.add(p.name(name + ".weight"), dw)
    if db is not None:
        t.grads.add(p.name(name + ".bias"), db)
    return dx


def _layer_norm_backward(t, p, name, dy, tape):
    dx, dw, db = layer_norm_backward(dy, tape, p[name + ".weight"])
    t.grads.add(p.name(name + ".weight"), dw)
    t.grads.add(p.name(name + ".bias"), db)
    return dx


# --- embeddings ------------------------------------------------------------------------------------


class EmbeddingsTape(NamedTuple):
    input_ids: Any  # [B, S] or None (inputs_embeds given)
    token_type_ids: Any  # [B, S] or None (BertGeneration: no token types)
    position_ids: Any  # [B or 1, S] or None (relative positions in BERT: not added)
    ln: Any  # LayerNormTape
    keep: Any  # dropout keep mask or None


def embeddings_train(t, p, cfg, input_ids, token_type_ids, position_ids, inputs_embeds=None, generation=False):
    """``bert.bert_embeddings`` (``generation``: ``bert_generation.bert_generation_embeddings``: no token types,
    positions always added) in training mode: dropout after the LayerNorm. -> (x [B, S, D], EmbeddingsTape)."""
    words = t.ops.embedding(p["word_embeddings.weight"], input_ids) if inputs_embeds is None else inputs_embeds
    if generation:
        token_type_ids = None
        x = words
    else:
        x = words + t.ops.embedding(p["token_type_embeddings.weight"], token_type_ids)
    if generation or cfg.position_embedding_type == "absolute":
        x = x + t.ops.embedding(p["position_embeddings.weight"], position_ids)
    else:
        position_ids = None
    x, ln = layer_norm_forward(x, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)
    x, keep = _dropout(t, p.name("dropout"), x, cfg.hidden_dropout_prob)
    return x, EmbeddingsTape(input_ids if inputs_embeds is None else None, token_type_ids, position_ids, ln, keep)


def embeddings_backward(t, p, cfg, dx, tape, padding_idx):
    """Gradients of the embedding block: the tables by scatter-add (rows named in ``padding_idx``,
    {"word_embeddings": id, ...}, get none from their padding id, as nn.Embedding(padding_idx=...)).
    Returns d(words) [B, S, D]: the gradient with respect to ``inputs_embeds``."""
    dx = dropout(dx, tape.keep, cfg.hidden_dropout_prob)
    dsum = _layer_norm_backward(t, p, "LayerNorm", dx, tape.ln)  # [B, S, D]
    xp = _xp(dsum)
    lead = dsum.shape[:2]

    def table(name, ids):
        w, full = p[name + ".weight"], p.name(name + ".weight")
        ids = xp.broadcast_to(ids, lead)
        if full in t.grads:  # a tied table (the LM head's gradient is there): scatter-add into it in place
            embedding_backward_add(t.grads[full], dsum, ids, padding_idx.get(name))
        else:
            t.grads.add(full, embedding_backward(dsum, ids, w.shape[0], padding_idx.get(name)))

    if tape.position_ids is not None:
        table("position_embeddings", tape.position_ids)
    if tape.token_type_ids is not None:
        table("token_type_embeddings", tape.token_type_ids)
    if tape.input_ids is not None:
        table("word_embeddings", tape.input_ids)
    return dsum


def embedding_backward_add(dw, dy, ids, padding_idx=None):
    """dw += ``ops.embeddings.embedding_backward(dy, ids, len(dw), padding_idx)``, without the [V, D]
    temporary (for a tied word-embedding table whose gradient already holds the LM head's): rows of dy
    looked up through the padding id are left out, which is what zeroing that row of the lookup's gradient
    means (tests/test_grad_ops.py checks the two agree)."""
    xp = _xp(dy)
    d = dy.shape[-1]
    flat_ids, rows = ids.reshape(-1), dy.reshape(-1, d)
    if padding_idx is not None:
        keep = flat_ids != padding_idx
        flat_ids, rows = flat_ids[keep], rows[keep]
    xp.add.at(dw, flat_ids, rows)


# --- attention blocks ------------------------------------------------------------------------------


class SelfAttentionTape(NamedTuple):
    x: Any  # the block's input [B, S, D]
    attention: Any  # ops.attention.AttentionTape
    emb: Any  # relative-position embeddings E [S, T, H], or None
    positions: Any  # (query positions [S], key positions [T]), or None


def self_attention_train(t, p, cfg, x, mask, head_mask, cached=False):
    """``bert.self_attention`` in training mode (dropout on the probabilities, p: ``attention.self.``).
    ``cached``: the relative positions of ``bert.cached_self_attention`` on an empty cache (transformers
    4.57.6 gives every query the position T - 1 whenever its decoder runs with a cache, as an
    EncoderDecoderModel's decoder does by default). -> (context [B, S, D], probabilities used [B, N, S, S],
    SelfAttentionTape)."""
    n = cfg.num_attention_heads
    q, k, v = (split_heads(_linear(t, p, name, x), n) for name in ("query", "key", "value"))  # [B, N, S, H]
    extra, emb, positions = None, None, None
    if cfg.position_embedding_type != "absolute":
        xp, s = _xp(x), x.shape[1]
        positions = (xp.full(s, s - 1) if cached else xp.arange(s), xp.arange(s))  # (queries, keys)
        emb = relative_position_embeddings(p["distance_embedding.weight"], positions[0], positions[1],
                                           cfg.max_position_embeddings).astype(q.dtype, copy=False)  # [S, T, H]
        extra = relative_key_scores(q, emb)
        if cfg.position_embedding_type == "relative_key_query":
            extra = extra + relative_query_key_scores(k, emb)
    context, weights, tape = _attention(t, p, cfg, q, k, v, mask, head_mask, extra)
    return merge_heads(context), weights, SelfAttentionTape(x, tape, emb, positions)


def _attention(t, p, cfg, q, k, v, mask, head_mask, extra):
    b, n, s, _ = q.shape
    pr = cfg.attention_probs_dropout_prob
    keep = t.drop.keep(p.name("dropout"), (b, n, s, k.shape[2]), pr, _xp(q))
    factor = None if keep is None else dropout_factor(keep, pr, q.dtype)
    return attention_forward(q, k, v, mask, head_mask, extra, factor)


def self_attention_backward(t, p, cfg, dcontext, tape):
    """Gradients of :func:`self_attention_train`: dcontext [B, S, D] -> dx [B, S, D]."""
    n = cfg.num_attention_heads
    dq, dk, dv, dz = attention_backward(split_heads(dcontext, n), tape.attention)  # [B, N, *, H]
    if tape.emb is not None:
        dq_rel, demb = relative_key_scores_backward(dz, tape.attention.q, tape.emb)
        dq = dq + dq_rel
        if cfg.position_embedding_type == "relative_key_query":
            dk_rel, demb_k = relative_query_key_scores_backward(dz, tape.attention.k, tape.emb)
            dk, demb = dk + dk_rel, demb + demb_k
        table = p["distance_embedding.weight"]
        t.grads.add(p.name("distance_embedding.weight"), relative_position_embeddings_backward(
            demb, tape.positions[0], tape.positions[1], cfg.max_position_embeddings, table.shape[0]).astype(table.dtype))
    x = tape.x
    dx = _linear_backward(t, p, "query", merge_heads(dq), x)
    dx = dx + _linear_backward(t, p, "key", merge_heads(dk), x)
    return dx + _linear_backward(t, p, "value", merge_heads(dv), x)


class CrossAttentionTape(NamedTuple):
    x: Any  # decoder states [B, S, D]
    encoder_hidden_states: Any  # [B, E, D]
    attention: Any  # ops.attention.AttentionTape


def cross_attention_train(t, p, cfg, x, encoder_hidden_states, mask, head_mask):
    """``bert.cross_attention_kv`` + ``bert.cross_attention`` in training mode (p: ``crossattention.self.``).
    -> (context [B, S, D], probabilities used [B, N, S, E], CrossAttentionTape)."""
    n = cfg.num_attention_heads
    q = split_heads(_linear(t, p, "query", x), n)
    k, v = (split_heads(_linear(t, p, name, encoder_hidden_states), n) for name in ("key", "value"))
    context, weights, tape = _attention(t, p, cfg, q, k, v, mask, head_mask, None)
    return merge_heads(context), weights, CrossAttentionTape(x, encoder_hidden_states, tape)


def cross_attention_backward(t, p, cfg, dcontext, tape):
    """Gradients of :func:`cross_attention_train` -> (dx [B, S, D], d encoder_hidden_states [B, E, D])."""
    dq, dk, dv, _ = attention_backward(split_heads(dcontext, cfg.num_attention_heads), tape.attention)
    dx = _linear_backward(t, p, "query", merge_heads(dq), tape.x)
    enc = tape.encoder_hidden_states
    denc = _linear_backward(t, p, "key", merge_heads(dk), enc) + _linear_backward(t, p, "value", merge_heads(dv), enc)
    return dx, denc


class AddNormTape(NamedTuple):
    h: Any  # the dense's input
    keep: Any  # dropout keep mask or None
    ln: Any  # LayerNormTape


def add_norm_train(t, p, cfg, h, residual):
    """``bert.add_norm`` in training mode: LayerNorm(dropout(dense(h)) + residual). -> (y, AddNormTape)."""
    y, keep = _dropout(t, p.name("dropout"), _linear(t, p, "dense", h), cfg.hidden_dropout_prob)
    y, ln = add_layer_norm_forward(y, residual, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)
    return y, AddNormTape(h, keep, ln)


def add_norm_backward(t, p, cfg, dy, tape):
    """Gradients of :func:`add_norm_train` -> (dh, d residual)."""
    dsum = _layer_norm_backward(t, p, "LayerNorm", dy, tape.ln)
    dh = _linear_backward(t, p, "dense", dropout(dsum, tape.keep, cfg.hidden_dropout_prob), tape.h)
    return dh, dsum


class FeedForwardTape(NamedTuple):
    x: Any  # input [B, S, D]
    pre: Any  # intermediate.dense output, the activation's input [B, S, F]
    out: Any  # AddNormTape of ``output.``


def feed_forward_train(t, p, cfg, x):
    """``bert.feed_forward`` in training mode. -> (y [B, S, D], FeedForwardTape)."""
    pre = _linear(t, p, "intermediate.dense", x)  # [B, S, F]
    y, out = add_norm_train(t, p.sub("output."), cfg, t.ops.activation(cfg.hidden_act)(pre), x)
    return y, FeedForwardTape(x, pre, out)


def feed_forward_backward(t, p, cfg, dy, tape):
    da, dx = add_norm_backward(t, p.sub("output."), cfg, dy, tape.out)
    dpre = activation_backward(cfg.hidden_act, da, tape.pre)
    return dx + _linear_backward(t, p, "intermediate.dense", dpre, tape.x)


# --- layers and the stack --------------------------------------------------------------------------


class LayerTape(NamedTuple):
    attention: SelfAttentionTape
    attention_output: AddNormTape
    cross: Any  # CrossAttentionTape or None
    cross_output: Any  # AddNormTape or None
    feed_forward: FeedForwardTape


def layer_train(t, p, cfg, x, mask, head_mask, encoder_hidden_states=None, cross_mask=None, cached=False):
    """``bert.encoder_layer`` / ``bert.decoder_layer`` in training mode (``cached``: see
    :func:`self_attention_train`); cross-attention when ``encoder_hidden_states`` is given.
    p: ``encoder.layer.{i}.``. -> (x [B, S, D], LayerTape)."""
    context, _, att = self_attention_train(t, p.sub("attention.self."), cfg, x, mask, head_mask, cached)
    x, att_out = add_norm_train(t, p.sub("attention.output."), cfg, context, x)
    cross = cross_out = None
    if encoder_hidden_states is not None:
        context, _, cross = cross_attention_train(t, p.sub("crossattention.self."), cfg, x, encoder_hidden_states,
                                                  cross_mask, head_mask)
        x, cross_out = add_norm_train(t, p.sub("crossattention.output."), cfg, context, x)
    x, ff = feed_forward_train(t, p, cfg, x)
    return x, LayerTape(att, att_out, cross, cross_out, ff)


def layer_backward(t, p, cfg, dx, tape):
    """Gradients of :func:`layer_train` -> (dx, d encoder_hidden_states or None)."""
    dx = feed_forward_backward(t, p, cfg, dx, tape.feed_forward)
    denc = None
    if tape.cross is not None:
        dcontext, dres = add_norm_backward(t, p.sub("crossattention.output."), cfg, dx, tape.cross_output)
        dq_side, denc = cross_attention_backward(t, p.sub("crossattention.self."), cfg, dcontext, tape.cross)
        dx = dres + dq_side
    dcontext, dres = add_norm_backward(t, p.sub("attention.output."), cfg, dx, tape.attention_output)
    return dres + self_attention_backward(t, p.sub("attention.self."), cfg, dcontext, tape.attention), denc


def stack_train(t, p, cfg, x, mask, head_masks, encoder_hidden_states=None, cross_mask=None, cached=False):
    """The L layers (p: ``encoder.``) -> (x, [LayerTape] * L)."""
    tapes = []
    for i in range(cfg.num_hidden_layers):
        x, tape = layer_train(t, p.sub(f"layer.{i}."), cfg, x, mask, head_masks[i], encoder_hidden_states, cross_mask,
                              cached)
        tapes.append(tape)
    return x, tapes


def stack_backward(t, p, cfg, dx, tapes):
    """Gradients of :func:`stack_train`, last layer first -> (dx, d encoder_hidden_states or None)."""
    denc = None
    for i in reversed(range(len(tapes))):
        tape, tapes[i] = tapes[i], None  # what a layer saved is released once its backward has run
        dx, d = layer_backward(t, p.sub(f"layer.{i}."), cfg, dx, tape)
        if d is not None:
            denc = d if denc is None else denc + d
    return dx, denc


# --- pooler and heads ------------------------------------------------------------------------------


class PoolerTape(NamedTuple):
    first: Any  # x[:, 0] [B, D]
    out: Any  # tanh output [B, D]


def pooler_train(t, p, x):
    """``bert.pooler``: tanh(dense(x[:, 0])). p: ``pooler.`` -> ([B, D], PoolerTape)."""
    first = x[:, 0]
    out = _xp(x).tanh(_linear(t, p, "dense", first))
    return out, PoolerTape(first, out)


def pooler_backward(t, p, dpooled, tape, seq_shape):
    """Gradients of :func:`pooler_train` -> dx [B, S, D] (zero except at the first position)."""
    d0 = _linear_backward(t, p, "dense", tanh_backward(dpooled, tape.out), tape.first)
    dx = _xp(d0).zeros(seq_shape, dtype=d0.dtype)
    dx[:, 0] = d0
    return dx


class LMHeadTape(NamedTuple):
    x: Any  # input [B, S, D]
    pre: Any  # transform.dense output (the activation's input)
    ln: Any  # LayerNormTape of the transform
    h: Any  # the decoder's input [B, S, D]


def lm_head_train(t, p, cfg, x, output_weight, names):
    """``bert.lm_prediction_head`` (``names`` = BERT_LM_NAMES) or ``roberta.roberta_lm_head``
    (ROBERTA_LM_NAMES): decoder(LayerNorm(act(dense(x)))) + bias. -> (logits [B, S, V], LMHeadTape)."""
    pre = _linear(t, p, names["dense"], x)
    act = "gelu" if names["act"] is None else cfg.hidden_act
    h, ln = layer_norm_forward(t.ops.activation(act)(pre), p[names["ln"] + ".weight"], p[names["ln"] + ".bias"],
                               cfg.layer_norm_eps)
    return t.ops.linear(h, output_weight, p["bias"]), LMHeadTape(x, pre, ln, h)


BERT_LM_NAMES = {"dense": "transform.dense", "ln": "transform.LayerNorm", "act": "hidden_act"}
ROBERTA_LM_NAMES = {"dense": "dense", "ln": "layer_norm", "act": None}  # RobertaLMHead: exact gelu always


def lm_head_backward(t, p, cfg, dlogits, tape, output_weight, output_name, names):
    """Gradients of :func:`lm_head_train`; the output matrix's gradient goes to ``output_name`` (the word
    embeddings when tied, where it adds to the lookup's). -> dx [B, S, D]."""
    dh, dw, db = linear_backward(dlogits, tape.h, output_weight)
    t.grads.add(output_name, dw)
    t.grads.add(p.name("bias"), db)
    da = _layer_norm_backward(t, p, names["ln"], dh, tape.ln)
    dpre = activation_backward("gelu" if names["act"] is None else cfg.hidden_act, da, tape.pre)
    return _linear_backward(t, p, names["dense"], dpre, tape.x)
