"""refimpl: a framework-free reference implementation of the BERT family on NumPy or CuPy.

    import refimpl
    tok = refimpl.AutoTokenizer.from_pretrained(path)
    model = refimpl.BertModel.from_pretrained(path, dtype="float32", backend="numpy")
    out = model(**tok(["a sentence"], return_tensors="np"))

Names are imported lazily, so ``import refimpl`` costs only NumPy.
"""

__version__ = "0.1.0"

_EXPORTS = {
    # configs
    "BertConfig": "refimpl.config",
    "BertGenerationConfig": "refimpl.config",
    "EncoderDecoderConfig": "refimpl.models.encoder_decoder",
    # BERT
    "BertModel": "refimpl.models.bert_models",
    "BertForPreTraining": "refimpl.models.bert_models",
    "BertLMHeadModel": "refimpl.models.bert_models",
    "BertForMaskedLM": "refimpl.models.bert_models",
    "BertForNextSentencePrediction": "refimpl.models.bert_models",
    "BertForSequenceClassification": "refimpl.models.bert_models",
    "BertForMultipleChoice": "refimpl.models.bert_models",
    "BertForTokenClassification": "refimpl.models.bert_models",
    "BertForQuestionAnswering": "refimpl.models.bert_models",
    # BertGeneration / EncoderDecoder
    "BertGenerationEncoder": "refimpl.models.bert_generation",
    "BertGenerationDecoder": "refimpl.models.bert_generation",
    "EncoderDecoderModel": "refimpl.models.encoder_decoder",
    # RoBERTa
    "RobertaConfig": "refimpl.models.roberta",
    "RobertaModel": "refimpl.models.roberta",
    "RobertaForCausalLM": "refimpl.models.roberta",
    "RobertaForMaskedLM": "refimpl.models.roberta",
    # generation
    "GenerationConfig": "refimpl.generation",
    # cache
    "KVCache": "refimpl.cache",
    # tokenizers
    "BertTokenizer": "refimpl.tokenizers",
    "BertTokenizerLegacy": "refimpl.tokenizers",
    "BertGenerationTokenizer": "refimpl.tokenizers",
    "RobertaTokenizer": "refimpl.tokenizers",
    "AutoTokenizer": "refimpl.tokenizers",
    # pipelines
    "pipeline": "refimpl.pipelines",
    # new weights (Model(config)) from a seed
    "set_seed": "refimpl.models.init",
    # recording intermediates
    "record": "refimpl.recorder",
    "Recorder": "refimpl.recorder",
    # training: optimizers, schedules, clipping (model.loss_and_grads gives the gradients)
    "optim": "refimpl.optim",
    # bitsandbytes quantization (refimpl.quantization): from_pretrained(..., quantization_config=...)
    "BitsAndBytesConfig": "refimpl.quantization.config",
    # errors
    "RefimplError": "refimpl.errors",
    "ConfigError": "refimpl.errors",
    "CheckpointError": "refimpl.errors",
    "CheckpointNotFoundError": "refimpl.errors",
    "InputError": "refimpl.errors",
    "InputTypeError": "refimpl.errors",
    "TokenizerError": "refimpl.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'refimpl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
