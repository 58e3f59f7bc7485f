"""BertGeneration (Rothe et al., "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks"):
BERT's layers with word + position embeddings only (no token types, no pooler), as an encoder or, with
``is_decoder`` / ``add_cross_attention``, a decoder with an LM head tied to the input embeddings.

Dimension legend: B batch, S tokens in this call, T keys (cached + new), E encoder length, D hidden size,
V vocabulary size.

Everything below the embeddings is BERT's, imported from :mod:`refimpl.models.bert` (nothing copied).
Differences from BERT, as in transformers 4.57.6 ``modeling_bert_generation.py``:

- embeddings: LayerNorm(word[ids] + position[pos]) — the position embeddings are added for *every*
  ``position_embedding_type`` (BERT adds them only for ``absolute``), and there are no token types;
- the decoder's LM head is one linear map: logits = h W_emb^T + ``lm_head.bias`` (no transform block);
- checkpoint names: ``embeddings.*`` / ``encoder.*`` (encoder), ``bert.*`` + ``lm_head.bias`` (decoder;
  ``lm_head.decoder.weight`` is the tied word-embedding matrix, ``lm_head.decoder.bias`` an alias of
  ``lm_head.bias``).

Warm start from a BERT checkpoint (the bert2bert recipe, ``BertGenerationEncoder.from_pretrained(bert_dir)``):
when ``config.json`` says ``model_type: "bert"``, the config is converted and the checkpoint mapped the way
transformers maps it: ``bert.`` prefixes follow the class, ``token_type_embeddings``, the pooler and BERT's
heads (``cls.*``) are dropped, and tensors the checkpoint lacks but the model needs (cross-attention blocks,
``lm_head.bias``) are newly initialised — Linear / Embedding weights from a seeded
normal(0, initializer_range), LayerNorm weights 1 and biases 0, other biases 0. Everything dropped or
initialised is listed in ``model.load_report`` (``ignored`` / ``initialized``), never silent. The random
values cannot equal torch's (different RNG); parity for that path is checked by letting transformers
initialise, save, and loading the saved directory.
"""

from __future__ import annotations


import numpy as np

from ..checkpoint import load_checkpoint_tensors, rename_legacy
from ..config import BertConfig, BertGenerationConfig, read_config_json
from ..errors import ConfigError
from ..outputs import BaseModelOutputWithPastAndCrossAttentions, CausalLMOutputWithCrossAttentions
from .base import GenerationMixin
from .init import init_param
from .bert import projection
from .bert_models import _BertBase, _layer_norm_shapes, bert_layer_shapes, causal_lm_loss, record_loss
from .params import Params

# Groups a warm start may initialise when the checkpoint lacks them (name fragments).
WARM_START_INIT = ("crossattention.", "lm_head.bias", "cls.predictions.", "enc_to_dec_proj.")
# Groups a warm start drops from a BERT checkpoint when the model has no use for them.
WARM_START_DROP = ("embeddings.token_type_embeddings.", "pooler.", "cls.")


def bert_generation_embeddings(ops, p, cfg, input_ids, position_ids, inputs_embeds=None):
    """LayerNorm(word[ids] + position[pos]) -> [B, S, D]  (p: ``embeddings.``).

    input_ids, position_ids [B or 1, S]; ``inputs_embeds`` [B, S, D] replaces the word lookup. The position
    embeddings are added whatever ``position_embedding_type`` is (transformers' BertGenerationEmbeddings).
    """
    words = ops.embedding(p["word_embeddings.weight"], input_ids) if inputs_embeds is None else inputs_embeds
    ops.record(p, "word_embeddings", words)  # [B, S, D]
    x = words + ops.record(p, "position_embeddings", ops.embedding(p["position_embeddings.weight"], position_ids))
    ops.record(p, "sum", x)
    x = ops.layer_norm(x, p["LayerNorm.weight"], p["LayerNorm.bias"], cfg.layer_norm_eps)
    return ops.record(p, "LayerNorm", x)


def bert_generation_shapes(cfg, prefix=""):
    """Every parameter of BertGenerationEncoder under ``prefix``."""
    d = cfg.hidden_size
    shapes = {
        f"{prefix}embeddings.word_embeddings.weight": (cfg.vocab_size, d),
        f"{prefix}embeddings.position_embeddings.weight": (cfg.max_position_embeddings, d),
    }
    shapes.update(_layer_norm_shapes(f"{prefix}embeddings.LayerNorm", d))
    shapes.update(bert_layer_shapes(cfg, prefix))
    return shapes


# --- warm start ------------------------------------------------------------------------------------


def warm_start_tensors(expected: dict, tensors: dict, base_prefix: str, initializer_range: float, seed: int):
    """Map a BERT checkpoint's tensors onto ``expected`` names the way transformers' warm start does.

    expected: name -> shape the model needs. base_prefix: "bert." when the model's base lives under it,
    "" otherwise; the checkpoint's ``bert.`` prefix is added or removed to match. Tensors in
    ``WARM_START_DROP`` groups that the model does not need are dropped; needed tensors in
    ``WARM_START_INIT`` groups that the checkpoint lacks are initialised (:func:`init_param`, seeded
    numpy normal, names in sorted order). Returns (tensors, report{"ignored", "initialized"}).
    Anything else missing or unexpected is left for the strict matcher to report.
    """
    renamed = {rename_legacy(k): v for k, v in tensors.items()}
    ckpt_prefixed = any(k.startswith("bert.") for k in renamed)
    mapped = {}
    for k, v in renamed.items():
        if k.startswith("cls.") or k.startswith("lm_head."):
            mapped[k] = v
        elif base_prefix and not ckpt_prefixed:
            mapped[base_prefix + k] = v
        elif not base_prefix and ckpt_prefixed and k.startswith("bert."):
            mapped[k[len("bert."):]] = v
        else:
            mapped[k] = v
    report = {"ignored": [], "initialized": []}
    out = {}
    for k, v in mapped.items():
        if k in expected:
            out[k] = v
        elif k.endswith(("embeddings.position_ids", "embeddings.token_type_ids")) or any(g in k for g in WARM_START_DROP):
            report["ignored"].append(k)
        else:
            out[k] = v  # unexpected: the strict matcher names it
    rng = np.random.default_rng(seed)
    for name in sorted(set(expected) - set(out)):
        if any(g in name for g in WARM_START_INIT):
            out[name] = init_param(name, expected[name], initializer_range, rng)
            report["initialized"].append(name)
    return out, report


class _BertGenerationBase(_BertBase):
    config_class = BertGenerationConfig
    with_pooler = False

    def _embeddings(self, ops, p, x_in):
        """Word + position embeddings (no token types), LayerNorm: BertGeneration's embedding block."""
        return bert_generation_embeddings(ops, p, self.config, x_in.input_ids, x_in.position_ids, x_in.inputs_embeds)

    def _generation_bert(self, ops, p, input_ids, attention_mask, position_ids, head_mask, inputs_embeds,
                         encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache,
                         output_attentions, output_hidden_states):
        """BERT's forward (``_run_bert``) without token types or pooler, as BertGeneration's output record."""
        out = self._run_bert(ops, p, input_ids, attention_mask, None, position_ids, head_mask, inputs_embeds,
                             encoder_hidden_states, encoder_attention_mask, past_key_values, use_cache,
                             output_attentions, output_hidden_states)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=out.last_hidden_state, past_key_values=out.past_key_values,
            hidden_states=out.hidden_states, attentions=out.attentions, cross_attentions=out.cross_attentions,
        )

    @classmethod
    def from_pretrained(cls, path, dtype="float32", backend="numpy", config=None, kernels=None, init_missing=False,
                        seed=None, quantization_config=None, **config_overrides):
        """Load a BertGeneration checkpoint, or warm-start from a BERT one (see the module docstring).

        ``config_overrides`` set config fields as transformers' ``from_pretrained(..., is_decoder=True,
        add_cross_attention=True, bos_token_id=101, eos_token_id=102)`` does. ``seed`` seeds the
        initialisation of tensors a BERT checkpoint lacks (0 when not given: a warm start is reproducible).
        """
        if config is None:
            data = read_config_json(path)
            warm = data.get("model_type") == "bert"
            config = config_from_dict(data, overrides=config_overrides, as_generation=True)
        else:
            warm = False
            config = cls._config_for(path, config, config_overrides)
        if not warm:
            return super().from_pretrained(path, dtype=dtype, backend=backend, config=config, kernels=kernels,
                                           init_missing=init_missing, seed=seed, quantization_config=quantization_config)
        tensors, _ = load_checkpoint_tensors(path)
        prefix = "bert." if any(k.startswith("bert.") for k in cls.param_shapes(config)) else ""
        mapped, report = warm_start_tensors(cls.param_shapes(config), tensors, prefix, config.initializer_range,
                                            0 if seed is None else seed)
        model = cls.from_tensors(config, mapped, dtype=dtype, backend=backend, where=f"{path} (warm start from BERT)",
                                 kernels=kernels, init_missing=init_missing, seed=seed,
                                 quantization_config=quantization_config)
        model.load_report["ignored"] = sorted(set(model.load_report.get("ignored", [])) | set(report["ignored"]))
        model.load_report["initialized"] = report["initialized"]
        return model


def config_from_dict(data: dict, overrides=None, as_generation=False):
    """A BertConfig / BertGenerationConfig from a config dict (``model_type`` decides), plus overrides.

    With ``as_generation`` a BERT config becomes a BertGenerationConfig: keys the file has keep their values,
    keys it lacks take BertGenerationConfig's defaults (so ``bos_token_id`` 2 and ``eos_token_id`` 1 unless
    given), exactly as transformers' ``BertGenerationConfig.from_pretrained(bert_dir)``.
    """
    data = dict(data)
    overrides = dict(overrides or {})
    kind = data.get("model_type", "bert")
    if kind not in ("bert", "bert-generation"):
        raise ConfigError(
            f"model_type={kind!r} is not supported here; refimpl builds encoder-decoders from 'bert' and "
            "'bert-generation' models"
        )
    if as_generation or kind == "bert-generation":
        data["model_type"] = "bert-generation"
        return BertGenerationConfig.from_dict(data, **overrides)
    return BertConfig.from_dict(data, **overrides)


class BertGenerationEncoder(_BertGenerationBase):
    """The bare BertGeneration model: embeddings (word + position) and L layers; no pooler.

    With ``is_decoder`` (and ``add_cross_attention``) it is a decoder body with causal self-attention,
    cross-attention over ``encoder_hidden_states`` and a KV cache. Output:
    ``BaseModelOutputWithPastAndCrossAttentions``.
    """

    @classmethod
    def param_shapes(cls, config):
        return bert_generation_shapes(config, "")

    @classmethod
    def _match_options(cls, config):
        return {"base_prefix": "bert"}

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                 output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        return self._generation_bert(ops, Params(self.params), input_ids, attention_mask, position_ids, head_mask,
                                     inputs_embeds, encoder_hidden_states, encoder_attention_mask, past_key_values,
                                     use_cache, output_attentions, output_hidden_states)



class BertGenerationDecoder(_BertGenerationBase, GenerationMixin):
    """BertGeneration with its LM head: logits = h W_emb^T + lm_head.bias  [B, S, V].

    Loss as transformers' ForCausalLMLoss (labels shifted left, -100 ignored, float32). Generates on its
    own (decoder-only) with :meth:`generate`.
    """

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_generation_shapes(config, "bert.")
        shapes["lm_head.bias"] = (config.vocab_size,)
        if not config.tie_word_embeddings:
            shapes["lm_head.decoder.weight"] = (config.vocab_size, config.hidden_size)
        return shapes

    @classmethod
    def _match_options(cls, config):
        return {
            "base_prefix": "bert",
            "aliases": {"lm_head.decoder.bias": "lm_head.bias"},
            "tied": ["lm_head.decoder.weight"] if config.tie_word_embeddings else [],
        }

    def _output_weight(self):
        if self.config.tie_word_embeddings:
            return self.params["bert.embeddings.word_embeddings.weight"]
        return self.params["lm_head.decoder.weight"]

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, labels=None, past_key_values=None,
                 use_cache=None, output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        if labels is not None:
            use_cache = False
        out = self._generation_bert(ops, Params(self.params, "bert."), input_ids, attention_mask, position_ids, head_mask,
                                    inputs_embeds, encoder_hidden_states, encoder_attention_mask, past_key_values,
                                    use_cache, output_attentions, output_hidden_states)
        logits = ops.linear(out.last_hidden_state, self._output_weight(), self.params["lm_head.bias"])  # [B, S, V]
        ops.record(None, "lm_head.decoder", logits)
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, self._labels(labels, "labels", logits.shape[:2], self.config.vocab_size))
        record_loss(ops, loss)
        return CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions,
        )

