"""``refimpl.pipeline(task, model=...)``: transformers' pipelines — task names, call conventions, outputs.

    import refimpl
    fill = refimpl.pipeline("fill-mask", model="path/to/bert-checkpoint")
    fill("Paris is the [MASK] of France.", top_k=3)   # [{"score", "token", "token_str", "sequence"}, ...]
    sim = refimpl.pipeline("sentence-similarity", model="all-MiniLM-L6-v2")
    sim("A man is eating food.", ["A man eats bread.", "The stock market fell."])

Tasks (aliases as in transformers): feature-extraction, sentence-similarity (refimpl's: sentence
embeddings with a sentence-transformers checkpoint's declared pooling), fill-mask, text-classification
(sentiment-analysis), token-classification (ner), question-answering, text2text-generation. Each task's
module documents its computation and where refimpl stands against transformers 4.57.6. Scores are Python
floats (transformers gives numpy float32 in token-classification); inputs run one at a time, as
transformers' pipelines do at their default batch size of 1.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, InputTypeError
from ..registry import model_directory
from .base import Pipeline, load_model, model_source_directory

ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# task -> (module, class, {model_type: refimpl class}, default model or None)
TASKS = {
    "feature-extraction": ("features", "FeatureExtractionPipeline",
                           {"bert": "BertModel", "roberta": "RobertaModel", "bert-generation": "BertGenerationEncoder"},
                           "all-MiniLM-L6-v2"),
    "sentence-similarity": ("features", "SentenceSimilarityPipeline",
                            {"bert": "BertModel", "roberta": "RobertaModel"}, "all-MiniLM-L6-v2"),
    "fill-mask": ("fill_mask", "FillMaskPipeline", {"bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM"}, None),
    "text-classification": ("text_classification", "TextClassificationPipeline",
                            {"bert": "BertForSequenceClassification"}, None),
    "token-classification": ("token_classification", "TokenClassificationPipeline",
                             {"bert": "BertForTokenClassification"}, None),
    "question-answering": ("question_answering", "QuestionAnsweringPipeline",
                           {"bert": "BertForQuestionAnswering"}, None),
    "text2text-generation": ("text2text", "Text2TextGenerationPipeline",
                             {"encoder-decoder": "EncoderDecoderModel"}, None),
}


def task_names():
    """Every accepted task name, aliases included."""
    return sorted(TASKS) + sorted(ALIASES)


def resolve_task(task):
    if not isinstance(task, str):
        raise InputTypeError(f"task must be a str, got {type(task).__name__} {task!r:.80}")
    name = ALIASES.get(task, task)
    if name not in TASKS:
        raise InputError(f"unknown task {task!r}; refimpl has {', '.join(task_names())}")
    return name


def pipeline(task, model=None, tokenizer=None, dtype="float32", backend="numpy", kernels=None, **kwargs):
    """A pipeline for ``task`` (transformers' names and aliases).

    model: a checkpoint directory, a registered name (``refimpl.registry``: all-MiniLM-L6-v2), or a loaded
    refimpl model (then ``tokenizer`` is loaded from the model's directory when it is known). Without a
    model, feature-extraction and sentence-similarity use all-MiniLM-L6-v2; the other tasks need one.
    tokenizer: a refimpl tokenizer or a directory (default: the model's directory, ``AutoTokenizer``).
    dtype / backend / kernels: how the model is loaded (see ``from_pretrained``); refused with a loaded model.
    kwargs: the task's options, the defaults of every call (each pipeline class documents its own).
    """
    import importlib

    from ..tokenizers import AutoTokenizer

    name = resolve_task(task)
    module, class_name, classes, default = TASKS[name]
    directory = None
    if model is None:
        if default is None:
            raise InputError(f"the {name} pipeline needs model=: a checkpoint directory with a {name} head "
                             "(refimpl has no hub to pick a default from)")
        model = default
    if isinstance(model, (str, Path)):
        directory = model_directory(model)
        model = load_model(directory, classes, name, dtype, backend, kernels)
    else:
        if not hasattr(model, "config") or not hasattr(model, "forward"):
            raise InputTypeError(f"model must be a checkpoint directory, a registered name or a refimpl model, "
                                 f"got {type(model).__name__}")
        if type(model).__name__ not in classes.values():
            raise InputError(f"the {name} pipeline runs {sorted(set(classes.values()))}, not {type(model).__name__}")
        if dtype != "float32" or backend != "numpy" or kernels is not None:
            raise InputError("dtype=, backend= and kernels= choose how a checkpoint is loaded; this model is "
                             "loaded already (load it with them instead)")
        directory = model_source_directory(model)
    if tokenizer is None:
        if directory is None:
            raise InputError(f"tokenizer= is needed: the directory {type(model).__name__} was loaded from is "
                             "not known")
        tokenizer = AutoTokenizer.from_pretrained(directory)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), class_name)
    if name == "sentence-similarity":
        from .features import read_sentence_transformers

        kwargs.setdefault("declared", read_sentence_transformers(directory) if directory is not None else None)
    return cls(model, tokenizer, task=name, **kwargs)


__all__ = ["ALIASES", "TASKS", "Pipeline", "pipeline", "resolve_task", "task_names"]
