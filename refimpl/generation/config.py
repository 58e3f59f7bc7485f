"""Generation options with transformers 4.57.6's names and defaults, and where their values come from.

Precedence, lowest first (as transformers resolves them for a model loaded from a directory):
  1. ``GenerationConfig()`` defaults (max_length 20, num_beams 1, top_k 50, ...);
  2. the model's config.json: every generation field it sets (not None); for an encoder-decoder the
     top-level config first, then the decoder's config for fields still at their default;
  3. instead of 1-2: ``generation_config.json`` next to the checkpoint, when the model was loaded by
     ``EncoderDecoderModel`` / ``BertGeneration*.from_pretrained`` from a directory that has one (for other
     classes pass ``generation_config=load_generation_config(dir)``);
  4. keyword arguments to ``generate``.
Invalid values raise :class:`refimpl.errors.InputError` naming the value, the limit and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError, InputError


@dataclass
class GenerationConfig:
    max_length: int = 20  # total length (prompt / decoder start included)
    max_new_tokens: Optional[int] = None  # overrides max_length: max_length = prompt length + max_new_tokens
    min_length: int = 0
    min_new_tokens: Optional[int] = None
    early_stopping: Any = False  # True, False or "never" (beam search)
    do_sample: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1
    temperature: float = 1.0
    top_k: Optional[int] = 50
    top_p: Optional[float] = 1.0
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: Optional[list] = None
    forced_bos_token_id: Optional[int] = None
    forced_eos_token_id: Any = None
    pad_token_id: Optional[int] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Any = None  # int or list of ints
    decoder_start_token_id: Optional[int] = None
    output_scores: bool = False
    output_logits: bool = False
    output_attentions: bool = False  # per step, every layer's attention probabilities (return_dict_in_generate)
    output_hidden_states: bool = False  # per step, the L + 1 hidden states (return_dict_in_generate)
    return_dict_in_generate: bool = False
    remove_invalid_values: bool = False  # InfNanRemoveLogitsProcessor: nan -> 0, +-inf -> float32 max / min
    suppress_tokens: Optional[list] = None  # token ids that get -inf at every step
    begin_suppress_tokens: Optional[list] = None  # token ids that get -inf at the first generated position
    renormalize_logits: bool = False  # log_softmax after every processor (LogitNormalization)
    use_cache: bool = True  # False: every step runs the decoder over the whole sequence (no KV cache)

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    def update(self, **kwargs):
        names = set(self.field_names())
        not_here = sorted(k for k in kwargs if k in NOT_IMPLEMENTED)
        if not_here:
            raise InputError(
                "generate() options of transformers that refimpl does not implement: "
                + "; ".join(f"{k}={kwargs[k]!r:.40} ({NOT_IMPLEMENTED[k][1]})" for k in not_here)
            )
        unknown = sorted(k for k in kwargs if k not in names)
        if unknown:
            raise InputError(f"unknown generate() arguments {unknown}; known generation options: {sorted(names)}")
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def check_effective(self, given):
        """Options that would have no effect in the chosen mode (transformers' GenerationConfig.validate
        "minor issues", which it only logs). ``given``: the names the caller passed to generate(): for
        those an InputError, since an option that silently does nothing is a wrong answer waiting to
        happen; values that came from a checkpoint's config files get a Python warning instead (hub
        configs carry such values routinely, and transformers accepts them)."""
        issues = []
        if self.do_sample is False:
            for name, default in (("temperature", 1.0), ("top_p", 1.0), ("top_k", 50)):
                value = getattr(self, name)
                if value is not None and value != default:
                    issues.append((name, f"{name}={value!r} is only used when sampling: pass do_sample=True to "
                                         f"sample, or drop {name}"))
        if self.num_beams == 1:
            if self.early_stopping is not False:
                issues.append(("early_stopping", f"early_stopping={self.early_stopping!r} is only used by beam "
                                                 "search: set num_beams > 1, or drop early_stopping"))
            if self.length_penalty is not None and self.length_penalty != 1.0:
                issues.append(("length_penalty", f"length_penalty={self.length_penalty!r} is only used by beam "
                                                 "search: set num_beams > 1, or drop length_penalty"))
        if self.return_dict_in_generate is not True:
            for name in ("output_scores", "output_logits", "output_attentions", "output_hidden_states"):
                if getattr(self, name) is True:
                    issues.append((name, f"{name}=True needs return_dict_in_generate=True (generate returns only "
                                         "the sequences otherwise)"))
        for name, message in issues:
            if name in given:
                raise InputError(message)
        loaded = [m for n, m in issues if n not in given]
        if loaded:
            warnings.warn("generation options from the model's config files that have no effect here: "
                          + "; ".join(loaded), UserWarning, stacklevel=4)

    def validate(self):
        """The checks transformers makes (GenerationConfig.validate and the logits processors), as errors."""
        if self.early_stopping not in (True, False, "never") or isinstance(self.early_stopping, int) and not isinstance(self.early_stopping, bool):
            raise InputError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        _int("num_beams", self.num_beams, 1)
        _int("num_return_sequences", self.num_return_sequences, 1)
        _int("max_length", self.max_length, 1)
        _int("min_length", self.min_length, 0)
        if self.max_new_tokens is not None:
            _int("max_new_tokens", self.max_new_tokens, 1)
        if self.min_new_tokens is not None:
            _int("min_new_tokens", self.min_new_tokens, 0)
        _int("no_repeat_ngram_size", self.no_repeat_ngram_size or 0, 0)
        if self.num_return_sequences != 1:
            if self.num_beams == 1 and not self.do_sample:
                raise InputError(
                    f"num_return_sequences={self.num_return_sequences} needs num_beams >= {self.num_return_sequences} "
                    "(greedy search returns one sequence per input) or do_sample=True"
                )
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise InputError(
                    f"num_return_sequences={self.num_return_sequences} is larger than num_beams={self.num_beams}; "
                    f"beam search keeps num_beams hypotheses: set num_beams >= {self.num_return_sequences}"
                )
        if not _is_number(self.repetition_penalty) or not self.repetition_penalty > 0:
            raise InputError(f"repetition_penalty={self.repetition_penalty!r} must be a float > 0 (1.0 disables it)")
        if not _is_number(self.length_penalty) or not math.isfinite(self.length_penalty):
            raise InputError(f"length_penalty={self.length_penalty!r} must be a finite number (1.0: scores divided "
                             "by the length; 0: no length normalisation)")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id", "forced_bos_token_id"):
            value = getattr(self, name)
            if value is not None and not _is_token(value):
                raise InputError(f"{name}={value!r} must be a token id (an integer >= 0) or None")
        for name in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            if value is not None and (not items or not all(_is_token(t) for t in items)):
                raise InputError(f"{name}={value!r} must be a token id (an integer >= 0), a non-empty list of them, "
                                 "or None")
        for name in ("do_sample", "output_scores", "output_logits", "output_attentions", "output_hidden_states",
                     "return_dict_in_generate", "remove_invalid_values", "use_cache", "renormalize_logits"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.do_sample:
            if not _is_number(self.temperature) or not self.temperature > 0:
                raise InputError(
                    f"temperature={self.temperature!r} must be a float > 0 when do_sample=True "
                    "(for greedy decoding set do_sample=False)"
                )
            if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0):
                raise InputError(f"top_k={self.top_k!r} must be an integer >= 1 (0 or None disables top-k)")
            if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
                raise InputError(f"top_p={self.top_p!r} must lie in (0, 1] (1.0 disables nucleus sampling)")
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (list, tuple)) or not all(
                    isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)):
                raise InputError(f"{name} must be a list of token ids >= 0, got {value!r}")
        if self.bad_words_ids is not None:
            b = self.bad_words_ids
            if not isinstance(b, list) or not b or not all(isinstance(w, list) and w for w in b) or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for w in b for t in w
            ):
                raise InputError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids >= 0, got {b!r}")
        return self

    def check_vocabulary(self, vocab_size: int, what: str = "the decoder"):
        """Every token id an option names lies in [0, vocab_size): an id past the vocabulary would index
        past the logits (an IndexError in transformers), and -1 would wrap to the last id."""
        named = [(name, getattr(self, name)) for name in (
            "pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "forced_bos_token_id",
            "forced_eos_token_id")]  # suppress_tokens, begin_suppress_tokens, bad_words_ids: build_processors
        for name, value in named:
            for token in _flat(value):
                if int(token) >= vocab_size:
                    raise InputError(
                        f"{name}={_short(value)} names token {int(token)}, outside the vocabulary of {what} "
                        f"(ids 0..{vocab_size - 1}); give ids of this model's tokenizer"
                    )

    def eos_list(self):
        """eos_token_id as a list (empty when unset)."""
        if self.eos_token_id is None:
            return []
        return [int(t) for t in (self.eos_token_id if isinstance(self.eos_token_id, (list, tuple)) else [self.eos_token_id])]


# transformers 4.57.6 generate() options refimpl does not implement: name -> (transformers' default, why).
# Passed to generate() they raise InputError with the reason; set in a generation_config.json to anything
# but the default they raise ConfigError (never silently ignored).
NOT_IMPLEMENTED = {
    "max_time": (None, "a wall-clock limit makes the output depend on the machine's speed; bound the length with "
                       "max_new_tokens"),
    "stop_strings": (None, "needs the tokenizer inside generate; refimpl generates ids: use eos_token_id"),
    "min_p": (None, "min-p sampling is not implemented; use top_k / top_p"),
    "typical_p": (1.0, "typical sampling is not implemented; use top_k / top_p"),
    "epsilon_cutoff": (0.0, "epsilon sampling is not implemented; use top_k / top_p"),
    "eta_cutoff": (0.0, "eta sampling is not implemented; use top_k / top_p"),
    "encoder_repetition_penalty": (1.0, "not implemented; repetition_penalty is"),
    "encoder_no_repeat_ngram_size": (0, "not implemented; no_repeat_ngram_size is"),
    "sequence_bias": (None, "not implemented; bad_words_ids bans sequences"),
    "exponential_decay_length_penalty": (None, "not implemented"),
    "force_words_ids": (None, "constrained beam search is not implemented"),
    "constraints": (None, "constrained beam search is not implemented"),
    "num_beam_groups": (1, "group (diverse) beam search is not implemented"),
    "diversity_penalty": (0.0, "group (diverse) beam search is not implemented"),
    "penalty_alpha": (None, "contrastive search is not implemented"),
    "dola_layers": (None, "DoLa decoding is not implemented"),
    "guidance_scale": (None, "classifier-free guidance is not implemented"),
    "watermarking_config": (None, "watermarking is not implemented"),
    "token_healing": (False, "token healing is not implemented (needs a tokenizer)"),
    "low_memory": (None, "sequential beam search is not implemented; beam search always runs batched"),
    "cache_implementation": (None, "refimpl has one cache (refimpl.KVCache, preallocated); use use_cache=False "
                                   "for none"),
    "cache_config": (None, "refimpl has one cache (refimpl.KVCache)"),
    "return_legacy_cache": (None, "refimpl has one cache (refimpl.KVCache)"),
    "compile_config": (None, "there is nothing to compile in refimpl"),
    "prefill_chunk_size": (None, "chunked prefill is not implemented"),
    "prompt_lookup_num_tokens": (None, "assisted (prompt lookup) decoding is not implemented"),
    "num_assistant_tokens": (20, "assisted decoding is not implemented"),
    "assistant_model": (None, "assisted decoding is not implemented"),
    "logits_processor": (None, "takes torch callables; refimpl's processors are listed in "
                               "refimpl/generation/logits_process.py"),
    "stopping_criteria": (None, "takes torch callables; use eos_token_id / max_new_tokens"),
    "prefix_allowed_tokens_fn": (None, "not implemented; bad_words_ids bans tokens"),
    "streamer": (None, "streaming is not implemented; generate returns when done"),
    "synced_gpus": (None, "there is no multi-GPU generation in refimpl"),
    "negative_prompt_ids": (None, "classifier-free guidance is not implemented"),
    "inputs_embeds": (None, "generate takes token ids; embed through the ids"),
    "past_key_values": (None, "generate builds its own KV cache; continuing from a given cache is not implemented"),
    "decoder_inputs_embeds": (None, "generate takes token ids"),
    "position_ids": (None, "generate derives positions from the attention mask, as transformers does"),
    "head_mask": (None, "not passed through by generate; call the model's forward to use a head mask"),
}


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_token(x):
    """A token id: an integer >= 0 (a Python or numpy integer; never a bool, a float like 4.7, or -1)."""
    return (isinstance(x, int) or type(x).__module__ == "numpy" and hasattr(x, "dtype") and x.dtype.kind in "iu") \
        and not isinstance(x, bool) and x >= 0


def _flat(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flat(v)]
    return [value]


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name}={value!r} must be an integer >= {minimum}")


def _config_fields(cfg) -> dict:
    """The generation-relevant, non-None values a model config carries (config.json keys + extras)."""
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    names = set(GenerationConfig.field_names())
    return {k: v for k, v in d.items() if k in names and v is not None and not isinstance(v, dict)}


def resolve_generation_config(model, generation_config=None, kwargs=None) -> GenerationConfig:
    """The effective options for ``model.generate(**kwargs)`` (see the module docstring for precedence)."""
    path = getattr(model, "generation_config_path", None)
    if generation_config is not None:
        base = dataclasses.replace(generation_config)
    elif path is not None and Path(path).is_file():  # transformers then ignores config.json's fields
        base = load_generation_config(path)
    else:
        base = GenerationConfig()
        default = GenerationConfig()
        top = _config_fields(model.config)
        for k, v in top.items():
            setattr(base, k, v)
        decoder_cfg = getattr(model.config, "decoder", None)
        if decoder_cfg is not None:
            for k, v in _config_fields(decoder_cfg).items():
                if getattr(base, k) == getattr(default, k):
                    setattr(base, k, v)
    base.update(**(kwargs or {}))
    base.validate()
    base.check_effective({k for k, v in (kwargs or {}).items() if v is not None})
    return base


def load_generation_config(path) -> GenerationConfig:
    """A GenerationConfig from a ``generation_config.json`` file (or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "generation_config.json"
    from ..checkpoint import read_json_file

    data = read_json_file(path, "generation config", error=ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object of generation options, got {type(data).__name__}")
    gc = GenerationConfig()
    for k, v in data.items():
        if k in GenerationConfig.field_names():
            setattr(gc, k, v)
        elif k in NOT_IMPLEMENTED and v != NOT_IMPLEMENTED[k][0]:
            raise ConfigError(f"{path} sets {k}={v!r}, which refimpl does not implement ({NOT_IMPLEMENTED[k][1]}); "
                              f"remove it from the file (or set it to {NOT_IMPLEMENTED[k][0]!r}) to generate with refimpl")
    return gc
