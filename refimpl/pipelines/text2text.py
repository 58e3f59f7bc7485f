"""``text2text-generation``: ``EncoderDecoderModel.generate`` on each input, as transformers 4.57.6's
Text2TextGenerationPipeline.

Each input is tokenized alone (no padding, no token type ids), generated from, and every returned
sequence decoded with ``skip_special_tokens=True`` -> ``{"generated_text": ...}``.

Generation options, lowest precedence first (transformers' ``_prepare_generation_config`` with the
pipeline's defaults): the pipeline's defaults ``max_new_tokens=256, num_beams=4``; the model's generation
config (generation_config.json, else config.json) for every other option; when the model's ``max_length``
is not the global default 20, it replaces the default ``max_new_tokens``; then the options given to
``pipeline(...)``, then those given to the call. Any ``generate`` keyword (``max_new_tokens``,
``num_beams``, ``do_sample``, ``num_return_sequences``, ``no_repeat_ngram_size``, ...) passes through.
"""

from __future__ import annotations

from ..errors import InputError
from .base import Pipeline, check_text, host

PIPELINE_DEFAULTS = {"max_new_tokens": 256, "num_beams": 4}


class Text2TextGenerationPipeline(Pipeline):
    """``pipeline("text2text-generation", model=...)``. Options: ``truncation``, ``return_tensors``,
    ``clean_up_tokenization_spaces``, and any ``generate`` keyword (transformers' ``return_text`` changes
    nothing there; refimpl refuses it rather than ignore it)."""

    task = "text2text-generation"

    def __init__(self, model, tokenizer, task=None, **kwargs):
        if not hasattr(model, "generate"):
            raise InputError(f"the text2text-generation pipeline needs a model that generates (an "
                             f"EncoderDecoderModel), not a {type(model).__name__}")
        self._base_generation = self._model_defaults(model)
        super().__init__(model, tokenizer, task, **kwargs)

    @staticmethod
    def _model_defaults(model):
        from ..generation import GenerationConfig, resolve_generation_config

        model_gc = resolve_generation_config(model)
        options = dict(PIPELINE_DEFAULTS)
        if model_gc.max_length != GenerationConfig().max_length:  # the model's max_length is honoured
            options.pop("max_new_tokens")
        return options

    def _sanitize(self, return_tensors=None, return_type=None, clean_up_tokenization_spaces=None,
                  truncation=None, **generate_kwargs):
        if return_type is not None:
            raise InputError("return_type: give return_tensors=True or return_text=True instead")
        from ..generation import GenerationConfig

        unknown = sorted(k for k in generate_kwargs if k not in GenerationConfig.field_names()
                         and k not in ("seed",))
        if unknown:
            raise self._unknown({k: None for k in unknown},
                                ["truncation", "return_tensors", "clean_up_tokenization_spaces",
                                 "and generate() options"])
        pre = {} if truncation is None else {"truncation": truncation}
        post = {}
        if return_tensors is not None:
            post["return_tensors"] = bool(return_tensors)
        if clean_up_tokenization_spaces is not None:
            post["clean_up_tokenization_spaces"] = bool(clean_up_tokenization_spaces)
        return pre, dict(generate_kwargs), post

    def __call__(self, inputs, **kwargs):
        """One text -> a list of {"generated_text"} (num_return_sequences of them); a list of texts -> a
        list of dicts when each gives one sequence, else a list of lists."""
        if not isinstance(inputs, (str, list)):
            raise InputError(f"text2text-generation inputs must be a str or a list of str, got "
                             f"{type(inputs).__name__}")
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and all(len(r) == 1 for r in result):
            return [r[0] for r in result]
        return result

    def preprocess(self, item, truncation=False):
        enc = self._encode(check_text(item, "text2text-generation input"), truncation=truncation)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def _forward(self, enc, **generate_kwargs):
        if "max_length" in generate_kwargs and "max_new_tokens" not in generate_kwargs \
                and "max_new_tokens" in self._base_generation:
            raise InputError(  # transformers keeps its max_new_tokens=256 then, and ignores max_length (a warning)
                f"max_length={generate_kwargs['max_length']}: this pipeline's max_new_tokens="
                f"{self._base_generation['max_new_tokens']} takes precedence over it (as in transformers); give "
                "max_new_tokens instead")
        options = {**self._base_generation, **generate_kwargs}
        return host(self.model.generate(enc["input_ids"], attention_mask=enc["attention_mask"], **options))

    def postprocess(self, output_ids, return_tensors=False, clean_up_tokenization_spaces=False):
        if return_tensors:
            return [{"generated_token_ids": row} for row in output_ids]
        return [{"generated_text": self.tokenizer.decode(row, skip_special_tokens=True,
                                                         clean_up_tokenization_spaces=clean_up_tokenization_spaces)}
                for row in output_ids]
