"""What every pipeline shares: loading a model for a task, its tokenizer, and transformers' call pattern.

transformers' ``Pipeline`` splits a call into ``_sanitize_parameters`` (keyword arguments -> preprocess /
forward / postprocess parameters), then ``preprocess -> _forward -> postprocess`` per input, a list
input being run item by item (batch size 1). refimpl keeps that split: options given to ``pipeline(...)``
are the defaults, options given to a call override them for that call. An option a pipeline does not
know is an error (:class:`refimpl.errors.InputError`), never ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, InputTypeError


class Pipeline:
    """Base class: ``model``, ``tokenizer``, ``task`` and the defaults given at construction."""

    task = ""

    def __init__(self, model, tokenizer, task=None, **kwargs):
        self.model = model
        self.tokenizer = tokenizer
        self.task = task or self.task
        self._defaults = self._sanitize(**kwargs)  # (preprocess, forward, postprocess) option dicts

    # -- to override ---------------------------------------------------------------------------------
    def _sanitize(self, **kwargs):
        """Keyword options -> (preprocess, forward, postprocess) dicts; unknown options are an error."""
        if kwargs:
            raise self._unknown(kwargs, [])
        return {}, {}, {}

    def preprocess(self, item, **params):
        raise NotImplementedError

    def _forward(self, model_inputs, **params):
        raise NotImplementedError

    def postprocess(self, model_outputs, **params):
        raise NotImplementedError

    # -- transformers' call pattern --------------------------------------------------------------------
    def _params(self, kwargs):
        pre, fwd, post = self._sanitize(**kwargs)
        d_pre, d_fwd, d_post = self._defaults
        return {**d_pre, **pre}, {**d_fwd, **fwd}, {**d_post, **post}

    def run_single(self, item, pre, fwd, post):
        return self.postprocess(self._forward(self.preprocess(item, **pre), **fwd), **post)

    def __call__(self, inputs, **kwargs):
        """One input -> its result; a list of inputs -> the list of their results (each run on its own)."""
        pre, fwd, post = self._params(kwargs)
        if isinstance(inputs, list):
            return [self.run_single(item, pre, fwd, post) for item in inputs]
        return self.run_single(inputs, pre, fwd, post)

    # -- helpers -----------------------------------------------------------------------------------------
    def _unknown(self, kwargs, known):
        return InputError(
            f"{self.task} pipeline: unknown option(s) {sorted(kwargs)}; it takes {sorted(known)} "
            "(transformers' names; see the pipeline's docstring)"
        )

    def _encode(self, text, **kwargs):
        """The tokenizer's numpy encoding of one text (or pair)."""
        return self.tokenizer(text, return_tensors="np", **kwargs)

    def _model_inputs(self, enc):
        """The keys of a tokenizer encoding that the model's forward takes (transformers passes them all)."""
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def __repr__(self):
        return f"<refimpl {type(self).__name__} task={self.task!r} model={type(self.model).__name__}>"


def host(array):
    """A model output array as a numpy array on the host."""
    from ..backend import to_host

    return np.asarray(to_host(array))


def check_text(value, what):
    if not isinstance(value, str):
        raise InputTypeError(
            f"{what} must be a str (or a list of str), got {type(value).__name__} {value!r:.80}"
        )
    return value


def label_of(config, index):
    """``config.id2label[index]`` (transformers' labels); ``LABEL_{index}`` where a config has none."""
    id2label = getattr(config, "id2label", None)
    if id2label is None:
        return f"LABEL_{index}"
    index = int(index)
    if index in id2label:
        return id2label[index]
    if str(index) in id2label:
        return id2label[str(index)]
    raise ConfigError(f"config.id2label has no label for class {index} (it has {sorted(id2label)}); "
                      "fix id2label in config.json")


def softmax(x, axis=-1):
    """transformers' pipelines' numpy softmax: exp(x - max) / sum, in x's dtype."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def top_k_indices(values, k):
    """Indices of the k largest values, largest first (torch.topk's order for distinct values)."""
    order = np.argsort(-values, kind="stable")
    return order[:k]


# -- which class a task loads, by the checkpoint's model_type ------------------------------------------

def load_model(directory, classes: dict, task: str, dtype, backend, kernels):
    """``classes[model_type].from_pretrained(directory, ...)`` for the checkpoint's model_type."""
    import refimpl
    from ..config import read_config_json

    kind = read_config_json(directory).get("model_type", "bert")
    if kind not in classes:
        raise ConfigError(
            f"the {task} pipeline needs a model_type in {sorted(classes)}; {str(directory)!r} has model_type "
            f"{kind!r} (config.json)"
        )
    cls = getattr(refimpl, classes[kind])
    return cls.from_pretrained(directory, dtype=dtype, backend=backend, kernels=kernels)


def model_source_directory(model):
    """The directory a loaded refimpl model came from, when it is known."""
    for attr in ("name_or_path", "_name_or_path"):
        value = getattr(model, attr, None) or getattr(getattr(model, "config", None), attr, None)
        if value and Path(value).is_dir():
            return Path(value)
    gc = getattr(model, "generation_config_path", None)
    if gc is not None and Path(gc).parent.is_dir():
        return Path(gc).parent
    return None
