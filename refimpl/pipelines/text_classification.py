"""``text-classification`` (alias ``sentiment-analysis``), as transformers 4.57.6's TextClassificationPipeline.

scores = f(logits[0])   # [num_labels], f by ``function_to_apply``; transformers' default rule:
    problem_type "regression" -> none; "multi_label_classification" or num_labels == 1 -> sigmoid;
    "single_label_classification" or num_labels > 1 -> softmax.

Output, transformers' shapes (they depend on whether ``top_k`` was given to the call):
* no ``top_k`` in the call (legacy): {"label", "score"} of the best class — one input as ``[dict]``, a list
  of inputs as a list of dicts; with ``return_all_scores=True`` every class in label order instead.
* ``top_k=k`` (or None for all) in the call: the k best as a list of dicts, best first (a list of such
  lists for a list of inputs).
Labels are ``config.id2label``. Inputs: a str, a {"text", "text_pair"} dict, or a list of them.
"""

from __future__ import annotations

from ..errors import InputError
from .base import Pipeline, check_text, host, label_of, sigmoid, softmax

FUNCTIONS = ("none", "sigmoid", "softmax")
_UNSET = ""  # transformers' sentinel for "top_k not given"


class TextClassificationPipeline(Pipeline):
    """``pipeline("text-classification", model=...)``. Options: ``top_k`` (int or None = all),
    ``function_to_apply`` ("none", "sigmoid", "softmax"), ``return_all_scores`` (legacy), and tokenizer
    options (``truncation``, ``max_length``, ``padding``) passed to the tokenizer."""

    task = "text-classification"

    def _sanitize(self, return_all_scores=None, function_to_apply=None, top_k=_UNSET, **tokenizer_kwargs):
        known = {"truncation", "max_length", "padding"}
        if set(tokenizer_kwargs) - known:
            raise self._unknown({k: v for k, v in tokenizer_kwargs.items() if k not in known},
                                ["top_k", "function_to_apply", "return_all_scores", *known])
        post = {}
        if top_k is None or (isinstance(top_k, int) and not isinstance(top_k, bool)):
            if top_k is not None and top_k < 1:
                raise InputError(f"top_k={top_k}: give an integer >= 1, or None for every label")
            post["top_k"] = top_k
            post["_legacy"] = False
        elif top_k != _UNSET:
            raise InputError(f"top_k={top_k!r}: give an integer >= 1, or None for every label")
        elif return_all_scores is not None:
            post["top_k"] = None if return_all_scores else 1
        if function_to_apply is not None:
            name = str(function_to_apply).lower()
            if name not in FUNCTIONS:
                raise InputError(f"function_to_apply={function_to_apply!r}: choose one of {list(FUNCTIONS)}")
            post["function_to_apply"] = name
        return dict(tokenizer_kwargs), {}, post

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]
        return result

    def preprocess(self, item, **tokenizer_kwargs):
        if isinstance(item, dict):
            if not set(item) <= {"text", "text_pair"} or "text" not in item:
                raise InputError(f"a text-classification input dict takes 'text' and optionally 'text_pair', "
                                 f"got keys {sorted(item)}")
            return self._encode(check_text(item["text"], "text"), text_pair=item.get("text_pair"), **tokenizer_kwargs)
        if isinstance(item, list) and len(item) == 1 and isinstance(item[0], list) and len(item[0]) == 2:
            return self._encode(item[0][0], text_pair=item[0][1], **tokenizer_kwargs)
        if isinstance(item, list):
            raise InputError('The pipeline received invalid inputs, if you are trying to send text pairs, you can '
                             'try to send a dictionary `{"text": "My text", "text_pair": "My pair"}` in order to '
                             'send a text pair.')
        return self._encode(check_text(item, "text-classification input"), **tokenizer_kwargs)

    def _forward(self, enc):
        return self.model(**self._model_inputs(enc)).logits

    def default_function(self):
        cfg = self.model.config
        problem = getattr(cfg, "problem_type", None)
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or cfg.num_labels == 1:
            return "sigmoid"
        if problem == "single_label_classification" or cfg.num_labels > 1:
            return "softmax"
        return getattr(cfg, "function_to_apply", None) or "none"

    def postprocess(self, logits, function_to_apply=None, top_k=1, _legacy=True):
        function_to_apply = function_to_apply or self.default_function()
        outputs = host(logits)[0]  # [num_labels]
        scores = {"sigmoid": sigmoid, "softmax": softmax, "none": lambda x: x}[function_to_apply](outputs)
        if top_k == 1 and _legacy:
            return {"label": label_of(self.model.config, scores.argmax()), "score": float(scores.max())}
        ranked = [{"label": label_of(self.model.config, i), "score": float(s)} for i, s in enumerate(scores)]
        if not _legacy:
            ranked.sort(key=lambda x: x["score"], reverse=True)
            if top_k is not None:
                ranked = ranked[:top_k]
        return ranked
