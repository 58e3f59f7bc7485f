"""RoBERTa (Liu et al., "RoBERTa: A Robustly Optimized BERT Pretraining Approach"): BERT's layers with
RoBERTa's position ids and LM head, as an encoder or, with ``is_decoder`` / ``add_cross_attention``, a
decoder with a KV cache (the decoder half of roberta2roberta).

Dimension legend: B batch, S tokens in this call, P cached positions, T keys (P + S), D hidden size,
V vocabulary size.

Everything below the embeddings is BERT's, imported from :mod:`refimpl.models.bert` through
``_BertBase`` (input checks, masks, encoder / decoder stacks, pooler; nothing copied). The embeddings are
BERT's too — LayerNorm(word[ids] + token_type[tt] + position[pos]), position added only for ``absolute``
— with different default positions. Differences from BERT, as transformers 4.57.6
``models/roberta/modeling_roberta.py``:

- positions (``create_position_ids_from_input_ids``): with m = (ids != padding_idx),
  pos = (cumsum(m) + P) * m + padding_idx. Real tokens count from padding_idx + 1 (2 with RoBERTa's
  padding_idx 1); padding tokens get padding_idx; after P cached positions, the cumsum runs over the new
  tokens only and P is added (so a pad token inside a cached call shifts nothing that follows it in a
  later call — transformers' behaviour, reproduced). ``padding_idx`` is ``config.pad_token_id``.
  From ``inputs_embeds`` (no ids to find padding in): padding_idx + 1 .. padding_idx + S, whatever P is.
  Consequence: only max_position_embeddings - padding_idx - 1 tokens fit (512 for roberta-base's 514);
- the LM head (``RobertaLMHead``): logits = LayerNorm(gelu(h W_d^T + b_d)) W_emb^T + ``lm_head.bias``,
  gelu the exact erf form whatever ``hidden_act`` is; names ``lm_head.dense``, ``lm_head.layer_norm``
  (lower case), ``lm_head.decoder.weight`` (tied to the word embeddings), ``lm_head.bias``
  (``lm_head.decoder.bias`` is an alias);
- the base model's prefix is ``roberta.``; the config's defaults are RobertaConfig's (pad 1, bos 0, eos 2).

Decoder-only ``generate`` passes explicit positions cumsum(mask) - 1 (transformers' generation does the
same for RoBERTa, so it starts at 0, not padding_idx + 1); an EncoderDecoderModel's decoder gets none and
uses the RoBERTa positions above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ..backend import array_module as _xp
from ..checkpoint import rename_legacy
from ..config import BertConfig
from ..errors import ConfigError
from ..ops.losses import cross_entropy
from ..outputs import CausalLMOutputWithCrossAttentions, MaskedLMOutput
from .bert_generation import warm_start_tensors
from .base import GenerationMixin
from .bert import projection
from .bert_models import (
    BertModel,
    _BertBase,
    _layer_norm_shapes,
    _linear_shapes,
    bert_shapes,
    causal_lm_loss,
    record_loss,
)
from .params import Params


@dataclass
class RobertaConfig(BertConfig):
    """RoBERTa's hyper-parameters: transformers' RobertaConfig defaults (BERT's, but these token ids).

    Note: roberta-base's config.json sets max_position_embeddings 514, type_vocab_size 1 and
    layer_norm_eps 1e-5; the class defaults below are transformers' (512, 2, 1e-12), as its RobertaConfig.
    """

    model_type: ClassVar[str] = "roberta"
    vocab_size: int = 50265
    pad_token_id: Optional[int] = 1  # also padding_idx of the positions
    bos_token_id: Optional[int] = 0
    eos_token_id: Any = 2

    def validate(self) -> None:
        super().validate()
        pad = self.pad_token_id
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < self.max_position_embeddings - 1:
            raise ConfigError(
                f"pad_token_id={pad!r}: RoBERTa's positions start after padding_idx = pad_token_id, so it must be "
                f"an integer in [0, {self.max_position_embeddings - 1}) (max_position_embeddings - 1); roberta-base uses 1"
            )


# --- pure functions --------------------------------------------------------------------------------


def roberta_position_ids(input_ids, padding_idx, past_length=0):
    """transformers' create_position_ids_from_input_ids: (cumsum(m) + P) * m + padding_idx, m = ids != pad.

    input_ids [B, S] int -> [B, S] int64. P = past_length, the positions already in the cache.
    Example (padding_idx 1): ids [[0, 5, 6, 1, 1]] -> [[2, 3, 4, 1, 1]]; the same with P = 3 -> [[5, 6, 7, 1, 1]].
    """
    xp = _xp(input_ids)
    m = (input_ids != padding_idx).astype(xp.int64)  # [B, S]
    return (xp.cumsum(m, axis=1) + past_length) * m + padding_idx


def roberta_position_ids_from_embeds(xp, length, padding_idx):
    """Sequential positions padding_idx + 1 .. padding_idx + S -> [1, S] (no ids, so no padding to skip;
    transformers ignores cached positions here)."""
    return xp.arange(padding_idx + 1, padding_idx + 1 + length)[None, :]


def roberta_lm_head(ops, p, cfg, x, output_weight):
    """RobertaLMHead: LayerNorm(gelu(x W_d^T + b_d)) W^T + bias.  p: ``lm_head.``; output_weight [V, D].

    x [B, S, D] -> logits [B, S, V]. gelu is the exact erf form (transformers' ``gelu``), not ``hidden_act``.
    """
    h = ops.record(p, "gelu", ops.activation("gelu")(projection(ops, p, "dense", x)))  # [B, S, D]
    h = ops.record(p, "layer_norm", ops.layer_norm(h, p["layer_norm.weight"], p["layer_norm.bias"], cfg.layer_norm_eps))
    return ops.record(p, "decoder", ops.linear(h, output_weight, p["bias"]))  # [B, S, V]


def roberta_lm_head_shapes(cfg):
    d = cfg.hidden_size
    shapes = _linear_shapes("lm_head.dense", d, d)
    shapes.update(_layer_norm_shapes("lm_head.layer_norm", d))
    shapes["lm_head.bias"] = (cfg.vocab_size,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.decoder.weight"] = (cfg.vocab_size, d)
    return shapes


# --- warm start ------------------------------------------------------------------------------------

# RoBERTa's names are BERT's under other names; the warm start runs BERT's mapping through this table.
_AS_BERT = (
    ("roberta.", "bert."),
    ("lm_head.dense.", "cls.predictions.transform.dense."),
    ("lm_head.layer_norm.", "cls.predictions.transform.LayerNorm."),
    ("lm_head.decoder.", "cls.predictions.decoder."),
    ("lm_head.bias", "cls.predictions.bias"),
)


def _rename(name, table):
    for old, new in table:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def roberta_warm_start_tensors(expected: dict, tensors: dict, initializer_range: float, seed: int):
    """Map a RoBERTa checkpoint onto a RoBERTa decoder (``expected``: name -> shape) the way transformers'
    warm start does: :func:`refimpl.models.bert_generation.warm_start_tensors` on the BERT names of the same
    tensors (``roberta.`` = ``bert.``, ``lm_head.dense`` = ``cls.predictions.transform.dense``, ...), so the
    same groups are dropped (pooler) and initialised (cross-attention, a missing LM head: LayerNorm 1/0,
    biases 0, weights normal(0, initializer_range)). Returns (tensors, report) in RoBERTa names.
    """
    tensors = {rename_legacy(k): v for k, v in tensors.items()}
    if "lm_head.decoder.bias" in tensors and "lm_head.bias" not in tensors:  # an alias of lm_head.bias
        tensors["lm_head.bias"] = tensors.pop("lm_head.decoder.bias")
    back = tuple((new, old) for old, new in _AS_BERT)
    mapped, report = warm_start_tensors(
        {_rename(k, _AS_BERT): s for k, s in expected.items()},
        {_rename(k, _AS_BERT): v for k, v in tensors.items()},
        "bert.", initializer_range, seed,
    )
    return ({_rename(k, back): v for k, v in mapped.items()},
            {key: [_rename(n, back) for n in names] for key, names in report.items()})


# --- model classes ---------------------------------------------------------------------------------


class _RobertaBase(_BertBase):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    with_pooler = False
    # both embeddings have padding_idx = pad_token_id in transformers' RobertaEmbeddings
    padding_embeddings = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight")

    @classmethod
    def param_shapes(cls, config):
        return bert_shapes(config, "roberta.", cls.with_pooler)

    def _default_position_ids(self, input_ids, batch, length, past):
        """RoBERTa's positions (module docstring) -> [B, S] from ids, [1, S] from inputs_embeds."""
        cfg, xp = self.config, self.xp
        pad = cfg.pad_token_id
        limit = cfg.max_position_embeddings - pad - 1
        what = (f"the {limit} positions of max_position_embeddings={cfg.max_position_embeddings} "
                f"(RoBERTa's positions start at padding_idx + 1 = {pad + 1})")
        if input_ids is None:
            self._check_length(0, length, limit, what)
            return roberta_position_ids_from_embeds(xp, length, pad)
        real = int(xp.max(xp.sum(input_ids != pad, axis=1)))  # the highest position is pad + P + real
        self._check_length(past, real, limit, what)
        return roberta_position_ids(input_ids, pad, past)

    def _output_weight(self):
        """The LM head's output matrix [V, D]: the word embeddings when tied (transformers' default)."""
        if self.config.tie_word_embeddings:
            return self.params["roberta.embeddings.word_embeddings.weight"]
        return self.params["lm_head.decoder.weight"]

    @classmethod
    def _match_options(cls, config):
        return {
            "base_prefix": "roberta",
            "aliases": {"lm_head.decoder.bias": "lm_head.bias"},
            "tied": ["lm_head.decoder.weight"] if config.tie_word_embeddings else [],
        }


class RobertaModel(_RobertaBase, BertModel):
    """The bare RoBERTa encoder (or, with ``is_decoder``, decoder): embeddings, L layers, optional pooler.

    Output: ``BaseModelOutputWithPoolingAndCrossAttentions`` (last_hidden_state [B, S, D], pooler_output
    [B, D] or None when the checkpoint has no pooler, past_key_values, hidden_states, attentions,
    cross_attentions). The call is BertModel's (same inputs and outputs); RoBERTa's positions come from
    ``_RobertaBase._default_position_ids``, its loading rules (a pooler or ``lm_head.*`` of another class ignored) from ``refimpl.models.base``.
    """

    with_pooler = True
    param_shapes = BertModel.param_shapes  # BertModel's table, under no prefix

    @classmethod
    def _match_options(cls, config):
        return {"base_prefix": "roberta", "optional_prefixes": ("pooler.",)}


class RobertaForCausalLM(_RobertaBase, GenerationMixin):
    """Causal LM (needs ``is_decoder``): RobertaLMHead logits [B, S, V]; optional cross-attention, KV cache.

    Loss as transformers' ForCausalLMLoss (labels shifted left, -100 ignored, float32 even for a float64
    model). Generates on its own (decoder-only) with :meth:`generate`, or as an EncoderDecoderModel's decoder.
    """

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "roberta.", False)
        shapes.update(roberta_lm_head_shapes(config))
        return shapes

    warm_start_tensors = staticmethod(roberta_warm_start_tensors)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 labels=None, past_key_values=None, use_cache=None, output_attentions=None,
                 output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        if labels is not None:
            use_cache = False
        out = self._run_bert(ops, Params(self.params, "roberta."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, encoder_hidden_states,
                             encoder_attention_mask, past_key_values, use_cache, output_attentions,
                             output_hidden_states)
        logits = roberta_lm_head(ops, Params(self.params, "lm_head."), self.config, out.last_hidden_state,
                                 self._output_weight())  # [B, S, V]
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, self._labels(labels, "labels", logits.shape[:2], self.config.vocab_size))
        record_loss(ops, loss)
        return CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions,
        )



class RobertaForMaskedLM(_RobertaBase):
    """Masked-LM head (RobertaLMHead): logits [B, S, V]; loss = mean CE over labels != -100, in the logits' dtype."""

    @classmethod
    def param_shapes(cls, config):
        shapes = bert_shapes(config, "roberta.", False)
        shapes.update(roberta_lm_head_shapes(config))
        return shapes

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 labels=None, output_attentions=None, output_hidden_states=None, recorder=None):
        ops = self._ops(recorder)
        out = self._run_bert(ops, Params(self.params, "roberta."), input_ids, attention_mask, token_type_ids,
                             position_ids, head_mask, inputs_embeds, encoder_hidden_states,
                             encoder_attention_mask, None, False, output_attentions, output_hidden_states)
        logits = roberta_lm_head(ops, Params(self.params, "lm_head."), self.config, out.last_hidden_state,
                                 self._output_weight())  # [B, S, V]
        loss = None
        if labels is not None:
            v = self.config.vocab_size
            labels = self._labels(labels, "labels", logits.shape[:2], v)
            loss = cross_entropy(logits.reshape(-1, v), labels.reshape(-1))
        record_loss(ops, loss)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)

