"""``token-classification`` (alias ``ner``), as transformers 4.57.6's TokenClassificationPipeline.

Per token (special tokens skipped): scores = softmax(logits[0, t]) over the labels; the token's text span
is its offsets (start, end) in the input. A token is a *subword* when its vocabulary string is not as long
as its span (``"##ing"`` vs ``"ing"``: the WordPiece continuation prefix), except the unknown token, whose
word is its span's text.

``aggregation_strategy``:
* ``none`` (default): every token whose best label is not ignored: {entity, score, index, word, start, end}.
* ``simple``: those per-token entities grouped — adjacent tokens with the same tag (B-X starts a group,
  I-X or X continues one) -> {entity_group, score = mean of the token scores, word = the tokens joined
  by the tokenizer's decoder, start, end}.
* ``first`` / ``average`` / ``max``: first each *word* (a token and the subwords after it) gets one label:
  the first token's, the best of the averaged scores, or the token with the highest score's; then grouped
  as ``simple``.
``ignore_labels`` (default ["O"]) are dropped before the output (after grouping).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, check_text, host, label_of, softmax

STRATEGIES = ("none", "simple", "first", "average", "max")


def tokens_to_string(tokenizer, tokens):
    """transformers' ``convert_tokens_to_string``: the fast tokenizer's WordPiece decoder on token strings
    (continuation prefix removed, others joined by a space, per-token cleanup), or the slow tokenizer's."""
    if getattr(tokenizer, "flavour", "fast") != "fast" or not hasattr(tokenizer, "wordpiece_prefix"):
        return tokenizer.convert_tokens_to_string(tokens)
    from ..tokenizers.bert import _rust_wordpiece_cleanup

    prefix = tokenizer.wordpiece_prefix
    out = []
    for i, token in enumerate(tokens):
        if i:
            token = token.replace(prefix, "", 1) if token.startswith(prefix) else " " + token
        out.append(_rust_wordpiece_cleanup(token) if getattr(tokenizer, "decoder_cleanup", True) else token)
    return "".join(out)


class TokenClassificationPipeline(Pipeline):
    """``pipeline("token-classification", model=...)``. Options: ``aggregation_strategy`` (one of
    STRATEGIES), ``ignore_labels`` (default ["O"]), and the legacy ``grouped_entities`` /
    ``ignore_subwords`` (mapped to a strategy as transformers does)."""

    task = "token-classification"

    def _sanitize(self, ignore_labels=None, grouped_entities=None, ignore_subwords=None,
                  aggregation_strategy=None, **kwargs):
        if kwargs:
            raise self._unknown(kwargs, ["aggregation_strategy", "ignore_labels", "grouped_entities",
                                         "ignore_subwords"])  # is_split_into_words, stride, offset_mapping: not yet
        post = {}
        if grouped_entities is not None or ignore_subwords is not None:
            if grouped_entities and ignore_subwords:
                aggregation_strategy = "first"
            elif grouped_entities and not ignore_subwords:
                aggregation_strategy = "simple"
            else:
                aggregation_strategy = "none"
        if aggregation_strategy is not None:
            name = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if name not in STRATEGIES:
                raise InputError(f"aggregation_strategy={aggregation_strategy!r}: choose one of {list(STRATEGIES)}")
            if name in ("first", "average", "max") and not self._is_fast():
                raise InputError('Slow tokenizers cannot handle subwords. Please set the `aggregation_strategy` '
                                 'option to `"simple"` or use a fast tokenizer (refimpl.BertTokenizer).')
            post["aggregation_strategy"] = name
        if ignore_labels is not None:
            if isinstance(ignore_labels, str) or not all(isinstance(x, str) for x in ignore_labels):
                raise InputError(f"ignore_labels={ignore_labels!r}: give a list of label names")
            post["ignore_labels"] = list(ignore_labels)
        return {}, {}, post

    def _is_fast(self):
        return getattr(self.tokenizer, "flavour", "fast") == "fast" and getattr(self.tokenizer, "supports_offsets", True)

    def preprocess(self, sentence):
        check_text(sentence, "token-classification input")
        limit = self.tokenizer.model_max_length
        fast = self._is_fast()
        enc = self._encode(sentence, truncation=bool(limit and limit > 0), return_special_tokens_mask=True,
                           return_offsets_mapping=fast)
        enc["sentence"] = sentence
        return enc

    def _forward(self, enc):
        return {"logits": self.model(**self._model_inputs(enc)).logits, **enc}

    def postprocess(self, outputs, aggregation_strategy="none", ignore_labels=None):
        ignore = ["O"] if ignore_labels is None else ignore_labels
        scores = softmax(host(outputs["logits"])[0])  # [S, num_labels]
        offsets = outputs["offset_mapping"][0] if "offset_mapping" in outputs else None
        pre = self.gather_pre_entities(outputs["sentence"], outputs["input_ids"][0], scores, offsets,
                                       outputs["special_tokens_mask"][0])
        grouped = self.aggregate(pre, aggregation_strategy)
        kept = [e for e in grouped if e.get("entity") not in ignore and e.get("entity_group") not in ignore]
        return [{**e, "score": float(e["score"])} for e in kept]  # numpy scalars -> float (transformers: np.float32)

    def gather_pre_entities(self, sentence, input_ids, scores, offsets, special_tokens_mask):
        wordpiece = hasattr(self.tokenizer, "wordpiece_prefix")
        pre = []
        for idx, token_scores in enumerate(scores):
            if special_tokens_mask[idx]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(input_ids[idx]))
            if offsets is not None:
                start, end = int(offsets[idx][0]), int(offsets[idx][1])
                word_ref = sentence[start:end]
                if wordpiece:
                    is_subword = len(word) != len(word_ref)
                else:  # transformers' fallback heuristic for tokenizers without a continuation prefix
                    is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
                if int(input_ids[idx]) == self.tokenizer.unk_token_id:
                    word, is_subword = word_ref, False
            else:
                start = end = None
                is_subword = False
            pre.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": idx,
                        "is_subword": is_subword})
        return pre

    def _entity(self, scores):
        best = int(scores.argmax())
        return label_of(self.model.config, best), scores[best]

    def aggregate(self, pre, strategy):
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                label, score = self._entity(p["scores"])
                entities.append({"entity": label, "score": score, "index": p["index"], "word": p["word"],
                                 "start": p["start"], "end": p["end"]})
        else:
            entities = self.aggregate_words(pre, strategy)
        return entities if strategy == "none" else self.group_entities(entities)

    def aggregate_word(self, tokens, strategy):
        word = tokens_to_string(self.tokenizer, [t["word"] for t in tokens])
        if strategy == "first":
            label, score = self._entity(tokens[0]["scores"])
        elif strategy == "max":
            label, score = self._entity(max(tokens, key=lambda t: t["scores"].max())["scores"])
        else:  # average
            label, score = self._entity(np.nanmean(np.stack([t["scores"] for t in tokens]), axis=0))
        return {"entity": label, "score": score, "word": word, "start": tokens[0]["start"],
                "end": tokens[-1]["end"]}

    def aggregate_words(self, pre, strategy):
        words, group = [], None
        for p in pre:
            if group is None:
                group = [p]
            elif p["is_subword"]:
                group.append(p)
            else:
                words.append(self.aggregate_word(group, strategy))
                group = [p]
        if group is not None:
            words.append(self.aggregate_word(group, strategy))
        return words

    @staticmethod
    def get_tag(name):
        if name.startswith("B-"):
            return "B", name[2:]
        if name.startswith("I-"):
            return "I", name[2:]
        return "I", name  # no B-/I- prefix: a continuation of the same tag

    def group_sub_entities(self, entities):
        return {"entity_group": entities[0]["entity"].split("-", 1)[-1],
                "score": np.nanmean([e["score"] for e in entities]),
                "word": tokens_to_string(self.tokenizer, [e["word"] for e in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def group_entities(self, entities):
        groups, current = [], []
        for entity in entities:
            if not current:
                current.append(entity)
                continue
            bi, tag = self.get_tag(entity["entity"])
            _, last_tag = self.get_tag(current[-1]["entity"])
            if tag == last_tag and bi != "B":
                current.append(entity)
            else:
                groups.append(self.group_sub_entities(current))
                current = [entity]
        if current:
            groups.append(self.group_sub_entities(current))
        return groups
