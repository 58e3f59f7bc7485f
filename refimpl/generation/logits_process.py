"""Logits processors and warpers: transformers 4.57.6's, as pure functions of (ids, scores).

Each processor is called as ``scores = proc(ids, scores)`` with ids the host (numpy) int64 array [R, C] of
every row's tokens so far (C = current length; the decoder start token or the prompt included) and scores
the backend float32 array [R, V] of next-token scores (raw logits in greedy/sampling; log-probabilities in
beam search). Rows R = batch x beams. Processors return a new array or modify ``scores`` in place; the
caller owns it. The list and its order are transformers' ``_get_logits_processor``:

    repetition_penalty -> no_repeat_ngram -> bad_words -> min_length -> min_new_tokens -> forced_bos
    -> forced_eos -> remove_invalid_values -> suppress_tokens -> begin_suppress_tokens
    -> [sampling only] temperature -> top_k -> top_p -> renormalize_logits

A banned token gets -inf, as in transformers.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..errors import InputError

NEG_INF = -np.inf


def repetition_penalty(penalty):
    """CTRL's penalty: every token already in the row: score < 0 -> score * p, else score / p."""
    def proc(ids, scores):
        xp = array_module(scores)
        idx = xp.asarray(ids)
        rows = xp.arange(scores.shape[0])[:, None]
        picked = scores[rows, idx]  # [R, C]
        picked = xp.where(picked < 0, picked * scores.dtype.type(penalty), picked / scores.dtype.type(penalty))
        scores[rows, idx] = picked  # duplicates write the same value
        return scores
    return proc


def banned_ngram_tokens(ids_row, n):
    """Tokens that would repeat an n-gram already in ``ids_row`` (a list): fairseq's rule."""
    cur = len(ids_row)
    if cur + 1 < n:
        return []
    seen = {}
    for i in range(cur - n + 1):
        seen.setdefault(tuple(ids_row[i:i + n - 1]), []).append(ids_row[i + n - 1])
    return seen.get(tuple(ids_row[cur + 1 - n:cur]), [])


def no_repeat_ngram(n):
    """Ban any token that would complete an n-gram already present in the row (prompt included)."""
    def proc(ids, scores):
        for r, row in enumerate(ids.tolist()):
            banned = banned_ngram_tokens(row, n)
            if banned:
                scores[r, array_module(scores).asarray(banned)] = NEG_INF
        return scores
    return proc


def bad_words(bad_words_ids, eos_token_ids, vocab_size):
    """Ban each sequence in ``bad_words_ids``: a single token always; a longer one when the row ends with its
    prefix (then its last token is banned). Single-token sequences equal to an eos token are dropped.
    A ban adds -inf to the score, as transformers does (so a +inf or nan score becomes nan, which
    ``remove_invalid_values`` then turns into 0)."""
    seqs = [list(s) for s in bad_words_ids if not (len(s) == 1 and s[0] in eos_token_ids)]
    too_big = sorted({t for s in seqs for t in s if t >= vocab_size})
    if too_big:
        raise InputError(f"bad_words_ids holds token ids {too_big} outside the vocabulary [0, {vocab_size})")
    single = sorted({s[0] for s in seqs if len(s) == 1})
    multi = [s for s in seqs if len(s) > 1]

    def proc(ids, scores):
        with np.errstate(invalid="ignore"):  # inf + -inf = nan on purpose (see above)
            return _ban(ids, scores)

    def _ban(ids, scores):
        xp = array_module(scores)
        if single:  # transformers adds a -inf bias (SequenceBiasLogitsProcessor): a +inf or nan score becomes nan
            scores[:, xp.asarray(single)] += NEG_INF
        for s in multi:
            if len(s) > ids.shape[1]:
                continue
            match = np.all(ids[:, ids.shape[1] - (len(s) - 1):] == np.asarray(s[:-1]), axis=1)
            rows = np.nonzero(match)[0]
            if rows.size:
                scores[xp.asarray(rows), s[-1]] += NEG_INF
        return scores
    return proc


def min_length(length, eos_token_ids):
    """While the row is shorter than ``length`` (prompt included), eos gets -inf."""
    def proc(ids, scores):
        if ids.shape[1] < length:
            scores[:, array_module(scores).asarray(eos_token_ids)] = NEG_INF
        return scores
    return proc


def min_new_tokens(prompt_length, count, eos_token_ids):
    """While fewer than ``count`` tokens follow the prompt, eos gets -inf."""
    def proc(ids, scores):
        if ids.shape[1] - prompt_length < count:
            scores[:, array_module(scores).asarray(eos_token_ids)] = NEG_INF
        return scores
    return proc


def forced_bos(token_id):
    """At length 1 (only the start token), everything but ``token_id`` gets -inf and it gets 0."""
    def proc(ids, scores):
        if ids.shape[1] == 1:
            scores[...] = NEG_INF
            scores[:, token_id] = 0
        return scores
    return proc


def forced_eos(max_length, eos_token_ids):
    """At length max_length - 1, everything but the eos token(s) gets -inf and they get 0."""
    def proc(ids, scores):
        if ids.shape[1] == max_length - 1:
            scores[...] = NEG_INF
            scores[:, array_module(scores).asarray(eos_token_ids)] = 0
        return scores
    return proc


def inf_nan_remove():
    """transformers' InfNanRemoveLogitsProcessor (``remove_invalid_values=True``): nan -> 0, +inf -> the
    dtype's largest finite value, -inf -> its most negative one (so a banned token gets finfo.min from
    here on, not -inf; the warpers after it set -inf again)."""
    def proc(ids, scores):
        xp = array_module(scores)
        info = np.finfo(scores.dtype)
        bad_pos, bad_neg, nan = scores == xp.inf, scores == -xp.inf, xp.isnan(scores)
        scores[nan] = 0.0
        scores[bad_pos] = info.max
        scores[bad_neg] = info.min
        return scores
    return proc


def suppress(token_ids):
    """SuppressTokensLogitsProcessor: the listed tokens get -inf at every step."""
    def proc(ids, scores):
        scores[:, array_module(scores).asarray(token_ids)] = NEG_INF
        return scores
    return proc


def suppress_at_begin(token_ids, begin_index):
    """SuppressTokensAtBeginLogitsProcessor: the listed tokens get -inf while the rows are ``begin_index``
    long (the first generated position)."""
    def proc(ids, scores):
        if ids.shape[1] == begin_index:
            scores[:, array_module(scores).asarray(token_ids)] = NEG_INF
        return scores
    return proc


def renormalize():
    """LogitNormalization: log_softmax of the processed scores (max subtracted first; a row of -inf only
    gives nan, as torch's log_softmax)."""
    def proc(ids, scores):
        xp = array_module(scores)
        m = scores.max(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore"):
            shifted = scores - m
            return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    return proc


def temperature(t):
    def proc(ids, scores):
        scores /= scores.dtype.type(t)
        return scores
    return proc


def top_k(k, min_tokens_to_keep=1):
    """Keep the scores >= the k-th largest (ties at the threshold all survive); the rest get -inf."""
    k_eff = max(k, min_tokens_to_keep)

    def proc(ids, scores):
        xp = array_module(scores)
        kk = min(k_eff, scores.shape[-1])
        kth = xp.partition(scores, scores.shape[-1] - kk, axis=-1)[:, scores.shape[-1] - kk:scores.shape[-1] - kk + 1]
        scores[scores < kth] = NEG_INF
        return scores
    return proc


def top_p(p, min_tokens_to_keep=1):
    """Nucleus: sort ascending, drop the tokens whose cumulative probability is <= 1 - p (always keeping
    the ``min_tokens_to_keep`` largest)."""
    def proc(ids, scores):
        xp = array_module(scores)
        order = xp.argsort(scores, axis=-1, kind="stable")  # ascending
        sorted_scores = xp.take_along_axis(scores, order, axis=-1)
        e = xp.exp(sorted_scores - sorted_scores[:, -1:])
        cum = xp.cumsum(e / e.sum(axis=-1, keepdims=True), axis=-1)
        remove = cum <= scores.dtype.type(1 - p)
        remove[:, remove.shape[1] - min_tokens_to_keep:] = False
        mask = xp.empty_like(remove)
        mask[xp.arange(remove.shape[0])[:, None], order] = remove  # back to vocabulary order
        scores[mask] = NEG_INF
        return scores
    return proc


def build_processors(gc, prompt_length, vocab_size, eos_token_ids):
    """transformers' processor list for generation config ``gc``; ``prompt_length`` is the length of
    the decoder input when generation starts (prompt, or decoder start tokens)."""
    procs = []
    if gc.repetition_penalty is not None and gc.repetition_penalty != 1.0:
        procs.append(repetition_penalty(float(gc.repetition_penalty)))
    if gc.no_repeat_ngram_size:
        procs.append(no_repeat_ngram(gc.no_repeat_ngram_size))
    if gc.bad_words_ids is not None:
        procs.append(bad_words(gc.bad_words_ids, eos_token_ids, vocab_size))
    if eos_token_ids and gc.min_length is not None and gc.min_length > 0:
        procs.append(min_length(gc.min_length, eos_token_ids))
    if eos_token_ids and gc.min_new_tokens is not None and gc.min_new_tokens > 0:
        procs.append(min_new_tokens(prompt_length, gc.min_new_tokens, eos_token_ids))
    if gc.forced_bos_token_id is not None:
        procs.append(forced_bos(gc.forced_bos_token_id))
    if gc.forced_eos_token_id is not None:
        forced = gc.forced_eos_token_id
        procs.append(forced_eos(gc.max_length, list(forced) if isinstance(forced, (list, tuple)) else [forced]))
    if gc.remove_invalid_values:
        procs.append(inf_nan_remove())
    for name in ("suppress_tokens", "begin_suppress_tokens"):
        too_big = sorted({t for t in (getattr(gc, name) or []) if t >= vocab_size})
        if too_big:
            raise InputError(f"{name} holds token ids {too_big} outside the vocabulary [0, {vocab_size})")
    if gc.suppress_tokens is not None:
        procs.append(suppress(list(gc.suppress_tokens)))
    if gc.begin_suppress_tokens is not None:
        begin = prompt_length if (prompt_length > 1 or gc.forced_bos_token_id is None) else prompt_length + 1
        procs.append(suppress_at_begin(list(gc.begin_suppress_tokens), begin))
    if gc.do_sample:
        keep = (len(eos_token_ids) + 1 if eos_token_ids else 2) if gc.num_beams > 1 else 1
        if gc.temperature is not None and gc.temperature != 1.0:
            procs.append(temperature(float(gc.temperature)))
        if gc.top_k is not None and gc.top_k != 0:
            procs.append(top_k(int(gc.top_k), keep))
        if gc.top_p is not None and gc.top_p < 1.0:
            procs.append(top_p(float(gc.top_p), keep))
    if gc.renormalize_logits:
        procs.append(renormalize())
    return procs


def apply_processors(procs, ids, scores):
    for proc in procs:
        scores = proc(ids, scores)
    return scores
