"""``model.loss_and_grads(**inputs, labels=...)``: the loss of every refimpl class that has one and its
gradient with respect to every parameter, keyed by transformers' parameter names.

    loss, grads = model.loss_and_grads(input_ids=ids, attention_mask=mask, labels=labels)
    loss, grads = model.loss_and_grads(..., train=True, rng=np.random.default_rng(0))   # with dropout

Each class's function below is its forward (the class's ``forward`` in bert_models.py, roberta.py,
bert_generation.py, encoder_decoder.py), written with the training functions of
:mod:`refimpl.models.bert_backward`, followed by the backward in reverse order. The inputs are checked by
the model's own ``_prepare_inputs`` / ``_labels`` (the same errors as the forward's).

Conventions (docs/training.md):

- ``grads`` has one entry per parameter of ``model.params`` (= transformers' ``named_parameters()``: a tied
  LM-head matrix is the word embeddings, whose gradient is the sum of both uses), in the model's dtype
  and the checkpoint layout ([O, I] for linear weights). A parameter the loss does not depend on (the
  pooler of an encoder inside an EncoderDecoderModel) is absent, as its ``.grad`` stays None in torch.
- ``train=False`` (default) is torch's ``model.eval()``: no dropout, the gradients of the inference
  forward. ``train=True`` drops with the config's probabilities, masks from ``dropout_masks`` (by
  transformers' module names) or drawn from ``rng``; with every probability 0 it is the eval forward.
- ``inputs_embeds_grad=True`` adds ``grads["inputs_embeds"]`` (d loss / d word embeddings of the input,
  whether ids or ``inputs_embeds`` were given; EncoderDecoderModel: also ``decoder_inputs_embeds``).
- The causal-LM losses (BertLMHeadModel, BertGenerationDecoder, RobertaForCausalLM) are computed in
  float32 even for a float64 model, as transformers' ``logits.float()``; so are their logits' gradients.
- A non-finite loss is an error (``check_finite=False`` returns it, with torch's gradients: every label
  ignored gives NaN and zero gradients from that loss).
"""

from __future__ import annotations

import inspect

import numpy as np

from ..backend import array_module
from ..errors import InputError
from ..ops.losses import (
    IGNORE_INDEX,
    bce_with_logits,
    bce_with_logits_backward,
    cross_entropy,
    cross_entropy_backward,
    mse,
    mse_backward,
    span_loss,
    span_loss_backward,
)
from .base import host_array, refuse_quantized
from .bert_models import multiple_choice_inputs
from .bert_backward import (
    BERT_LM_NAMES,
    ROBERTA_LM_NAMES,
    Dropout,
    Grads,
    Step,
    _dropout,
    _linear,
    _linear_backward,
    embeddings_backward,
    embeddings_train,
    lm_head_backward,
    lm_head_train,
    pooler_backward,
    pooler_train,
    stack_backward,
    stack_train,
)
from .params import Params

_DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")


def loss_and_grads(model, train=False, rng=None, dropout_masks=None, inputs_embeds_grad=False, check_finite=True,
                   **inputs):
    """(loss, grads) of ``model`` on ``inputs`` (the forward's keyword arguments, labels included)."""
    refuse_quantized(model, "loss_and_grads", "compute gradients on the float model (loaded without "
                     "quantization_config); the quantized formats have no backward here")
    fn = _function_for(model)
    allowed = set(inspect.signature(fn).parameters) - {"model", "t"}
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        raise InputError(f"{type(model).__name__}.loss_and_grads got unexpected arguments {unknown}; it takes "
                         f"{sorted(allowed)} and train, rng, dropout_masks, inputs_embeds_grad, check_finite")
    if not train and (rng is not None or dropout_masks):
        raise InputError("rng= and dropout_masks= apply only with train=True (train=False is torch's model.eval(): "
                         "no dropout)")
    if train and rng is None and dropout_masks is None:
        on = _dropout_on(model)
        if on:
            raise InputError(
                f"train=True with dropout on ({', '.join(on)}) needs a random generator: pass "
                "rng=numpy.random.default_rng(seed) (or dropout_masks={site name: keep mask}), set those "
                "probabilities to 0, or use train=False for eval-mode gradients (torch's model.eval())")
    t = Step(model.kernels, Dropout(train, rng, dropout_masks), Grads())
    loss, embeds = fn(model, t, **inputs)
    if check_finite and not np.isfinite(float(loss)):
        raise InputError(_nonfinite_message(loss, inputs))
    grads = dict(t.grads)
    if inputs_embeds_grad:
        grads.update(embeds)
    return loss, grads


def _function_for(model):
    for cls in type(model).__mro__:
        fn = _CLASSES.get(cls.__name__)
        if fn is not None:
            return fn
        if cls.__name__ in _NO_LOSS:
            break
    raise InputError(
        f"{type(model).__name__} has no loss (transformers' {type(model).__name__} returns none), so there is "
        f"nothing to differentiate; use a class with a head: {sorted(_CLASSES)}"
    )


def _dropout_on(model):
    cfgs = [model.config] if not hasattr(model.config, "encoder") else [model.config.encoder, model.config.decoder]
    return [f"{f}={getattr(c, f)}" for c in cfgs for f in _DROPOUT_FIELDS if getattr(c, f, None)]


def _nonfinite_message(loss, inputs):
    labels = [inputs[k] for k in ("labels", "start_positions", "end_positions") if inputs.get(k) is not None]
    if labels and any(np.all(host_array(lab, "labels") == IGNORE_INDEX) for lab in labels):
        why = ("every label is -100 (ignored), so the mean is over 0 positions: NaN, as torch gives; pass labels "
               "with at least one position that is not -100")
    else:
        why = ("the logits or the weights hold values too large for the dtype (or NaN inputs); check the inputs "
               "and the last optimizer step (a smaller learning rate, clip_grad_norm_)")
    return f"the loss is {float(loss)} (not finite): {why}; check_finite=False returns it with torch's gradients"


# --- the shared body -------------------------------------------------------------------------------


def _base(model):
    """The prefix of the base model's parameters in ``model.params`` ("bert.", "roberta." or "")."""
    prefix = model.base_model_prefix + "."
    return prefix if any(k.startswith(prefix) for k in model.params) else ""


def _body(model, t, p, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
          inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, pooled=False, use_cache=False):
    """Embeddings -> layers (-> pooler) of ``model`` in training mode, parameters read through ``p`` (the
    base model's prefix). Returns (x [B, S, D], pooled [B, D] or None, backward), where
    backward(dx, dpooled=None) -> (d words [B, S, D], d encoder_hidden_states or None); dx None:
    only the pooler's gradient. ``use_cache``: the forward's (a decoder run with a cache has
    transformers' relative positions of a cached call, see bert_backward.self_attention_train; with
    absolute positions the cache changes nothing, so none is made)."""
    from .bert_generation import _BertGenerationBase

    cfg = model.config
    x_in = model._prepare_inputs(input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds,
                                 encoder_hidden_states, encoder_attention_mask, None,
                                 use_cache is not False and cfg.position_embedding_type != "absolute")
    x, emb = embeddings_train(t, p.sub("embeddings."), cfg, x_in.input_ids, x_in.token_type_ids, x_in.position_ids,
                              x_in.inputs_embeds, generation=isinstance(model, _BertGenerationBase))
    enc = x_in.encoder_hidden_states if cfg.is_decoder and cfg.add_cross_attention else None
    x, layers = stack_train(t, p.sub("encoder."), cfg, x, x_in.self_mask, x_in.head_masks, enc, x_in.cross_mask,
                            cached=x_in.cache is not None)
    pool = pooler_train(t, p.sub("pooler."), x) if pooled else None
    padding = {k.split(".")[1]: cfg.pad_token_id for k in model.padding_embeddings}

    def backward(dx, dpooled=None):
        if dpooled is not None:
            dfirst = pooler_backward(t, p.sub("pooler."), dpooled, pool[1], x.shape)
            dx = dfirst if dx is None else dx + dfirst
        dx, denc = stack_backward(t, p.sub("encoder."), cfg, dx, layers)
        return embeddings_backward(t, p.sub("embeddings."), cfg, dx, emb, padding), denc

    return x, (pool[0] if pooled else None), backward


def _output(model, root):
    """The LM head's output matrix and its name in the gradients (the word embeddings' when tied)."""
    if model.config.tie_word_embeddings:
        name = _base(model) + "embeddings.word_embeddings.weight"
    else:
        name = "cls.predictions.decoder.weight" if "cls.predictions.bias" in model.params else "lm_head.decoder.weight"
    return model._output_weight(), root + name


def _classifier_dropout(cfg):
    return cfg.classifier_dropout if cfg.classifier_dropout is not None else cfg.hidden_dropout_prob


def _ce(logits, labels):
    """Mean cross-entropy of logits [..., C] against labels [...] and its gradient (logits' shape)."""
    c = logits.shape[-1]
    flat, lab = logits.reshape(-1, c), labels.reshape(-1)
    return cross_entropy(flat, lab), cross_entropy_backward(flat, lab).reshape(logits.shape)


def _lm_loss(model, t, root, x, labels, causal=False):
    """The LM head and its mean cross-entropy, computed on the rows that count only: those whose label is
    not -100 (``causal``: after transformers' ForCausalLMLoss shift, labels[:, t + 1] for position t, the
    last position ignored, in float32 with the logits' gradient cast back). The head works row by row and
    an ignored row adds exactly 0 to the loss and to every gradient, so this is the same math as the full
    [B, S, V] logits (the loss to rounding: its sum runs over fewer terms) at a fraction of the cost
    (BERT's masked LM: 15% of the rows of the largest product). Every row is used when all are ignored
    (the NaN loss and zero gradients of torch). Returns (loss, backward() -> dx [B, S, D])."""
    xp = array_module(x)
    b, s, d = x.shape
    if causal:
        labels = xp.concatenate([labels[:, 1:], xp.full((b, 1), IGNORE_INDEX, dtype=labels.dtype)], axis=1)
    flat = labels.reshape(-1)
    rows = xp.nonzero(flat != IGNORE_INDEX)[0]
    if rows.size == 0:
        rows = xp.arange(flat.size)
    xs = x.reshape(-1, d)[rows]  # [K, D]
    logits, head_back = _lm_head(model, t, root, xs)  # [K, V]
    if causal:
        loss, dlogits = _ce(logits.astype(xp.float32), flat[rows])
        dlogits = dlogits.astype(logits.dtype)
    else:
        loss, dlogits = _ce(logits, flat[rows])

    def backward():
        dx = xp.zeros((b * s, d), dtype=x.dtype)
        dx[rows] = head_back(dlogits)
        return dx.reshape(b, s, d)

    return loss, backward


def _need(value, name, cls):
    if value is None:
        raise InputError(f"{cls}.loss_and_grads needs {name}= (the loss is computed from it)")
    return value


def _embeds(dwords, key="inputs_embeds"):
    return {key: dwords}


# --- the classes -----------------------------------------------------------------------------------
# Each returns (loss, {"inputs_embeds": d words}) and leaves the parameters' gradients in t.grads.


def _lm_head(model, t, root, x):
    """The LM head of a BERT / RoBERTa / BertGeneration LM class -> (logits [B, S, V], backward(dlogits) -> dx)."""
    from .bert_generation import BertGenerationDecoder

    cfg = model.config
    w, w_name = _output(model, root)
    if isinstance(model, BertGenerationDecoder):  # one linear map: h W^T + lm_head.bias
        p = Params(model.params, "lm_head.")
        logits = t.ops.linear(x, w, p["bias"])

        def backward(d):
            from ..ops.linear import linear_backward

            dx, dw, db = linear_backward(d, x, w)
            t.grads.add(w_name, dw)
            t.grads.add(root + "lm_head.bias", db)
            return dx

        return logits, backward
    names, head = (ROBERTA_LM_NAMES, "lm_head.") if model.base_model_prefix == "roberta" else (BERT_LM_NAMES, "cls.predictions.")
    p = Params(model.params, head)
    p_root = _Rooted(p, root)
    logits, tape = lm_head_train(t, p_root, cfg, x, w, names)
    return logits, lambda d: lm_head_backward(t, p_root, cfg, d, tape, w, w_name, names)


class _Rooted(Params):
    """A Params view whose names carry an extra leading ``root`` ("decoder." inside an EncoderDecoderModel)."""

    __slots__ = ("_root",)

    def __init__(self, p, root):
        super().__init__(p._tensors, p._prefix)
        self._root = root

    def sub(self, prefix):
        return _Rooted(Params(self._tensors, self._prefix + prefix), self._root)

    def name(self, local):
        return self._root + super().name(local)


def _masked_lm(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
               inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None):
    """BertForMaskedLM / RobertaForMaskedLM: mean CE over labels != -100, in the logits' dtype."""
    x, _, body_back = _body(model, t, Params(model.params, _base(model)), input_ids, attention_mask, token_type_ids,
                            position_ids, head_mask, inputs_embeds, encoder_hidden_states, encoder_attention_mask)
    labels = model._labels(_need(labels, "labels", type(model).__name__), "labels", x.shape[:2],
                           model.config.vocab_size)
    loss, head_back = _lm_loss(model, t, "", x, labels)
    return loss, _embeds(body_back(head_back())[0])


def _causal_lm(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
               inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None):
    """BertLMHeadModel / RobertaForCausalLM / BertGenerationDecoder: ForCausalLMLoss (float32)."""
    x, _, body_back = _body(model, t, Params(model.params, _base(model)), input_ids, attention_mask, token_type_ids,
                            position_ids, head_mask, inputs_embeds, encoder_hidden_states, encoder_attention_mask)
    labels = model._labels(_need(labels, "labels", type(model).__name__), "labels", x.shape[:2],
                           model.config.vocab_size)
    loss, head_back = _lm_loss(model, t, "", x, labels, causal=True)
    dwords, denc = body_back(head_back())
    out = _embeds(dwords)
    if denc is not None:
        out["encoder_hidden_states"] = denc
    return loss, out


def _generation_decoder(model, t, input_ids=None, attention_mask=None, position_ids=None, head_mask=None,
                        inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None):
    return _causal_lm(model, t, input_ids, attention_mask, None, position_ids, head_mask, inputs_embeds,
                      encoder_hidden_states, encoder_attention_mask, labels)


def _pretraining(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, labels=None, next_sentence_label=None):
    """BertForPreTraining: CE(MLM) + CE(NSP); both label sets are needed (transformers gives no loss otherwise)."""
    name = type(model).__name__
    _need(labels, "labels", name), _need(next_sentence_label, "next_sentence_label", name)
    x, pooled, body_back = _body(model, t, Params(model.params, "bert."), input_ids, attention_mask, token_type_ids,
                                 position_ids, head_mask, inputs_embeds, pooled=True)
    p = Params(model.params)
    nsp = _linear(t, p, "cls.seq_relationship", pooled)  # [B, 2]
    labels = model._labels(labels, "labels", x.shape[:2], model.config.vocab_size)
    nsl = model._labels(next_sentence_label, "next_sentence_label", (x.shape[0],), 2)
    mlm_loss, head_back = _lm_loss(model, t, "", x, labels)
    nsp_loss, dnsp = _ce(nsp, nsl)
    dpooled = _linear_backward(t, p, "cls.seq_relationship", dnsp, pooled)
    return mlm_loss + nsp_loss, _embeds(body_back(head_back(), dpooled)[0])


def _pooled_classifier(model, t, name, inputs):
    """pooler -> (dropout) -> linear ``name``: (logits, backward(dlogits) -> d words)."""
    x, pooled, body_back = _body(model, t, Params(model.params, "bert."), **inputs, pooled=True)
    p = Params(model.params)
    dropped, keep = pooled, None
    if name == "classifier":
        dropped, keep = _dropout(t, "dropout", pooled, _classifier_dropout(model.config))
    logits = _linear(t, p, name, dropped)

    def backward(d):
        from ..ops.dropout import dropout

        dpooled = dropout(_linear_backward(t, p, name, d, dropped), keep, _classifier_dropout(model.config))
        return body_back(None, dpooled)[0]

    return logits, backward


def _next_sentence(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                   head_mask=None, inputs_embeds=None, labels=None):
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds)
    _need(labels, "labels", type(model).__name__)
    logits, back = _pooled_classifier(model, t, "cls.seq_relationship", inputs)
    loss, d = _ce(logits, model._labels(labels, "labels", (logits.shape[0],), 2))
    return loss, _embeds(back(d))


def _sequence_classification(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                             head_mask=None, inputs_embeds=None, labels=None):
    """BertForSequenceClassification: regression (MSE), single-label CE or multi-label BCE, by problem_type
    or as transformers infers it (``BertForSequenceClassification._classification_loss``)."""
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                  position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds)
    host = host_array(_need(labels, "labels", type(model).__name__), "labels")
    logits, back = _pooled_classifier(model, t, "classifier", inputs)
    k, b = model.config.num_labels, logits.shape[0]
    problem = model.config.problem_type
    if problem is None:
        problem = ("regression" if k == 1 else "single_label_classification" if host.dtype.kind in "iu"
                   else "multi_label_classification")
    if problem == "single_label_classification":
        loss, d = _ce(logits, model._labels(labels, "labels", (b,), k))
        return loss, _embeds(back(d))
    target = model.xp.asarray(host.astype(model.dtype))
    if problem == "regression" and k == 1:
        if target.size != b:
            raise InputError(f"labels for regression must hold {b} values, got shape {host.shape}")
        pred, target = logits.reshape(-1), target.reshape(-1)
        return mse(pred, target), _embeds(back(mse_backward(pred, target).reshape(logits.shape)))
    if target.shape != logits.shape:
        raise InputError(f"labels has shape {host.shape}, expected {logits.shape} for {problem.replace('_', '-')}")
    if problem == "regression":
        return mse(logits, target), _embeds(back(mse_backward(logits, target)))
    return bce_with_logits(logits, target), _embeds(back(bce_with_logits_backward(logits, target)))


def _multiple_choice(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                     head_mask=None, inputs_embeds=None, labels=None):
    """BertForMultipleChoice: [B, C, S] run as [B*C, S]; CE over the C choices."""
    b, c, flat = multiple_choice_inputs(input_ids, inputs_embeds)
    inputs = dict(input_ids=flat(input_ids), attention_mask=flat(attention_mask), token_type_ids=flat(token_type_ids),
                  position_ids=flat(position_ids), head_mask=head_mask, inputs_embeds=flat(inputs_embeds, 2))
    _need(labels, "labels", type(model).__name__)
    logits, back = _pooled_classifier(model, t, "classifier", inputs)  # [B*C, 1]
    loss, d = _ce(logits.reshape(b, c), model._labels(labels, "labels", (b,), c))
    dwords = back(d.reshape(-1, 1))
    return loss, _embeds(dwords.reshape((b, c) + dwords.shape[1:]))


def _token_classification(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                          head_mask=None, inputs_embeds=None, labels=None):
    """BertForTokenClassification: dropout -> classifier per token; CE over labels != -100."""
    _need(labels, "labels", type(model).__name__)
    x, _, body_back = _body(model, t, Params(model.params, "bert."), input_ids, attention_mask, token_type_ids,
                            position_ids, head_mask, inputs_embeds)
    p, pd = Params(model.params), _classifier_dropout(model.config)
    dropped, keep = _dropout(t, "dropout", x, pd)
    logits = _linear(t, p, "classifier", dropped)
    loss, d = _ce(logits, model._labels(labels, "labels", logits.shape[:2], model.config.num_labels))
    from ..ops.dropout import dropout

    return loss, _embeds(body_back(dropout(_linear_backward(t, p, "classifier", d, dropped), keep, pd))[0])


def _question_answering(model, t, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                        head_mask=None, inputs_embeds=None, start_positions=None, end_positions=None):
    """BertForQuestionAnswering: the span loss, positions clamped to [0, S] and S ignored (transformers)."""
    name = type(model).__name__
    _need(start_positions, "start_positions", name), _need(end_positions, "end_positions", name)
    if model.config.num_labels != 2:
        raise InputError(f"BertForQuestionAnswering needs num_labels=2 (start, end), config has {model.config.num_labels}")
    x, _, body_back = _body(model, t, Params(model.params, "bert."), input_ids, attention_mask, token_type_ids,
                            position_ids, head_mask, inputs_embeds)
    p = Params(model.params)
    logits = _linear(t, p, "qa_outputs", x)  # [B, S, 2]
    b, s = logits.shape[:2]
    start = model._positions(start_positions, "start_positions", b, s)
    end = model._positions(end_positions, "end_positions", b, s)
    loss = span_loss(logits[..., 0], logits[..., 1], start, end)
    ds, de = span_loss_backward(logits[..., 0], logits[..., 1], start, end)
    d = model.xp.stack([ds, de], axis=-1)
    return loss, _embeds(body_back(_linear_backward(t, p, "qa_outputs", d, x))[0])


def _encoder_decoder(model, t, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                     inputs_embeds=None, decoder_inputs_embeds=None, labels=None, use_cache=None):
    """EncoderDecoderModel: encoder -> (enc_to_dec_proj) -> decoder with cross-attention -> CE against the
    labels (not shifted; decoder inputs made from them when not given), in the logits' dtype. The decoder
    runs with ``use_cache`` as the forward passes it (None: the decoder config's, True by default), which
    matters only for relative positions (transformers' cached-call positions, reproduced)."""
    from .encoder_decoder import shift_tokens_right

    enc_model, dec_model = model.encoder, model.decoder
    labels_host = host_array(_need(labels, "labels", "EncoderDecoderModel"), "labels")
    if labels_host.dtype.kind not in "iu" or labels_host.ndim != 2:
        raise InputError(f"labels must be integer ids of shape [batch, target_length], got {labels_host.dtype} "
                         f"{labels_host.shape}")
    if decoder_input_ids is None and decoder_inputs_embeds is None:
        decoder_input_ids = shift_tokens_right(labels_host, model.config.pad_token_id, model.config.decoder_start_token_id)
        if decoder_attention_mask is None:
            decoder_attention_mask = (decoder_input_ids != model.config.pad_token_id).astype(np.int64)
    enc_p = Params(model.params, "encoder." + _base(enc_model))
    h, _, enc_back = _body(enc_model, t, enc_p, input_ids, attention_mask, inputs_embeds=inputs_embeds)
    p = Params(model.params)
    projected = "enc_to_dec_proj.weight" in model.params
    h_dec = _linear(t, p, "enc_to_dec_proj", h) if projected else h
    dec_p = Params(model.params, "decoder." + _base(dec_model))
    x, _, dec_back = _body(dec_model, t, dec_p, decoder_input_ids, decoder_attention_mask,
                           inputs_embeds=decoder_inputs_embeds, encoder_hidden_states=h_dec,
                           encoder_attention_mask=attention_mask, use_cache=use_cache)
    target = dec_model._labels(labels_host, "labels", x.shape[:2], dec_model.config.vocab_size)
    loss, head_back = _lm_loss(dec_model, t, "decoder.", x, target)
    ddec_words, dh = dec_back(head_back())
    if projected:
        dh = _linear_backward(t, p, "enc_to_dec_proj", dh, h)
    denc_words, _ = enc_back(dh)
    return loss, {"inputs_embeds": denc_words, "decoder_inputs_embeds": ddec_words}


_CLASSES = {
    "BertForPreTraining": _pretraining,
    "BertLMHeadModel": _causal_lm,
    "BertForMaskedLM": _masked_lm,
    "BertForNextSentencePrediction": _next_sentence,
    "BertForSequenceClassification": _sequence_classification,
    "BertForMultipleChoice": _multiple_choice,
    "BertForTokenClassification": _token_classification,
    "BertForQuestionAnswering": _question_answering,
    "BertGenerationDecoder": _generation_decoder,
    "RobertaForMaskedLM": _masked_lm,
    "RobertaForCausalLM": _causal_lm,
    "EncoderDecoderModel": _encoder_decoder,
}
_NO_LOSS = ("BertModel", "BertGenerationEncoder", "RobertaModel", "PreTrainedModel")
