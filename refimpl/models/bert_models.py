"""BERT model classes: ``BertModel`` and every head, with transformers' names, inputs, outputs and losses.

Each class validates its inputs, then calls the pure functions of :mod:`refimpl.models.bert`. Head
classes keep the base model's parameters under ``bert.``, as their checkpoints do. Losses follow
transformers 4.57.6 (label -100 is ignored; see each class for its loss).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import array_module as _xp
from ..backend import to_host
from ..cache import KVCache
from ..config import BertConfig
from ..errors import InputError
from ..kernels.linear import input_major
from ..ops.losses import IGNORE_INDEX, bce_with_logits, cross_entropy, mse
from ..ops.masks import causal_mask, head_mask_per_layer, padding_mask
from ..outputs import (
    BaseModelOutputWithPoolingAndCrossAttentions,
    BertForPreTrainingOutput,
    CausalLMOutputWithCrossAttentions,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .base import GenerationMixin, PreTrainedModel, host_array
from .bert import bert_embeddings, decoder_stack, encoder_stack, lm_prediction_head, pooler, projection
from .params import Params

# --- parameter tables ------------------------------------------------------------------------------


def _linear_shapes(name, out_features, in_features, bias=True):
    shapes = {f"{name}.weight": (out_features, in_features)}
    if bias:
        shapes[f"{name}.bias"] = (out_features,)
    return shapes


def _layer_norm_shapes(name, d):
    return {f"{name}.weight": (d,), f"{name}.bias": (d,)}


def _attention_shapes(prefix, cfg, relative):
    d = cfg.hidden_size
    shapes = {}
    for proj in ("query", "key", "value"):
        shapes.update(_linear_shapes(f"{prefix}self.{proj}", d, d))
    if relative:
        shapes[f"{prefix}self.distance_embedding.weight"] = (2 * cfg.max_position_embeddings - 1, cfg.head_size)
    shapes.update(_linear_shapes(f"{prefix}output.dense", d, d))
    shapes.update(_layer_norm_shapes(f"{prefix}output.LayerNorm", d))
    return shapes


def bert_layer_shapes(cfg, prefix=""):
    """Parameters of the L transformer layers under ``{prefix}encoder.layer.{i}.``."""
    d, f = cfg.hidden_size, cfg.intermediate_size
    relative = cfg.position_embedding_type != "absolute"
    shapes = {}
    for i in range(cfg.num_hidden_layers):
        lp = f"{prefix}encoder.layer.{i}."
        shapes.update(_attention_shapes(lp + "attention.", cfg, relative))
        if cfg.add_cross_attention:
            shapes.update(_attention_shapes(lp + "crossattention.", cfg, relative=False))
        shapes.update(_linear_shapes(lp + "intermediate.dense", f, d))
        shapes.update(_linear_shapes(lp + "output.dense", d, f))
        shapes.update(_layer_norm_shapes(lp + "output.LayerNorm", d))
    return shapes


def bert_shapes(cfg, prefix="", with_pooler=True):
    """Every parameter of BertModel under ``prefix``: embeddings, layers, and optionally the pooler."""
    d = cfg.hidden_size
    shapes = {
        f"{prefix}embeddings.word_embeddings.weight": (cfg.vocab_size, d),
        f"{prefix}embeddings.position_embeddings.weight": (cfg.max_position_embeddings, d),
        f"{prefix}embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, d),
    }
    shapes.update(_layer_norm_shapes(f"{prefix}embeddings.LayerNorm", d))
    shapes.update(bert_layer_shapes(cfg, prefix))
    if with_pooler:
        shapes.update(_linear_shapes(f"{prefix}pooler.dense", d, d))
    return shapes


def lm_head_shapes(cfg):
    d = cfg.hidden_size
    shapes = _linear_shapes("cls.predictions.transform.dense", d, d)
    shapes.update(_layer_norm_shapes("cls.predictions.transform.LayerNorm", d))
    shapes["cls.predictions.bias"] = (cfg.vocab_size,)
    if not cfg.tie_word_embeddings:
        shapes["cls.predictions.decoder.weight"] = (cfg.vocab_size, d)
    return shapes


class BertInputs(NamedTuple):
    """Checked inputs of one BERT forward, on the model's backend."""

    input_ids: Any  # [B, S] int64, or None when inputs_embeds is given
    inputs_embeds: Any  # [B, S, D] or None
    token_type_ids: Any  # [B, S]
    position_ids: Any  # [B or 1, S]
    self_mask: Any  # additive, [B, 1, 1 or S, T]
    cross_mask: Any  # additive, [B, 1, 1 or S, E], or None
    encoder_hidden_states: Any  # [B, E, D] or None
    head_masks: list  # L entries, each [1, N, 1, 1] or None
    cache: Any  # KVCache or None


# --- the base model --------------------------------------------------------------------------------


class _BertBase(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    with_pooler = True  # does this class's base model have a pooler?

    @classmethod
    def param_shapes(cls, config):
        return bert_shapes(config, "bert.", cls.with_pooler)

    def loss_and_grads(self, **inputs):
        """(loss, grads): the forward's loss on ``inputs`` (its keyword arguments, labels included) and its
        gradient with respect to every parameter, keyed by transformers' parameter names. Options:
        ``train`` (dropout, with ``rng`` or ``dropout_masks``), ``inputs_embeds_grad``, ``check_finite``
        (refimpl.models.training; docs/training.md)."""
        from .training import loss_and_grads

        return loss_and_grads(self, **inputs)

    def _run_bert(self, ops, p, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                  past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None):
        """Embeddings -> encoder (or decoder) stack -> pooler (if this model has one), on checked inputs."""
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        x_in = self._prepare_inputs(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                                    encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache)
        x = self._embeddings(ops, p.sub("embeddings."), x_in)  # [B, S, D]
        x, cache, hidden, attns, cross_attentions = self._run_layers(ops, p, x, x_in, output_hidden_states,
                                                                     output_attentions)
        pooled = pooler(ops, p.sub("pooler."), x) if "pooler.dense.weight" in p else None  # [B, D]
        return BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=x, pooler_output=pooled, past_key_values=cache, hidden_states=hidden,
            attentions=attns, cross_attentions=cross_attentions,
        )

    def _embeddings(self, ops, p, x_in):
        """The embedding block on checked inputs -> [B, S, D]. A hook: BertGeneration has its own."""
        return bert_embeddings(ops, p, self.config, x_in.input_ids, x_in.token_type_ids, x_in.position_ids,
                               x_in.inputs_embeds)

    def _run_layers(self, ops, p, x, x_in, output_hidden_states, output_attentions):
        """The L layers under ``encoder.``: the decoder stack (causal, cache, cross-attention) for a decoder,
        else the encoder stack. Returns (x, cache or None, hidden_states, attentions, cross_attentions)."""
        if self.config.is_decoder:
            return decoder_stack(ops, p.sub("encoder."), self.config, x, x_in.self_mask, x_in.head_masks, x_in.cache,
                                 x_in.encoder_hidden_states, x_in.cross_mask, output_hidden_states, output_attentions)
        x, hidden, attns = encoder_stack(ops, p.sub("encoder."), self.config, x, x_in.self_mask, x_in.head_masks,
                                         output_hidden_states, output_attentions)
        return x, None, hidden, attns, None

    def _prepare_inputs(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                        encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache) -> "BertInputs":
        """Check every input against the config (clear errors), fill transformers' defaults, build the masks.

        Defaults: token types 0; positions P..P+S-1 after P cached ones; attention mask all ones over the
        T = P + S keys; encoder mask all ones. Masks become additive: causal + padding for a decoder,
        padding only for an encoder. A decoder called with use_cache (the config's default for decoders)
        and no cache gets a fresh KVCache sized max_position_embeddings.
        """
        cfg, xp, dtype = self.config, self.xp, self.dtype
        use_cache = (cfg.use_cache if use_cache is None else use_cache) and cfg.is_decoder

        # ids or embeddings: [B, S]
        if (input_ids is None) == (inputs_embeds is None):
            raise InputError("give exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            input_ids = self._ids(input_ids, "input_ids", cfg.vocab_size, "token ids")
            b, s = input_ids.shape
        else:
            shape = getattr(inputs_embeds, "shape", np.shape(inputs_embeds))
            if len(shape) != 3 or shape[2] != cfg.hidden_size or 0 in shape:
                raise InputError(f"inputs_embeds must have shape [batch, sequence_length, {cfg.hidden_size}], got {shape}")
            b, s = shape[0], shape[1]
            inputs_embeds = self._floats(inputs_embeds, "inputs_embeds", shape)

        # cache: P cached positions
        cache = past_key_values
        if cache is not None:
            if not cfg.is_decoder:
                raise InputError("past_key_values is only meaningful for a decoder (config.is_decoder=True)")
            if not isinstance(cache, KVCache):
                raise InputError(f"past_key_values must be a refimpl KVCache, got {type(cache).__name__}")
            if cache.batch_size != b:
                raise InputError(f"past_key_values holds {cache.batch_size} rows but the input has batch {b}")
            if cache.keys and cache.keys[0].dtype != dtype:
                raise InputError(f"past_key_values holds {cache.keys[0].dtype} keys but the model computes in {dtype}; "
                                 f"allocate the cache with the model's dtype (KVCache.allocate(xp, model.dtype, ...))")
        elif use_cache:
            cache = KVCache.allocate(xp, dtype, cfg.num_hidden_layers, b, cfg.num_attention_heads,
                                     cfg.head_size, cfg.max_position_embeddings)
        past = cache.length if cache is not None else 0
        total = past + s
        if cache is not None:
            cache.check_room(s)

        # positions and token types: [B or 1, S]
        if position_ids is None:
            position_ids = self._default_position_ids(input_ids, b, s, past)
        else:
            position_ids = self._ids(position_ids, "position_ids", cfg.max_position_embeddings, "positions")
            if cfg.position_embedding_type != "absolute":  # relative distances come from arange(past + s)
                self._check_length(past, s, cfg.max_position_embeddings,
                                   f"max_position_embeddings={cfg.max_position_embeddings}, the longest distance "
                                   f"{cfg.position_embedding_type} position embeddings can embed")
            if position_ids.shape not in ((b, s), (1, s)):
                raise InputError(f"position_ids has shape {position_ids.shape}, expected ({b}, {s}) or (1, {s})")
        if token_type_ids is None:
            token_type_ids = xp.zeros((b, s), dtype=xp.int64)
        else:
            token_type_ids = self._ids(token_type_ids, "token_type_ids", cfg.type_vocab_size, "token type ids")
            if token_type_ids.shape != (b, s):
                raise InputError(f"token_type_ids has shape {token_type_ids.shape}, expected ({b}, {s}) like the input ids")

        # self-attention mask: [B, 1, 1 or S, T]
        if attention_mask is None:
            attention_mask = xp.ones((b, total), dtype=dtype)
        else:
            attention_mask = self._mask(attention_mask, "attention_mask", [(b, total), (b, s, total)])
        self_mask = causal_mask(attention_mask, s, dtype) if cfg.is_decoder else padding_mask(attention_mask, dtype)

        # cross-attention: encoder states [B, E, D] (or K/V already in the cache) and mask [B, 1, 1 or S, E]
        cross_mask = None
        if encoder_hidden_states is not None:
            if not cfg.add_cross_attention:
                raise InputError(
                    "encoder_hidden_states were given but this model has no cross-attention "
                    "(config.is_decoder and config.add_cross_attention must be True)"
                )
            eshape = getattr(encoder_hidden_states, "shape", np.shape(encoder_hidden_states))
            if len(eshape) != 3 or eshape[0] != b or eshape[2] != cfg.hidden_size:
                raise InputError(
                    f"encoder_hidden_states must have shape [{b}, encoder_length, {cfg.hidden_size}], got {eshape}"
                )
            encoder_hidden_states = self._floats(encoder_hidden_states, "encoder_hidden_states", eshape)
            e = eshape[1]
        elif cache is not None and cache.cross_keys is not None:
            e = cache.cross_keys[0].shape[2]
        if encoder_hidden_states is not None or (cache is not None and cache.cross_keys is not None):
            if encoder_attention_mask is None:
                encoder_attention_mask = xp.ones((b, e), dtype=dtype)
            else:
                encoder_attention_mask = self._mask(encoder_attention_mask, "encoder_attention_mask", [(b, e), (b, s, e)])
            cross_mask = padding_mask(encoder_attention_mask, dtype)

        return BertInputs(input_ids, inputs_embeds, token_type_ids, position_ids, self_mask, cross_mask,
                          encoder_hidden_states, self._head_masks(head_mask), cache)

    def _default_position_ids(self, input_ids, batch, length, past):
        """Positions when the caller gives none: P..P+S-1 after P cached ones -> [1, S].

        A hook: model families with another position scheme (RoBERTa) override it. ``input_ids`` [B, S]
        on the backend, or None when ``inputs_embeds`` were given.
        """
        self._check_length(past, length, self.config.max_position_embeddings)
        return self.xp.arange(past, past + length)[None, :]

    @staticmethod
    def _check_length(past, length, limit, what=None):
        """InputError when P cached + S new positions exceed ``limit`` (``what`` names where it comes from)."""
        total = past + length
        if total > limit:
            raise InputError(
                f"sequence length {total}" + (f" ({past} cached + {length} new)" if past else "")
                + f" exceeds {what or f'max_position_embeddings={limit}'}; truncate the input "
                f"(tokenizer truncation=True, max_length={limit})"
            )

    def _head_masks(self, head_mask):
        cfg = self.config
        if head_mask is None:
            return [None] * cfg.num_hidden_layers
        hm = host_array(head_mask, "head_mask")
        if hm.dtype.kind not in "biuf":
            raise InputError(f"head_mask must hold numbers (1 keeps a head, 0 drops it), got dtype {hm.dtype}: "
                             f"{head_mask!r:.80}")
        if hm.dtype.kind == "f" and not np.isfinite(hm).all():
            raise InputError(f"head_mask contains {hm[~np.isfinite(hm)].ravel()[0].item()!r}; it must hold finite numbers "
                             "(1 keeps a head, 0 drops it)")
        n, layers = cfg.num_attention_heads, cfg.num_hidden_layers
        if hm.shape not in ((n,), (layers, n)):
            raise InputError(f"head_mask has shape {hm.shape}, expected ({n},) or ({layers}, {n})")
        return head_mask_per_layer(self.xp.asarray(hm), layers, self.dtype)

    def _labels(self, labels, name, shape, limit=None, ignore=True):
        """Integer labels of ``shape`` in [0, limit) (or ``IGNORE_INDEX`` if ``ignore``), on the backend."""
        arr = host_array(labels, name)
        if arr.dtype.kind not in "iu":
            raise InputError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        if tuple(arr.shape) != tuple(shape):
            raise InputError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
        if limit is not None:
            bad = (arr < 0) | (arr >= limit)
            if ignore:
                bad &= arr != IGNORE_INDEX
            if bad.any():
                raise InputError(
                    f"{name} contains {int(arr[bad].ravel()[0])}, outside [0, {limit})"
                    + (f"; use {IGNORE_INDEX} to ignore a position" if ignore else "")
                )
        return self.xp.asarray(arr.astype(np.int64))

    def _lm_output_weight(self, cache):
        """The LM head's output matrix [V, D]. For a cached (decoding) call with the fast kernels on numpy:
        the same matrix stored input-major (``kernels.linear.input_major``), made once per model and kept
        (V x D more memory: 47 MB for BERT-base's vocabulary at float32). For the few rows of a decode
        step the fast linear then runs a plain product h @ W^T with W^T row-major, 1.5-2.5x faster on
        OpenBLAS than either form with the [V, D] checkpoint layout (docs/performance.md)."""
        if cache is None or self.xp is not np or self.kernels.name != "fast":
            return self._output_weight()
        w = self.__dict__.get("_output_weight_input_major")
        if w is None:
            w = self.__dict__["_output_weight_input_major"] = input_major(self._output_weight())
        return w

    def _output_weight(self):
        """The LM head's output matrix [V, D]: the word embeddings when tied (transformers' default)."""
        if self.config.tie_word_embeddings:
            return self.params["bert.embeddings.word_embeddings.weight"]
        return self.params["cls.predictions.decoder.weight"]


class BertModel(_BertBase):
    """The bare encoder (or, with ``is_decoder``, decoder): embeddings, L layers, pooler.

    Output: ``BaseModelOutputWithPoolingAndCrossAttentions`` (last_hidden_state [B, S, D], pooler_output
    [B, D], past_key_values (a KVCache when decoding with use_cache), hidden_states, attentions,
    cross_attentions).
    """

    @classmethod
    def param_shapes(cls, config):
        return bert_shapes(config, "", with_pooler=True)

    @classmethod
    def _match_options(cls, config):
        return {"base_prefix": "bert", "optional_prefixes": ("pooler.",)}

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                 recorder=None):
        ops = self._ops(recorder)
        return self._run_bert(
            ops, Params(self.params), input_ids, attention_mask, token_type_ids, position_ids, head_mask,
            inputs_embeds, encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache,
            output_attentions, output_hidden_states,
        )



def _lm_match_options(config):
    return {
        "base_prefix": "bert",
        "aliases": {"cls.predictions.decoder.bias": "cls.predictions.bias"},
        "tied": ["cls.predictions.decoder.weight"] if config.tie_word_embeddings else [],
    }


class BertForPreTraining(_BertBase):
    """Masked-LM and next-sentence heads. loss = CE(MLM) + CE(NSP) when both label sets are given."""

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", True)
        shapes.update(lm_head_shapes(config))
        shapes.update(_linear_shapes("cls.seq_relationship", 2, config.hidden_size))
        return shapes

    _match_options = classmethod(lambda cls, config: _lm_match_options(config))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, next_sentence_label=None,
                 output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        p = Params(self.params)
        logits = lm_prediction_head(ops, p.sub("cls.predictions."), self.config, out.last_hidden_state, self._output_weight())
        nsp = projection(ops, p, "cls.seq_relationship", out.pooler_output)  # [B, 2]
        loss = None
        if labels is not None and next_sentence_label is not None:
            v = self.config.vocab_size
            labels = self._labels(labels, "labels", logits.shape[:2], v)
            nsl = self._labels(next_sentence_label, "next_sentence_label", (logits.shape[0],), 2)
            loss = cross_entropy(logits.reshape(-1, v), labels.reshape(-1)) + cross_entropy(nsp, nsl)
        record_loss(ops, loss)
        return BertForPreTrainingOutput(loss=loss, prediction_logits=logits, seq_relationship_logits=nsp,
                                        hidden_states=out.hidden_states, attentions=out.attentions)



class BertLMHeadModel(_BertBase, GenerationMixin):
    """Causal LM (needs ``is_decoder``): logits for the next token; optional cross-attention and KV cache.

    Loss (transformers' ForCausalLMLoss): labels shifted left by one (position t predicts label t+1), the
    last position ignored, -100 ignored, mean cross-entropy — computed in float32 even for a float64
    model, because transformers upcasts the logits with ``.float()``.
    """

    with_pooler = False
    _match_options = classmethod(lambda cls, config: _lm_match_options(config))

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", False)
        shapes.update(lm_head_shapes(config))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 labels=None, past_key_values=None, use_cache=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        if labels is not None:
            use_cache = False
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, encoder_hidden_states,
                             encoder_attention_mask, past_key_values, use_cache, output_attentions,
                             output_hidden_states)
        logits = lm_prediction_head(ops, Params(self.params, "cls.predictions."), self.config,
                                    out.last_hidden_state, self._lm_output_weight(out.past_key_values))
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, self._labels(labels, "labels", logits.shape[:2], self.config.vocab_size))
        record_loss(ops, loss)
        return CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions,
        )



def record_loss(ops, loss):
    """File the loss (when labels were given) with the recorder, as ``loss``."""
    if loss is not None:
        ops.record(None, "loss", loss)


def causal_lm_loss(logits, labels):
    """transformers' ForCausalLMLoss: mean CE of logits[:, t] against labels[:, t + 1], in float32.

    logits [B, S, V], labels [B, S] -> scalar. The shift pads labels with -100 on the right.
    """
    xp = _xp(logits)
    shifted = xp.concatenate([labels[:, 1:], xp.full((labels.shape[0], 1), IGNORE_INDEX, dtype=labels.dtype)], axis=1)
    return cross_entropy(logits.astype(xp.float32).reshape(-1, logits.shape[-1]), shifted.reshape(-1))


class BertForMaskedLM(_BertBase):
    """Masked-LM head: logits [B, S, V]; loss = mean CE over labels != -100."""

    with_pooler = False
    _match_options = classmethod(lambda cls, config: _lm_match_options(config))

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", False)
        shapes.update(lm_head_shapes(config))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 labels=None, output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, encoder_hidden_states,
                             encoder_attention_mask, None, False, output_attentions, output_hidden_states)
        logits = lm_prediction_head(ops, Params(self.params, "cls.predictions."), self.config,
                                    out.last_hidden_state, self._output_weight())
        loss = None
        if labels is not None:
            v = self.config.vocab_size
            labels = self._labels(labels, "labels", logits.shape[:2], v)
            loss = cross_entropy(logits.reshape(-1, v), labels.reshape(-1))
        record_loss(ops, loss)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)



class BertForNextSentencePrediction(_BertBase):
    """Next-sentence head on the pooler: logits [B, 2] (0: B continues A, 1: B is random)."""

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", True)
        shapes.update(_linear_shapes("cls.seq_relationship", 2, config.hidden_size))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        logits = projection(ops, Params(self.params), "cls.seq_relationship", out.pooler_output)  # [B, 2]
        loss = None
        if labels is not None:
            loss = cross_entropy(logits, self._labels(labels, "labels", (logits.shape[0],), 2))
        record_loss(ops, loss)
        return NextSentencePredictorOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                           attentions=out.attentions)



class BertForSequenceClassification(_BertBase):
    """Classifier on the pooler: logits [B, num_labels].

    Loss by ``problem_type`` (or, when unset, as transformers infers it): num_labels == 1 -> regression
    (MSE on squeezed logits and labels); integer labels -> single-label CE; otherwise multi-label
    BCE-with-logits. transformers stores the inferred type in the config on the first call; refimpl
    infers it again on every call and never mutates the config.
    """

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", True)
        shapes.update(_linear_shapes("classifier", config.num_labels, config.hidden_size))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        logits = projection(ops, Params(self.params), "classifier", out.pooler_output)  # [B, num_labels]
        loss = None if labels is None else self._classification_loss(logits, labels)
        record_loss(ops, loss)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                        attentions=out.attentions)

    def _classification_loss(self, logits, labels):
        num_labels = self.config.num_labels
        host = host_array(labels, "labels")
        problem = self.config.problem_type
        if problem is None:
            if num_labels == 1:
                problem = "regression"
            elif host.dtype.kind in "iu":
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        b = logits.shape[0]
        if problem == "single_label_classification":
            return cross_entropy(logits.reshape(-1, num_labels), self._labels(labels, "labels", (b,), num_labels).reshape(-1))
        target = self.xp.asarray(host.astype(self.dtype))
        if problem == "regression":
            if num_labels == 1:
                if target.size != b:
                    raise InputError(f"labels for regression must hold {b} values, got shape {host.shape}")
                return mse(logits.reshape(-1), target.reshape(-1))
            if target.shape != logits.shape:
                raise InputError(f"labels has shape {host.shape}, expected {logits.shape} for regression")
            return mse(logits, target)
        if target.shape != logits.shape:
            raise InputError(f"labels has shape {host.shape}, expected {logits.shape} for multi-label classification")
        return bce_with_logits(logits, target)



def multiple_choice_inputs(input_ids, inputs_embeds):
    """(B, C, flat) for BertForMultipleChoice's inputs [B, C, S] (or embeddings [B, C, S, D]), checked:
    ``flat(a, trailing)`` reshapes an input to [B*C, ...] keeping its last ``trailing`` axes (None stays None)."""
    source = input_ids if input_ids is not None else inputs_embeds
    if source is None:
        raise InputError("give exactly one of input_ids or inputs_embeds")
    shape = getattr(source, "shape", np.shape(source))
    want = 3 if input_ids is not None else 4
    if len(shape) != want:
        raise InputError(
            f"BertForMultipleChoice expects {'input_ids' if want == 3 else 'inputs_embeds'} of shape "
            f"[batch, num_choices, sequence_length{', hidden' if want == 4 else ''}], got {shape}"
        )

    def flat(a, trailing=1):
        if a is None:
            return None
        a = a if hasattr(a, "reshape") else np.asarray(a)
        return a.reshape((-1,) + tuple(a.shape[len(a.shape) - trailing:]))

    return shape[0], shape[1], flat


class BertForMultipleChoice(_BertBase):
    """Scores C choices per example: inputs [B, C, S] are run as [B*C, S]; logits [B, C]; loss CE over C.

    hidden_states / attentions come out with the flattened batch B*C, as in transformers.
    """

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", True)
        shapes.update(_linear_shapes("classifier", 1, config.hidden_size))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        b, c, flat = multiple_choice_inputs(input_ids, inputs_embeds)

        out = self._run_bert(
            ops, Params(self.params, "bert."), flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids), head_mask, flat(inputs_embeds, 2),
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        )
        logits = projection(ops, Params(self.params), "classifier", out.pooler_output).reshape(b, c)  # [B, C]
        loss = None
        if labels is not None:
            loss = cross_entropy(logits, self._labels(labels, "labels", (b,), c))
        record_loss(ops, loss)
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                         attentions=out.attentions)



class BertForTokenClassification(_BertBase):
    """Per-token classifier: logits [B, S, num_labels]; loss = mean CE over labels != -100."""

    with_pooler = False

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", False)
        shapes.update(_linear_shapes("classifier", config.num_labels, config.hidden_size))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        logits = projection(ops, Params(self.params), "classifier", out.last_hidden_state)  # [B, S, num_labels]
        loss = None
        if labels is not None:
            k = self.config.num_labels
            labels = self._labels(labels, "labels", logits.shape[:2], k)
            loss = cross_entropy(logits.reshape(-1, k), labels.reshape(-1))
        record_loss(ops, loss)
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                     attentions=out.attentions)



class BertForQuestionAnswering(_BertBase):
    """Span head: start_logits, end_logits [B, S] from a [num_labels=2, D] projection.

    Loss, as transformers: positions are clamped to [0, S]; a position equal to S (i.e. outside the
    sequence) is ignored; loss = (CE(start) + CE(end)) / 2.
    """

    with_pooler = False

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "bert.", False)
        shapes.update(_linear_shapes("qa_outputs", config.num_labels, config.hidden_size))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, start_positions=None, end_positions=None,
                 output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        if self.config.num_labels != 2:
            raise InputError(f"BertForQuestionAnswering needs num_labels=2 (start, end), config has {self.config.num_labels}")
        out = self._run_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        logits = projection(ops, Params(self.params), "qa_outputs", out.last_hidden_state)  # [B, S, 2]
        start_logits, end_logits = logits[..., 0], logits[..., 1]  # [B, S] each
        loss = None
        if start_positions is not None and end_positions is not None:
            b, s = start_logits.shape
            start = self._positions(start_positions, "start_positions", b, s)
            end = self._positions(end_positions, "end_positions", b, s)
            loss = (cross_entropy(start_logits, start, ignore_index=s) + cross_entropy(end_logits, end, ignore_index=s)) / 2
        record_loss(ops, loss)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                            hidden_states=out.hidden_states, attentions=out.attentions)

    def _positions(self, positions, name, b, s):
        arr = host_array(positions, name)
        if arr.dtype.kind not in "iu":
            raise InputError(f"{name} must hold integer positions, got dtype {arr.dtype}")
        arr = arr.reshape(-1) if arr.ndim > 1 else arr
        if arr.shape != (b,):
            raise InputError(f"{name} has shape {np.shape(positions)}, expected ({b},)")
        return self.xp.asarray(np.clip(arr, 0, s).astype(np.int64))

