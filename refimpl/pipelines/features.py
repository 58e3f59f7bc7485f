"""``feature-extraction`` (transformers' pipeline) and ``sentence-similarity`` (sentence embeddings with the
pooling a sentence-transformers checkpoint declares).

Dimensions: S tokens of one input, D hidden size, B inputs.

transformers has no sentence-embedding pipeline; the recipe here is sentence-transformers' for a
checkpoint whose ``modules.json`` lists ``Transformer -> Pooling [-> Normalize]``:

* tokenize the batch with ``padding=True, truncation=True, max_length=max_seq_length``
  (``sentence_bert_config.json``; else the tokenizer's limit), run the base model;
* ``1_Pooling/config.json`` names the pooled vectors, concatenated in this order:
  ``cls`` = the first token's hidden state; ``max`` = the per-dimension max over real tokens (padding set
  to -1e9 first); ``mean`` = sum over real tokens / max(count, 1e-9); ``mean_sqrt_len_tokens`` = that sum
  / sqrt(count);
* a ``Normalize`` module divides each embedding by max(||e||_2, 1e-12).

A checkpoint without ``modules.json`` gets mean pooling and no normalization, as sentence-transformers
gives it (it logs "Creating a new one with mean pooling"); ``pooling=`` / ``normalize=`` override.
Other module types (``Dense``, ...) and pooling modes (``weightedmean``, ``lasttoken``) are refused by
name rather than skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .base import Pipeline, check_text, host
from ..checkpoint import parse_json_text

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")  # sentence-transformers' concatenation order
_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
}
_UNSUPPORTED_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


class FeatureExtractionPipeline(Pipeline):
    """``pipeline("feature-extraction", model=...)``: the base model's last hidden state per input, as
    transformers returns it — nested lists [1, S, D] per input (``return_tensors=True``: a numpy array).

    Options: ``truncation``, ``tokenize_kwargs`` (a dict passed to the tokenizer), ``return_tensors``.
    """

    task = "feature-extraction"

    def _sanitize(self, truncation=None, tokenize_kwargs=None, return_tensors=None, **kwargs):
        if kwargs:
            raise self._unknown(kwargs, ["truncation", "tokenize_kwargs", "return_tensors"])
        pre = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in pre:
                raise InputError("truncation given twice (as an option and in tokenize_kwargs): give it once")
            pre["truncation"] = truncation
        post = {} if return_tensors is None else {"return_tensors": return_tensors}
        return pre, {}, post

    def __call__(self, inputs, **kwargs):
        """One text -> [1, S, D] nested lists; a list of texts -> a list of those."""
        return super().__call__(inputs, **kwargs)

    def preprocess(self, item, **tokenize_kwargs):
        return self._encode(check_text(item, "feature-extraction input"), **tokenize_kwargs)

    def _forward(self, enc):
        out = self.model(**self._model_inputs(enc))
        return out[0]  # the first output: last_hidden_state (a head model's logits)

    def postprocess(self, first, return_tensors=False):
        first = host(first)
        return first if return_tensors else first.tolist()


def read_sentence_transformers(directory):
    """(pooling modes, normalize, max_seq_length) that ``directory``'s sentence-transformers files declare,
    or None when it has no ``modules.json``."""
    directory = Path(directory)
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return None
    modules = _json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise ConfigError(f"{modules_file} must hold a JSON list of module objects; re-export the checkpoint")
    modes, normalize = None, False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Transformer":
            continue
        if kind == "Pooling":
            from ..checkpoint import inside_directory

            if not isinstance(module.get("path", ""), str):
                raise ConfigError(f"{modules_file}: the Pooling module's path {module.get('path')!r} must be a str")
            folder = inside_directory(directory, module.get("path") or ".", str(modules_file))
            pooling = _json(folder / "config.json")
            if not isinstance(pooling, dict):
                raise ConfigError(f"{folder / 'config.json'} must hold a JSON object of pooling options")
            for key in _UNSUPPORTED_POOLING:
                if pooling.get(key):
                    raise ConfigError(f"{key} in {directory / module['path'] / 'config.json'} is not supported; "
                                      f"refimpl pools with {list(POOLING_MODES)}")
            modes = [mode for key, mode in _POOLING_KEYS.items() if pooling.get(key)]
            modes.sort(key=POOLING_MODES.index)
            if not modes:
                raise ConfigError(f"{directory / module['path'] / 'config.json'} enables no pooling mode")
        elif kind == "Normalize":
            normalize = True
        else:
            raise ConfigError(
                f"sentence-transformers module {module.get('type')!r} in {modules_file} is not supported; "
                "refimpl runs Transformer -> Pooling [-> Normalize]"
            )
    if modes is None:
        raise ConfigError(f"{modules_file} has no Pooling module")
    max_seq_length = None
    if (directory / "sentence_bert_config.json").is_file():
        st_config = _json(directory / "sentence_bert_config.json")
        max_seq_length = st_config.get("max_seq_length") if isinstance(st_config, dict) else None
        if max_seq_length is not None and (isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int)
                                           or max_seq_length < 1):
            raise ConfigError(f"max_seq_length={max_seq_length!r} in {directory / 'sentence_bert_config.json'} must be "
                              "an integer >= 1 or null")
    return modes, normalize, max_seq_length


def _json(path):
    try:
        return parse_json_text(Path(path).read_text(encoding="utf-8"))  # deep nesting: a JSONDecodeError
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist (modules.json refers to it)") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON ({e.msg}); re-export the checkpoint") from None


def pool(hidden, mask, modes):
    """Sentence vectors [B, len(modes) * D] from hidden states [B, S, D] and the attention mask [B, S]."""
    m = mask[..., None].astype(hidden.dtype)  # [B, S, 1]
    vectors = []
    for mode in modes:
        if mode == "cls":
            vectors.append(hidden[:, 0])  # [B, D]
        elif mode == "max":
            vectors.append(np.where(m > 0, hidden, hidden.dtype.type(-1e9)).max(axis=1))  # [B, D]
        else:
            total = (hidden * m).sum(axis=1)  # [B, D]
            count = m.sum(axis=1)  # [B, 1]
            if mode == "mean":
                vectors.append(total / np.maximum(count, hidden.dtype.type(1e-9)))
            else:  # mean_sqrt_len_tokens
                vectors.append(total / np.sqrt(count))
    return np.concatenate(vectors, axis=1)


def l2_normalize(x):
    """x / max(||x||_2, 1e-12) per row (torch.nn.functional.normalize)."""
    norm = np.sqrt((x * x).sum(axis=1, keepdims=True))
    return x / np.maximum(norm, x.dtype.type(1e-12))


class SentenceSimilarityPipeline(Pipeline):
    """``pipeline("sentence-similarity", model="all-MiniLM-L6-v2")``: sentence embeddings with the declared
    pooling, and cosine similarities.

        sim = refimpl.pipeline("sentence-similarity", model="all-MiniLM-L6-v2")
        sim("A man is eating food.", ["A man eats bread.", "The stock market fell."])   # [0.7..., 0.0...]
        sim({"source_sentence": "...", "sentences": ["...", "..."]})   # the hub widget's input form
        sim.encode(["a sentence", "another"])                          # numpy [B, D]

    Options (construction only): ``pooling`` (a mode of POOLING_MODES or a list of them), ``normalize``
    (bool), ``max_seq_length``; by default what the checkpoint declares (see the module docstring).
    """

    task = "sentence-similarity"

    def __init__(self, model, tokenizer, task=None, pooling=None, normalize=None, max_seq_length=None,
                 declared=None, **kwargs):
        super().__init__(model, tokenizer, task, **kwargs)
        modes, norm, length = declared if declared is not None else (["mean"], False, None)
        if pooling is not None:
            modes = [pooling] if isinstance(pooling, str) else list(pooling)
            bad = [p for p in modes if p not in POOLING_MODES]
            if bad or not modes:
                raise InputError(f"pooling={pooling!r}: give one or more of {list(POOLING_MODES)}")
            modes.sort(key=POOLING_MODES.index)
        self.pooling = modes
        self.normalize = norm if normalize is None else bool(normalize)
        limit = getattr(tokenizer, "model_max_length", None)
        self.max_seq_length = max_seq_length if max_seq_length is not None else length
        if self.max_seq_length is None and limit is not None and limit < 10**6:
            self.max_seq_length = limit
        if self.max_seq_length is not None and (isinstance(self.max_seq_length, bool)
                                                or not isinstance(self.max_seq_length, int)
                                                or self.max_seq_length < 2):
            raise InputError(f"max_seq_length={self.max_seq_length!r}: give an integer >= 2")

    def encode(self, sentences):
        """Embeddings [B, D'] (numpy, the model's dtype) of a list of sentences (one str -> [D'])."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not texts:
            raise InputError("encode() needs at least one sentence")
        for i, t in enumerate(texts):
            check_text(t, f"sentences[{i}]")
        kw = {"padding": True, "truncation": self.max_seq_length is not None}
        if self.max_seq_length is not None:
            kw["max_length"] = self.max_seq_length
        enc = self.tokenizer(texts, return_tensors="np", **kw)
        hidden = host(self.model(**self._model_inputs(enc)).last_hidden_state)  # [B, S, D]
        emb = pool(hidden, enc["attention_mask"], self.pooling)  # [B, D']
        if self.normalize:
            emb = l2_normalize(emb)
        return emb[0] if single else emb

    def __call__(self, source_sentence=None, sentences=None, **kwargs):
        """Cosine similarity of ``source_sentence`` with each of ``sentences``: a list of floats."""
        if kwargs:
            raise self._unknown(kwargs, ["source_sentence", "sentences"])
        if isinstance(source_sentence, dict):
            if sentences is not None or set(source_sentence) != {"source_sentence", "sentences"}:
                raise InputError("give {'source_sentence': str, 'sentences': [str, ...]} alone")
            source_sentence, sentences = source_sentence["source_sentence"], source_sentence["sentences"]
        check_text(source_sentence, "source_sentence")
        if isinstance(sentences, str):
            sentences = [sentences]
        if not isinstance(sentences, (list, tuple)) or not sentences:
            raise InputError(f"sentences must be a non-empty list of str, got {sentences!r:.80}")
        emb = self.encode([source_sentence, *sentences]).astype(np.float64)
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return [float(v) for v in emb[1:] @ emb[0]]
