"""``question-answering``: extractive answers with transformers 4.57.6's span search (fast-tokenizer path).

Windows. The input is ``[CLS] question [SEP] context-window [SEP]`` with at most ``max_seq_len`` tokens
(default min(model_max_length, 384)). A context too long for one window is split as the Rust tokenizer's
``only_second`` truncation with ``stride=doc_stride`` (default min(max_seq_len // 2, 128)) splits it:
window length W = max_seq_len - len(question) - 3, windows start at 0, W - doc_stride, 2 (W - doc_stride),
... until one reaches the end of the context.

Span search, per window (S tokens): tokens outside the context (and padding) are masked to -10000 except
[CLS]; p_start = softmax(start_logits), p_end = softmax(end_logits); the null score is p_start[0] p_end[0]
(kept, minimised over windows, for ``handle_impossible_answer``), then p_start[0] = p_end[0] = 0;
score(s, e) = p_start[s] p_end[e] for s <= e < s + max_answer_len (default 15); the best
``top_k * 2 + 10`` spans (``top_k`` with align_to_words=False) with both ends in the context are kept.

Answers: a span's characters are, with ``align_to_words`` (default), from the start of the word holding its
first token to the end of the word holding its last token (a *word* as the tokenizer's pre-tokenizer
splits it: a WordPiece token and its ``##`` continuations, counted within the window); else the tokens'
own offsets. Spans giving the same text (case-insensitive) add their scores. The ``top_k`` best answers
``{"score", "start", "end", "answer"}``: one dict when one remains, else a list.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import Pipeline, check_text, host


def decode_spans(start, end, topk, max_answer_len, undesired_tokens):
    """transformers' ``decode_spans``: (starts, ends, scores) of the ``topk`` best spans, both ends in
    ``undesired_tokens.nonzero()`` (the allowed tokens). start, end: [1, S] probabilities."""
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))  # [1, S, S]
    candidates = np.tril(np.triu(outer), max_answer_len - 1)  # s <= e < s + max_answer_len
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    allowed = undesired_tokens.nonzero()
    desired = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[desired], ends[desired]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(start, end, p_mask, attention_mask, min_null_score=1000000, top_k=1,
                       handle_impossible_answer=False, max_answer_len=15):
    """transformers' ``select_starts_ends``: normalise the logits [1, S] over the allowed tokens, then
    :func:`decode_spans`. Returns (starts, ends, scores, min_null_score)."""
    undesired_tokens = np.abs(np.array(p_mask) - 1)  # 1 = may be in the answer
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


def window_ranges(n, length, stride):
    """The Rust tokenizer's overflow windows of n tokens: [(start, stop)], each ``length`` long (the last may
    be shorter), consecutive ones overlapping by ``stride`` tokens."""
    if n <= length:
        return [(0, n)]
    step = length - stride
    ranges = []
    for start in range(0, n, step):
        stop = min(start + length, n)
        ranges.append((start, stop))
        if stop == n:
            break
    return ranges


def _word_ids(tokens, prefix):
    """Word index of each token of one sequence: a new word unless the token continues one (``##``)."""
    ids, word = [], -1
    for token in tokens:
        if not (token.startswith(prefix) and word >= 0):
            word += 1
        ids.append(word)
    return ids


class QuestionAnsweringPipeline(Pipeline):
    """``pipeline("question-answering", model=...)``; call as ``qa(question=..., context=...)`` (str or lists),
    ``qa({"question": ..., "context": ...})``, a list of such dicts, or ``qa(question, context)``.

    Options: ``top_k`` (1), ``max_answer_len`` (15), ``handle_impossible_answer`` (False),
    ``align_to_words`` (True), ``doc_stride``, ``max_seq_len``, ``padding`` ("do_not_pad", "longest",
    "max_length"). transformers' ``max_question_len`` does nothing with a fast tokenizer; refimpl refuses
    it instead of ignoring it.
    """

    task = "question-answering"

    def __init__(self, model, tokenizer, task=None, **kwargs):
        if getattr(tokenizer, "flavour", "fast") != "fast" or not hasattr(tokenizer, "wordpiece_prefix"):
            raise InputError(f"the question-answering pipeline needs refimpl.BertTokenizer (offsets and words), "
                             f"not {type(tokenizer).__name__}")
        if tokenizer.padding_side != "right":
            raise InputError(f"question-answering with padding_side={tokenizer.padding_side!r} (context first) is "
                             "not supported; load the tokenizer with padding_side='right'")
        super().__init__(model, tokenizer, task, **kwargs)

    def _sanitize(self, padding=None, top_k=None, doc_stride=None, max_answer_len=None, max_seq_len=None,
                  handle_impossible_answer=None, align_to_words=None, **kwargs):
        if kwargs:
            raise self._unknown(kwargs, ["top_k", "max_answer_len", "handle_impossible_answer", "align_to_words",
                                         "doc_stride", "max_seq_len", "padding", "question", "context"])
        pre, post = {}, {}
        if padding is not None:
            name = {True: "longest", False: "do_not_pad"}.get(padding, padding)
            if name not in ("do_not_pad", "longest", "max_length"):
                raise InputError(f"padding={padding!r}: choose 'do_not_pad', 'longest' or 'max_length'")
            pre["padding"] = name
        for key, value in (("doc_stride", doc_stride), ("max_seq_len", max_seq_len)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "doc_stride" else 1):
                    raise InputError(f"{key}={value!r}: give an integer >= {0 if key == 'doc_stride' else 1}")
                pre[key] = value
        if top_k is not None:
            if top_k < 1:
                raise InputError(f"top_k parameter should be >= 1 (got {top_k})")
            post["top_k"] = top_k
        if max_answer_len is not None:
            if max_answer_len < 1:
                raise InputError(f"max_answer_len parameter should be >= 1 (got {max_answer_len})")
            post["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            post["handle_impossible_answer"] = bool(handle_impossible_answer)
        if align_to_words is not None:
            post["align_to_words"] = bool(align_to_words)
        return pre, {}, post

    # -- inputs ------------------------------------------------------------------------------------------
    @staticmethod
    def _example(item):
        if not isinstance(item, dict):
            raise InputError(f"{item!r:.80} argument needs to be of type dict with keys question and context")
        for k in ("question", "context"):
            if k not in item:
                raise InputError("You need to provide a dictionary with keys {question:..., context:...}")
            if item[k] is None:
                raise InputError(f"`{k}` cannot be None")
            check_text(item[k], k)
            if len(item[k]) == 0:
                raise InputError(f"`{k}` cannot be empty")
        return {"question": item["question"], "context": item["context"]}

    def _examples(self, args, kwargs):
        """transformers' QuestionAnsweringArgumentHandler: the list of {question, context} examples."""
        question, context = kwargs.pop("question", None), kwargs.pop("context", None)
        if args:
            if len(args) == 1:
                inputs = args[0]
            elif len(args) == 2 and all(isinstance(a, str) for a in args):
                inputs = [{"question": args[0], "context": args[1]}]
            else:
                inputs = list(args)
        elif question is not None and context is not None:
            if isinstance(question, list) and isinstance(context, str):
                inputs = [{"question": q, "context": context} for q in question]
            elif isinstance(question, list) and isinstance(context, list):
                if len(question) != len(context):
                    raise InputError(f"Questions and contexts don't have the same lengths ({len(question)} "
                                     f"questions, {len(context)} contexts)")
                inputs = [{"question": q, "context": c} for q, c in zip(question, context)]
            elif isinstance(question, str) and isinstance(context, str):
                inputs = [{"question": question, "context": context}]
            else:
                raise InputError("Arguments can't be understood: give question= and context= as str or lists of str")
        else:
            raise InputError("Arguments can't be understood: give question= and context= (or dicts with both)")
        if isinstance(inputs, dict):
            inputs = [inputs]
        if not isinstance(inputs, list):
            raise InputError(f"Invalid arguments {inputs!r:.80}: give question= and context=")
        return [self._example(x) for x in inputs]

    def __call__(self, *args, **kwargs):
        examples = self._examples(args, kwargs)
        pre, fwd, post = self._params(kwargs)
        results = [self.run_single(x, pre, fwd, post) for x in examples]
        return results[0] if len(results) == 1 else results

    # -- the three steps ------------------------------------------------------------------------------------
    def preprocess(self, example, padding="do_not_pad", doc_stride=None, max_seq_len=None):
        tok = self.tokenizer
        if max_seq_len is None:
            max_seq_len = min(tok.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise InputError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        q = tok(example["question"], add_special_tokens=False, return_offsets_mapping=True)
        c = tok(example["context"], add_special_tokens=False, return_offsets_mapping=True)
        q_ids, c_ids, c_offsets = q["input_ids"], c["input_ids"], c["offset_mapping"]
        c_words = _word_ids(tok.convert_ids_to_tokens(c_ids), tok.wordpiece_prefix)
        n_special = tok.num_special_tokens_to_add(pair=True)
        length = len(c_ids)
        if len(q_ids) + length + n_special > max_seq_len:
            length = max_seq_len - len(q_ids) - n_special
            if length <= 0:  # the Rust tokenizer's SequenceTooShort
                raise InputError(f"the question is {len(q_ids)} tokens: with {n_special} special tokens it leaves "
                                 f"no room for the context in max_seq_len={max_seq_len}; raise max_seq_len or "
                                 "shorten the question")
            if doc_stride >= length:
                raise InputError(f"doc_stride={doc_stride} must be less than the context window of {length} tokens "
                                 f"(max_seq_len {max_seq_len} - question {len(q_ids)} - {n_special} special "
                                 "tokens): lower doc_stride or raise max_seq_len")
        windows = []
        for a, b in window_ranges(len(c_ids), length, doc_stride):
            # the template with markers: -1 question, -2 context, anything else a special token
            layout = tok.build_inputs_with_special_tokens([-1] * len(q_ids), [-2] * (b - a))
            ids = tok.build_inputs_with_special_tokens(q_ids, c_ids[a:b])
            types = tok.create_token_type_ids_from_sequences(q_ids, c_ids[a:b])
            seq = [0 if m == -1 else 1 if m == -2 else None for m in layout]
            ctx = iter(range(a, b))
            offsets, words = [], []
            for m in layout:
                if m == -2:
                    k = next(ctx)
                    offsets.append(tuple(c_offsets[k]))
                    words.append(c_words[k])
                else:
                    offsets.append((0, 0))
                    words.append(None)  # question words are never looked up (p_mask excludes them)
            windows.append({"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids),
                            "sequence_ids": seq, "offsets": offsets, "words": words})
        if padding != "do_not_pad":
            target = max_seq_len if padding == "max_length" else max(len(w["input_ids"]) for w in windows)
            for w in windows:
                extra = target - len(w["input_ids"])
                w["input_ids"] += [tok.pad_token_id] * extra
                w["token_type_ids"] += [tok.pad_token_type_id] * extra
                w["attention_mask"] += [0] * extra
                w["sequence_ids"] += [None] * extra
                w["offsets"] += [(0, 0)] * extra
                w["words"] += [None] * extra
        for w in windows:
            p_mask = [s != 1 for s in w["sequence_ids"]]
            for i, token in enumerate(w["input_ids"]):
                if tok.cls_token_id is not None and token == tok.cls_token_id:
                    p_mask[i] = False
            w["p_mask"] = np.array([p_mask])
        return {"example": example, "windows": windows}

    def _forward(self, inputs):
        for w in inputs["windows"]:
            out = self.model(input_ids=np.array([w["input_ids"]]), attention_mask=np.array([w["attention_mask"]]),
                             token_type_ids=np.array([w["token_type_ids"]]))
            w["start"], w["end"] = host(out.start_logits), host(out.end_logits)  # [1, S]
        return inputs

    def postprocess(self, inputs, top_k=1, handle_impossible_answer=False, max_answer_len=15, align_to_words=True):
        context = inputs["example"]["context"]
        min_null_score = 1000000  # large and positive
        answers = []
        for w in inputs["windows"]:
            pre_topk = top_k * 2 + 10 if align_to_words else top_k  # aligning may merge candidates
            starts, ends, scores, min_null_score = select_starts_ends(
                w["start"], w["end"], w["p_mask"], np.array([w["attention_mask"]]), min_null_score, pre_topk,
                handle_impossible_answer, max_answer_len)
            for s, e, score in zip(starts, ends, scores):
                start_index, end_index = self._indices(w, int(s), int(e), align_to_words)
                text = context[start_index:end_index]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": start_index, "end": end_index, "answer": text})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def _indices(w, s, e, align_to_words):
        """Character span of tokens s..e (transformers' get_indices on the window's encoding)."""
        offsets, words = w["offsets"], w["words"]
        if align_to_words and words[s] is not None and words[e] is not None:
            in_context = [i for i, q in enumerate(w["sequence_ids"]) if q == 1]
            start_word = [i for i in in_context if words[i] == words[s]]
            end_word = [i for i in in_context if words[i] == words[e]]
            return offsets[start_word[0]][0], offsets[end_word[-1]][1]
        return offsets[s][0], offsets[e][1]
