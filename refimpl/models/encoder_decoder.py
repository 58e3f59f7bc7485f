"""EncoderDecoderModel: any refimpl encoder (BertModel, BertGenerationEncoder, RobertaModel) feeding a
decoder with cross-attention (BertLMHeadModel, BertGenerationDecoder, RobertaForCausalLM) — bert2bert,
roberta2roberta and mixes, as transformers 4.57.6 ``modeling_encoder_decoder.py`` builds them.

Dimension legend: B batch, S source length, T target length, D_enc / D_dec hidden sizes, V vocabulary.

    encoder_hidden = encoder(input_ids, attention_mask).last_hidden_state       # [B, S, D_enc]
    encoder_hidden = enc_to_dec_proj(encoder_hidden)   (only when D_enc != D_dec)  # [B, S, D_dec]
    logits = decoder(decoder_input_ids, decoder_attention_mask,
                     encoder_hidden_states=encoder_hidden, encoder_attention_mask=attention_mask)  # [B, T, V]

Checkpoint layout (one directory): ``config.json`` with nested ``encoder`` / ``decoder`` configs and the
tensors ``encoder.*``, ``decoder.*`` (each named as its own class names them) and ``enc_to_dec_proj.*``.
Loss with ``labels`` [B, T] (transformers' EncoderDecoderModel, not the decoder's shifted loss): when no
``decoder_input_ids`` are given they are ``labels`` shifted right with ``decoder_start_token_id`` in front
and -100 replaced by ``pad_token_id`` (and, without a ``decoder_attention_mask``, the mask is
``decoder_input_ids != pad_token_id``); loss = mean cross-entropy of logits [B*T, V] against labels,
-100 ignored, in the logits' dtype.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import numpy as np

from ..backend import to_host
from ..checkpoint import load_checkpoint_tensors
from ..config import read_config_json
from ..errors import CheckpointError, ConfigError, InputError
from ..ops.losses import IGNORE_INDEX, cross_entropy
from ..outputs import Seq2SeqLMOutput
from . import bert as _bert
from .base import GenerationMixin, PreTrainedModel, host_array
from .bert_generation import BertGenerationDecoder, BertGenerationEncoder, config_from_dict, warm_start_tensors
from .bert_models import BertLMHeadModel, BertModel, record_loss
from .init import generator, init_weights
from .params import Params
from .roberta import RobertaConfig, RobertaForCausalLM, RobertaModel

# model_type -> the class transformers' AutoModel / AutoModelForCausalLM builds for it
ENCODER_CLASSES = {"bert": BertModel, "bert-generation": BertGenerationEncoder, "roberta": RobertaModel}
DECODER_CLASSES = {"bert": BertLMHeadModel, "bert-generation": BertGenerationDecoder, "roberta": RobertaForCausalLM}
_TOP_LEVEL_TOKENS = ("pad_token_id", "decoder_start_token_id", "bos_token_id", "eos_token_id")


@dataclass
class EncoderDecoderConfig:
    """An encoder config, a decoder config (``is_decoder`` and ``add_cross_attention`` set) and the
    sequence-to-sequence token ids. Unknown top-level keys are kept in ``extra``."""

    encoder: Any
    decoder: Any
    pad_token_id: Optional[int] = None
    decoder_start_token_id: Optional[int] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Any = None
    tie_encoder_decoder: bool = False
    model_type: ClassVar[str] = "encoder-decoder"
    is_encoder_decoder: bool = True
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data.get("encoder"), dict) or not isinstance(data.get("decoder"), dict):
            raise ConfigError("an encoder-decoder config.json needs nested 'encoder' and 'decoder' objects")
        known = {f.name for f in dataclasses.fields(cls)} - {"encoder", "decoder", "extra"}
        data = {k: v for k, v in data.items() if k != "model_type"}
        cfg = cls(
            encoder=sub_config_from_dict(data["encoder"]),
            decoder=sub_config_from_dict(data["decoder"]),
            **{k: v for k, v in data.items() if k in known},
            extra={k: v for k, v in data.items() if k not in known and k not in ("encoder", "decoder")},
        )
        cfg.validate()
        return cfg

    @classmethod
    def from_pretrained(cls, path, **overrides):
        cfg = cls.from_dict(read_config_json(path))
        if overrides:
            cfg.update(**overrides)
        return cfg

    def update(self, **values):
        """Set top-level fields (token ids), as ``from_pretrained(path, decoder_start_token_id=101)``;
        ``encoder_<field>`` / ``decoder_<field>`` set the sub-configs' fields."""
        names = {f.name for f in dataclasses.fields(self)} - {"encoder", "decoder", "extra"}
        sub = {"encoder": {}, "decoder": {}}
        for key, value in values.items():
            side = next((s for s in sub if key.startswith(s + "_")), None)
            if side is not None and key not in names:
                sub[side][key[len(side) + 1:]] = value
            elif key in names:
                setattr(self, key, value)
            elif key in self.extra:
                self.extra[key] = value
            else:
                raise ConfigError(f"EncoderDecoderConfig has no field {key!r}; fields are {sorted(names)}, and "
                                  "encoder_<field> / decoder_<field> set the encoder's / decoder's")
        for side, vals in sub.items():
            if vals:
                getattr(self, side).update(**vals)
        self.validate()

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config, decoder_config, **kwargs):
        """transformers' constructor: the decoder becomes a cross-attending decoder."""
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        cfg = cls(encoder=encoder_config, decoder=decoder_config, **kwargs)
        cfg.validate()
        return cfg

    def validate(self):
        if self.tie_encoder_decoder:
            raise ConfigError("tie_encoder_decoder=True is not supported by refimpl; untie the checkpoint's weights")
        if not (self.decoder.is_decoder and self.decoder.add_cross_attention):
            raise ConfigError(
                "the decoder config of an encoder-decoder needs is_decoder=True and add_cross_attention=True "
                f"(got is_decoder={self.decoder.is_decoder}, add_cross_attention={self.decoder.add_cross_attention})"
            )
        if self.encoder.is_decoder:
            raise ConfigError("the encoder config of an encoder-decoder must have is_decoder=False")
        if self.decoder.extra.get("cross_attention_hidden_size") not in (None, self.encoder.hidden_size):
            raise ConfigError(
                f"decoder cross_attention_hidden_size={self.decoder.extra['cross_attention_hidden_size']} must equal "
                f"the encoder's hidden_size={self.encoder.hidden_size}"
            )

    @property
    def needs_projection(self) -> bool:
        """transformers adds ``enc_to_dec_proj`` when the hidden sizes differ."""
        return self.encoder.hidden_size != self.decoder.hidden_size

    def to_dict(self) -> dict:
        d = {"model_type": self.model_type}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("encoder", "decoder", "extra")})
        d.update(self.extra)
        d["encoder"] = self.encoder.to_dict()
        d["decoder"] = self.decoder.to_dict()
        return d


def sub_config_from_dict(data: dict, overrides=None):
    """The encoder's or decoder's config from its dict, by ``model_type`` (bert, bert-generation, roberta)."""
    kind = data.get("model_type", "bert")
    if kind not in ENCODER_CLASSES:
        raise ConfigError(
            f"model_type={kind!r} is not supported in an encoder-decoder; refimpl builds them from "
            f"{sorted(ENCODER_CLASSES)} models"
        )
    if kind == "roberta":
        return RobertaConfig.from_dict(data, **(overrides or {}))
    return config_from_dict(data, overrides)


def shift_tokens_right(labels, pad_token_id, decoder_start_token_id):
    """[start, labels[:, :-1]] with -100 replaced by ``pad_token_id``.  labels [B, T] (host) -> [B, T]."""
    if decoder_start_token_id is None:
        raise ConfigError(
            "decoder_start_token_id is not set; set config.decoder_start_token_id (bert2bert: the [CLS] id) "
            "to build decoder inputs from labels"
        )
    if pad_token_id is None:
        raise ConfigError("pad_token_id is not set; set config.pad_token_id to build decoder inputs from labels")
    shifted = np.empty_like(labels)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    shifted[shifted == IGNORE_INDEX] = pad_token_id
    return shifted


class EncoderDecoderModel(PreTrainedModel, GenerationMixin):
    """bert2bert-style sequence-to-sequence model. ``encoder`` / ``decoder`` are refimpl models sharing
    this model's backend and dtype; ``params`` holds every tensor under its checkpoint name."""

    config_class = EncoderDecoderConfig
    is_encoder_decoder = True

    def __init__(self, config=None, encoder=None, decoder=None, proj_params=None, xp=None, dtype=None,
                 load_report=None, kernels=None, *, seed=None, backend=None):
        """transformers' three ways, plus what loading passes:

        - ``EncoderDecoderModel(encoder=enc, decoder=dec)``: two refimpl models (an encoder class, and a
          decoder class with ``is_decoder`` and ``add_cross_attention``) on one backend, dtype and kernel set;
          the config is ``EncoderDecoderConfig.from_encoder_decoder_configs`` of theirs;
        - ``EncoderDecoderModel(config)``: both built with new weights (``seed=``, ``backend=``, ``dtype=``);
        - ``EncoderDecoderModel(config, encoder=enc)`` (or ``decoder=``): the other one new.
        ``enc_to_dec_proj`` (hidden sizes differ) is new unless ``proj_params`` are given: nn.Linear's
        default initialisation (refimpl.models.init)."""
        if config is None:
            if encoder is None or decoder is None:
                raise ConfigError("EncoderDecoderModel needs a config, or both encoder= and decoder= models")
            self._check_classes(encoder, decoder)
            config = EncoderDecoderConfig.from_encoder_decoder_configs(copy.deepcopy(encoder.config),
                                                                       copy.deepcopy(decoder.config))
        rng = generator(seed)
        new = {"backend": backend or "numpy", "dtype": dtype or "float32", "kernels": kernels}
        if encoder is None:
            encoder = ENCODER_CLASSES[config.encoder.model_type](config.encoder, seed=_child_seed(rng), **new)
        if decoder is None:
            decoder = DECODER_CLASSES[config.decoder.model_type](config.decoder, seed=_child_seed(rng), **new)
        self._check_parts(config, encoder, decoder)
        if proj_params is None:
            proj_params = {}
            if config.needs_projection:
                host = init_weights(_projection_shapes(config), config.decoder.initializer_range, rng)
                proj_params = {k: encoder.xp.asarray(v, dtype=encoder.dtype) for k, v in host.items()}
                load_report = {**(load_report or {}), "initialized": sorted(host)}
        params = {f"encoder.{k}": v for k, v in encoder.params.items()}
        params.update({f"decoder.{k}": v for k, v in decoder.params.items()})
        params.update(proj_params)
        super().__init__(config, params, xp=encoder.xp, dtype=encoder.dtype, load_report=load_report,
                         kernels=encoder.kernels if kernels is None else kernels)
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def _check_parts(cls, config, encoder, decoder):
        """The encoder and decoder fit each other and the config (clear errors, not a failure mid-forward)."""
        cls._check_classes(encoder, decoder)
        for side, model in (("encoder", encoder), ("decoder", decoder)):
            if model.config.to_dict() != getattr(config, side).to_dict():
                mine, given = model.config.to_dict(), getattr(config, side).to_dict()
                keys = sorted(k for k in set(mine) | set(given) if mine.get(k) != given.get(k))
                raise ConfigError(f"the {side} model's config differs from config.{side} in {keys}; pass the "
                                  f"models alone (EncoderDecoderModel(encoder=..., decoder=...)) or a matching config")
        if encoder.xp is not decoder.xp or encoder.dtype != decoder.dtype:
            raise ConfigError(f"encoder and decoder must share backend and dtype (encoder {encoder.dtype} on "
                              f"{encoder.xp.__name__}, decoder {decoder.dtype} on {decoder.xp.__name__}); load both "
                              "with the same dtype= and backend=")
        if encoder.kernels.name != decoder.kernels.name:
            raise ConfigError(f"encoder and decoder run different kernel sets ({encoder.kernels.name!r}, "
                              f"{decoder.kernels.name!r}); load both with the same kernels=")

    @staticmethod
    def _check_classes(encoder, decoder):
        """An encoder class without an LM head, a decoder class with cross-attention."""
        if type(encoder) not in ENCODER_CLASSES.values():
            raise ConfigError(f"encoder must be one of {[c.__name__ for c in ENCODER_CLASSES.values()]} (a model "
                              f"without an LM head, as transformers requires), got {type(encoder).__name__}")
        if type(decoder) not in DECODER_CLASSES.values():
            raise ConfigError(f"decoder must be one of {[c.__name__ for c in DECODER_CLASSES.values()]}, "
                              f"got {type(decoder).__name__}")
        if not (decoder.config.is_decoder and decoder.config.add_cross_attention):
            raise ConfigError(
                f"the decoder {type(decoder).__name__} was built without cross-attention (is_decoder="
                f"{decoder.config.is_decoder}, add_cross_attention={decoder.config.add_cross_attention}); load it "
                "with from_pretrained(dir, is_decoder=True, add_cross_attention=True, init_missing=True) "
                "(BertGenerationDecoder warm-starts them from a BERT checkpoint by itself)"
            )

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_tensors(cls, config, tensors, dtype="float32", backend="numpy", files=None, where="tensors",
                     kernels=None, init_missing=False, seed=None, quantization_config=None):
        """quantization_config (or config.json's): each half quantized by its own class's rules, which are
        the ones transformers derives for the whole model; enc_to_dec_proj stays unquantized."""
        quantization_config = quantization_config or config.extra.get("quantization_config")
        groups = {"encoder.": {}, "decoder.": {}, "enc_to_dec_proj.": {}}
        for name, arr in tensors.items():
            prefix = next((p for p in groups if name.startswith(p)), None)
            if prefix is None:
                raise CheckpointError(
                    f"tensor {name} ({where}) belongs to neither encoder.*, decoder.* nor enc_to_dec_proj.*; "
                    "is this an encoder-decoder checkpoint?"
                )
            groups[prefix][name if prefix == "enc_to_dec_proj." else name[len(prefix):]] = arr
        enc_cls = ENCODER_CLASSES[config.encoder.model_type]
        dec_cls = DECODER_CLASSES[config.decoder.model_type]
        rng = generator(seed) if init_missing else None
        encoder = enc_cls.from_tensors(config.encoder, groups["encoder."], dtype, backend, where=f"{where} [encoder.*]",
                                       kernels=kernels, init_missing=init_missing, seed=rng and _child_seed(rng),
                                       quantization_config=quantization_config)
        decoder = dec_cls.from_tensors(config.decoder, groups["decoder."], dtype, backend, where=f"{where} [decoder.*]",
                                       kernels=kernels, init_missing=init_missing, seed=rng and _child_seed(rng),
                                       quantization_config=quantization_config)
        proj = cls._projection(config, groups["enc_to_dec_proj."], encoder.xp, encoder.dtype, where)
        report = {"encoder": encoder.load_report, "decoder": decoder.load_report}
        return cls(config, encoder, decoder, proj, load_report=report)

    @staticmethod
    def _projection(config, tensors, xp, dtype, where):
        want = _projection_shapes(config)
        if set(tensors) != set(want):
            raise CheckpointError(
                f"{where}: enc_to_dec_proj tensors {sorted(tensors)} do not match the config, which needs "
                f"{sorted(want) or 'none'} (encoder hidden_size {config.encoder.hidden_size}, decoder "
                f"{config.decoder.hidden_size})"
            )
        for name, shape in want.items():
            if tuple(tensors[name].shape) != shape:
                raise CheckpointError(f"{where}: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
        return {k: xp.asarray(v, dtype=dtype) for k, v in tensors.items()}

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path=None,
                                        decoder_pretrained_model_name_or_path=None, dtype="float32",
                                        backend="numpy", seed=0, kernels=None, encoder_model=None,
                                        decoder_model=None, **kwargs):
        """Warm start from two checkpoint directories (or loaded models), as transformers does.

        The encoder is loaded as its base model (``is_decoder`` / ``add_cross_attention`` forced off); the
        decoder as a causal LM with ``is_decoder`` and ``add_cross_attention`` forced on. Tensors the
        decoder checkpoint lacks (cross-attention, the LM head's transform and bias) are initialised from
        a numpy normal seeded with ``seed`` (LayerNorm 1/0, biases 0) and listed in
        ``load_report["decoder"]["initialized"]``, ``enc_to_dec_proj`` (hidden sizes differ) as nn.Linear's
        default; dropped tensors (pooler, token types of BertGeneration, other heads, a RoBERTa encoder
        checkpoint's ``lm_head.*``) in ``["ignored"]``. A RoBERTa decoder maps its names through BERT's
        warm start (``RobertaForCausalLM.warm_start_tensors``).
        encoder_model / decoder_model: an already loaded refimpl model used as it is, instead of a directory
        (transformers' ``encoder_model=`` / ``decoder_model=``); a decoder model must already have
        cross-attention.
        kwargs: ``encoder_<field>`` / ``decoder_<field>`` override the encoder / decoder configs; other
        keys (``pad_token_id``, ``decoder_start_token_id``, ``bos_token_id``, ``eos_token_id``) set the
        top-level config (transformers would read ``decoder_start_token_id`` as a decoder field
        ``start_token_id``; refimpl takes the evident meaning).
        """
        top = {k: kwargs.pop(k) for k in list(kwargs) if k in _TOP_LEVEL_TOKENS}
        enc_over = {k[len("encoder_"):]: v for k, v in kwargs.items() if k.startswith("encoder_")}
        dec_over = {k[len("decoder_"):]: v for k, v in kwargs.items() if k.startswith("decoder_")}
        unknown = [k for k in kwargs if not k.startswith(("encoder_", "decoder_"))]
        if unknown:
            raise InputError(f"unknown arguments {unknown}; use encoder_<field>, decoder_<field> or {_TOP_LEVEL_TOKENS}")
        for side, path, model, over in (("encoder", encoder_pretrained_model_name_or_path, encoder_model, enc_over),
                                        ("decoder", decoder_pretrained_model_name_or_path, decoder_model, dec_over)):
            if (path is None) == (model is None):
                raise InputError(f"give exactly one of {side}_pretrained_model_name_or_path (a directory) or "
                                 f"{side}_model (a loaded refimpl model)")
            if model is not None and over:
                raise InputError(f"{side}_<field> overrides {sorted(over)} apply to a directory being loaded; "
                                 f"{side}_model= is used as it is")
        if encoder_model is not None:
            encoder = encoder_model
        else:
            encoder = cls._warm_encoder(encoder_pretrained_model_name_or_path, enc_over, dtype, backend, kernels)
        if decoder_model is not None:
            decoder = decoder_model
        else:
            decoder = cls._warm_decoder(decoder_pretrained_model_name_or_path, dec_over, dtype, backend, kernels, seed)
        config = EncoderDecoderConfig(encoder=encoder.config, decoder=decoder.config, **top)
        cls._check_parts(config, encoder, decoder)
        config.validate()
        proj = None
        if config.needs_projection:
            host = init_weights(_projection_shapes(config), decoder.config.initializer_range,
                                np.random.default_rng(seed + 1))
            proj = {k: encoder.xp.asarray(v, dtype=encoder.dtype) for k, v in host.items()}
            decoder.load_report["initialized"] = decoder.load_report.get("initialized", []) + sorted(proj)
        report = {"encoder": encoder.load_report, "decoder": decoder.load_report}
        return cls(config, encoder, decoder, proj or {}, load_report=report)

    @staticmethod
    def _warm_encoder(path, overrides, dtype, backend, kernels):
        """The encoder of a warm start: the checkpoint's base model, never a decoder."""
        cfg = sub_config_from_dict(read_config_json(path), {**overrides, "is_decoder": False,
                                                            "add_cross_attention": False})
        tensors, files = load_checkpoint_tensors(path)
        return ENCODER_CLASSES[cfg.model_type].from_tensors(cfg, tensors, dtype, backend, files=files,
                                                            where=str(path), kernels=kernels)

    @staticmethod
    def _warm_decoder(path, overrides, dtype, backend, kernels, seed):
        """The decoder of a warm start: a causal LM with cross-attention, new tensors initialised (seeded)."""
        cfg = sub_config_from_dict(read_config_json(path), {**overrides, "is_decoder": True,
                                                            "add_cross_attention": True})
        dec_cls = DECODER_CLASSES[cfg.model_type]
        tensors, _ = load_checkpoint_tensors(path)
        shapes = dec_cls.param_shapes(cfg)
        if hasattr(dec_cls, "warm_start_tensors"):  # a family with its own names (RoBERTa)
            mapped, report = dec_cls.warm_start_tensors(shapes, tensors, cfg.initializer_range, seed)
        else:
            mapped, report = warm_start_tensors(shapes, tensors, "bert.", cfg.initializer_range, seed)
        decoder = dec_cls.from_tensors(cfg, mapped, dtype, backend, where=f"{path} (warm start)", kernels=kernels)
        decoder.load_report["ignored"] = sorted(set(decoder.load_report.get("ignored", [])) | set(report["ignored"]))
        decoder.load_report["initialized"] = report["initialized"]
        return decoder

    # -- forward -----------------------------------------------------------------------------------
    def encode(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None,
               output_hidden_states=None, recorder=None):
        """The encoder's output record (recorded under ``encoder.``)."""
        ops = self._ops(recorder)
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                           recorder=_scoped(ops, "encoder."))
        return out

    def project(self, encoder_hidden, recorder=None):
        """enc_to_dec_proj when the hidden sizes differ, else the identity. [B, S, D_enc] -> [B, S, D_dec]."""
        if "enc_to_dec_proj.weight" in self.params:
            return _bert.projection(self._ops(recorder), Params(self.params), "enc_to_dec_proj", encoder_hidden)
        return encoder_hidden

    def cross_kv(self, encoder_hidden, recorder=None):
        """Every decoder layer's cross-attention keys and values from projected encoder states [B, S, D_dec]:
        two tuples of L arrays [B, N, S, H]. Computed once per sequence (generation reuses them); recorded
        under the decoder's names (``decoder.bert.encoder.layer.{i}.crossattention.self.key``)."""
        cfg = self.decoder.config
        ops = self._ops(recorder)
        p = Params(self.params, f"decoder.{self.decoder.base_model_prefix}.encoder.")
        keys, values = [], []
        for i in range(cfg.num_hidden_layers):
            k, v = _bert.cross_attention_kv(ops, p.sub(f"layer.{i}.crossattention.self."), cfg, encoder_hidden)
            keys.append(k)
            values.append(v)
        return tuple(keys), tuple(values)

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                 encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                 labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                 recorder=None):
        ops = self._ops(recorder)
        if encoder_outputs is None:
            encoder_outputs = self.encode(input_ids, attention_mask, inputs_embeds, output_attentions,
                                          output_hidden_states, recorder=ops.recorder)
        encoder_hidden = _last_hidden_state(encoder_outputs)  # [B, S, D_enc]
        encoder_hidden = self.project(encoder_hidden, recorder=ops.recorder)  # [B, S, D_dec]

        labels_host = None
        if labels is not None:
            labels_host = host_array(labels, "labels")
            if labels_host.dtype.kind not in "iu" or labels_host.ndim != 2:
                raise InputError(f"labels must be integer ids of shape [batch, target_length], got {labels_host.dtype} {labels_host.shape}")
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = shift_tokens_right(labels_host, self.config.pad_token_id,
                                                       self.config.decoder_start_token_id)
                if decoder_attention_mask is None:
                    decoder_attention_mask = (decoder_input_ids != self.config.pad_token_id).astype(np.int64)

        dec = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                           inputs_embeds=decoder_inputs_embeds, encoder_hidden_states=encoder_hidden,
                           encoder_attention_mask=attention_mask, past_key_values=past_key_values,
                           use_cache=use_cache, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, recorder=_scoped(ops, "decoder."))
        loss = None
        if labels is not None:
            v = self.decoder.config.vocab_size
            target = self.decoder._labels(labels_host, "labels", dec.logits.shape[:2], v)
            loss = cross_entropy(dec.logits.reshape(-1, v), target.reshape(-1))
        record_loss(ops, loss)
        enc = encoder_outputs if hasattr(encoder_outputs, "last_hidden_state") else None
        return Seq2SeqLMOutput(
            loss=loss, logits=dec.logits, past_key_values=dec.past_key_values,
            decoder_hidden_states=dec.hidden_states, decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions,
            encoder_last_hidden_state=_last_hidden_state(encoder_outputs),
            encoder_hidden_states=getattr(enc, "hidden_states", None),
            encoder_attentions=getattr(enc, "attentions", None),
        )


    def loss_and_grads(self, **inputs):
        """(loss, grads): the forward's loss on ``inputs`` (its keyword arguments, labels included) and its
        gradient with respect to every parameter, keyed by transformers' parameter names. Options:
        ``train`` (dropout, with ``rng`` or ``dropout_masks``), ``inputs_embeds_grad``, ``check_finite``
        (refimpl.models.training; docs/training.md)."""
        from .training import loss_and_grads

        return loss_and_grads(self, **inputs)

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder


def _projection_shapes(config):
    """enc_to_dec_proj's parameters: none when the hidden sizes agree."""
    if not config.needs_projection:
        return {}
    return {"enc_to_dec_proj.weight": (config.decoder.hidden_size, config.encoder.hidden_size),
            "enc_to_dec_proj.bias": (config.decoder.hidden_size,)}


def _child_seed(rng):
    """A seed for a sub-model's own generator, drawn from ``rng`` (so one seed decides the whole model)."""
    return int(rng.integers(2**63))


def _scoped(ops, prefix):
    """The recorder of ``ops`` scoped under ``prefix`` (a sub-model's names), or None."""
    return None if ops.recorder is None else ops.recorder.scoped(prefix)


def _last_hidden_state(encoder_outputs):
    """encoder_outputs as a record (``last_hidden_state``), a tuple (first item) or an array [B, S, D]."""
    if hasattr(encoder_outputs, "last_hidden_state"):
        return encoder_outputs.last_hidden_state
    if isinstance(encoder_outputs, (tuple, list)):
        return encoder_outputs[0]
    return encoder_outputs
