"""``fill-mask``: the most probable tokens at each mask token, as transformers 4.57.6's FillMaskPipeline.

For one input with M mask tokens (positions m_1..m_M), vocabulary V:

    p_i = softmax(logits[0, m_i, :])              # [V] per mask (restricted to ``targets`` if given)
    the top_k (default 5) of p_i, largest first; each as
    {"score": p, "token": id, "token_str": decode([id]), "sequence": decode(ids with m_i := id)}

``sequence`` is decoded without padding tokens, and without special tokens when M == 1 (with them when
M > 1, as transformers does). One mask -> a list of dicts; several -> a list (per mask) of lists.
A list of one input gives that input's result (transformers' quirk), longer lists a list of results.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, check_text, host, softmax, top_k_indices


class FillMaskPipeline(Pipeline):
    """``pipeline("fill-mask", model=...)``. Options: ``top_k`` (default 5), ``targets`` (a str or list of
    str: score only these tokens; one not in the vocabulary is replaced by its first token, as
    transformers does), ``tokenizer_kwargs`` (a dict passed to the tokenizer)."""

    task = "fill-mask"

    def __init__(self, model, tokenizer, task=None, **kwargs):
        if tokenizer.mask_token_id is None:
            raise InputError("the fill-mask pipeline needs a tokenizer with a mask token; this one defines none")
        super().__init__(model, tokenizer, task, **kwargs)

    def _sanitize(self, top_k=None, targets=None, tokenizer_kwargs=None, **kwargs):
        if kwargs:
            raise self._unknown(kwargs, ["top_k", "targets", "tokenizer_kwargs"])
        pre = {} if tokenizer_kwargs is None else {"tokenizer_kwargs": dict(tokenizer_kwargs)}
        post = {}
        if targets is not None:
            post["target_ids"] = self._target_ids(targets)
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise InputError(f"top_k={top_k!r}: give an integer >= 1")
            post["top_k"] = top_k
        return pre, {}, post

    def _target_ids(self, targets):
        if isinstance(targets, str):
            targets = [targets]
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            check_text(target, "targets")
            index = vocab.get(target)
            if index is None:  # transformers: the target's first token, with a warning
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    continue
                index = pieces[0]
            ids.append(int(index))
        ids = sorted(set(ids))
        if not ids:
            raise InputError(f"targets={targets!r}: none of them gives a token; give at least one")
        return np.array(ids)

    def __call__(self, inputs, **kwargs):
        outputs = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return outputs[0]
        return outputs

    def preprocess(self, item, tokenizer_kwargs=None):
        enc = self._encode(check_text(item, "fill-mask input"), **(tokenizer_kwargs or {}))
        if not (enc["input_ids"] == self.tokenizer.mask_token_id).any():
            raise InputError(f"No mask_token ({self.tokenizer.mask_token}) found on the input {item!r:.80}; "
                             f"put {self.tokenizer.mask_token} where a token should be predicted")
        return enc

    def _forward(self, enc):
        return {"logits": self.model(**self._model_inputs(enc)).logits, "input_ids": enc["input_ids"]}

    def postprocess(self, outputs, top_k=5, target_ids=None):
        if target_ids is not None and target_ids.shape[0] < top_k:
            top_k = target_ids.shape[0]
        input_ids = outputs["input_ids"][0]  # [S]
        masked = np.nonzero(input_ids == self.tokenizer.mask_token_id)[0]  # [M]
        probs = softmax(host(outputs["logits"])[0, masked, :])  # [M, V]
        if target_ids is not None:
            probs = probs[..., target_ids]
        if top_k > probs.shape[-1]:
            raise InputError(f"top_k={top_k} is larger than the {probs.shape[-1]} candidate tokens; give at most that")
        single = len(masked) == 1
        result = []
        for i in range(len(masked)):
            row = []
            for j in top_k_indices(probs[i], top_k):
                token = int(j if target_ids is None else target_ids[j])
                ids = input_ids.copy()
                ids[masked[i]] = token
                ids = ids[ids != self.tokenizer.pad_token_id]
                row.append({"score": float(probs[i, j]), "token": token,
                            "token_str": self.tokenizer.decode([token]),
                            "sequence": self.tokenizer.decode(ids, skip_special_tokens=single)})
            result.append(row)
        return result[0] if single else result
