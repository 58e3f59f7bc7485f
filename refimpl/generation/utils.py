"""``generate``: greedy search, multinomial sampling and beam search, step for step as transformers 4.57.6's
``GenerationMixin.generate`` / ``_sample`` / ``_beam_search`` (the vectorised beam search, not the old
BeamSearchScorer).

Dimension legend: B inputs, K beams (num_beams), R = B*K rows (R = B * num_return_sequences when
sampling several), V vocabulary, C current length of the decoder sequences, M max_length.

The loop, per step:
  1. the decoder runs on the new token(s) of every row with the KV cache (the whole prompt on step 1):
     logits [R, V] of the last position, as float32 (transformers casts with ``.float()``);
  2. beam search takes log_softmax; processors (logits_process.py) then modify the scores;
  3. greedy: argmax; sampling: a draw from softmax(scores); beam search: the top 2K (more with several
     eos tokens) continuations over K*V per input, then the K best unfinished ones continue and the
     finished ones enter the hypotheses (length penalty (C + 1 - prompt)^length_penalty applied there);
  4. the cache is reordered by the chosen beams (rows that keep their beam are not copied).
Bookkeeping (sequences, beam scores, flags) lives on the host as numpy arrays; logits, log-softmax,
processors and the top-k over K*V run on the model's backend; per step only [R] or [B, 2K] numbers cross.

Sampling uses numpy's PCG64 seeded with ``seed`` (not torch's RNG, so draws differ from transformers'
while following the same distribution): one uniform per row, inverse CDF on the backend. Beam sampling
draws the 2K candidates without replacement with the Gumbel-top-k trick, which has exactly the law of
``torch.multinomial(softmax(scores), 2K)`` without replacement.
"""

from __future__ import annotations

import copy
import inspect
import warnings

import numpy as np

from ..backend import array_module, to_host
from ..cache import KVCache
from ..errors import InputError
from ..models.base import binary_mask, host_array
from .config import resolve_generation_config
from .logits_process import apply_processors, build_processors
from .outputs import BeamTrace, GenerateOutput

BIG = np.float32(-1.0e9)  # transformers' "impossible" beam score


# --- setup -----------------------------------------------------------------------------------------


def _host_ids(value, name, vocab_size, shape=None):
    arr = host_array(value, name)
    if arr.dtype.kind not in "iu" or arr.ndim != 2 or 0 in arr.shape:
        raise InputError(f"{name} must be integer ids of shape [batch, length] (non-empty), got {arr.dtype} {arr.shape}")
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(f"{name} has shape {arr.shape}, expected {tuple(shape)} like the input ids")
    if arr.min() < 0 or arr.max() >= vocab_size:
        raise InputError(f"{name} contains {int(arr[(arr < 0) | (arr >= vocab_size)][0])}, outside [0, {vocab_size})")
    return arr.astype(np.int64)


def _host_mask(value, name, shape):
    """A 0/1 mask (as the forward checks it: ``binary_mask``), as int64 like transformers' generate."""
    arr = binary_mask(value, name)
    if arr.shape != tuple(shape):
        raise InputError(f"{name} has shape {arr.shape}, expected {tuple(shape)} (2-D, like the ids)")
    return arr.astype(np.int64)


def _physical_memory():
    """Bytes of memory this machine has (None where the platform does not say)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_rows_fit(model, dcfg, gc, batch, expand, encoder_length):
    """InputError before anything is allocated when the rows generation needs (batch x num_beams, or x
    num_return_sequences) could not fit in this machine's memory: per row the KV cache (2 L D values per
    position, max_length positions plus the encoder's E) and two float32 rows of the vocabulary (logits,
    scores). ``num_beams=10**7`` asked for terabytes; transformers fails on the allocation."""
    limit = _physical_memory()
    if limit is None:
        return
    length = max(gc.max_length, (gc.max_new_tokens or 0) + 1)
    length = min(length, dcfg.max_position_embeddings)
    itemsize = np.dtype(model.dtype).itemsize
    per_row = 2 * dcfg.num_hidden_layers * dcfg.hidden_size * itemsize * (length + encoder_length) + 8 * dcfg.vocab_size
    rows = batch * expand
    if rows * per_row > limit:
        most = max(limit // (per_row * batch), 1)
        raise InputError(
            f"num_beams={gc.num_beams} / num_return_sequences={gc.num_return_sequences} on a batch of {batch} needs "
            f"{rows} rows of about {per_row} bytes each (KV cache of {length} positions, logits), "
            f"{rows * per_row / 2**30:.1f} GiB, more than this machine's {limit / 2**30:.1f} GiB of memory; use at most "
            f"{most} beams for this batch (or a smaller batch)"
        )


def _infer_mask(ids, pad, eos):
    """transformers' _prepare_attention_mask_for_generation: ids != pad when the pad token occurs in the
    ids and is not an eos token; otherwise all ones."""
    if pad is not None and (ids == pad).any() and pad not in eos:
        return (ids != pad).astype(np.int64)
    return np.ones_like(ids)


class _Session:
    """The decoder side of one ``generate`` call: the model, its KV cache (None with ``use_cache=False``),
    the masks; ``step`` runs one decoder call and returns float32 logits of the last position [R, V].

    call: what runs a step: the decoder of an encoder-decoder, the decoder-only model, or, for a decoder
    class loaded without ``is_decoder``, a twin of it that runs its layers with the KV cache and a
    bidirectional (non-causal) mask, which is what transformers 4.57.6 does there (see ``generate``).
    token_types: [R, M] host or None: a decoder-only model's token types, the prompt's followed by its
    last column repeated (transformers' ``_update_model_kwargs_for_generation``).
    enc_hidden: [R, E, D] projected encoder states (encoder-decoder without a cache: the cross-attention
    K/V are then computed at every step, as transformers does).
    want_attentions / want_hidden: collect every step's attentions (and cross-attentions) / hidden states.
    """

    def __init__(self, model, is_ed, cache, enc_mask, dec_mask, max_length, recorder=None, *, call=None,
                 bidirectional=False, token_types=None, enc_hidden=None, want_attentions=False, want_hidden=False):
        self.model, self.is_ed, self.cache = model, is_ed, cache
        self.call = call if call is not None else (model.decoder if is_ed else model)
        self.bidirectional = bidirectional
        self.recorder = recorder  # decoder calls record under step.{t}., the search's choices under step.{t}.search.
        self.enc_mask = enc_mask  # [R, E] host or None (encoder-decoder)
        self.enc_hidden = enc_hidden
        self.token_types = token_types
        self.mask = None  # [R, M] host: decoder / prompt mask, extended by ones each step
        if dec_mask is not None:
            self.mask = np.ones((dec_mask.shape[0], max_length), np.int64)
            self.mask[:, :dec_mask.shape[1]] = dec_mask
        self.want_attentions, self.want_hidden = want_attentions, want_hidden
        self.attentions, self.cross_attentions, self.hidden_states = [], [], []  # one entry per step
        self.calls = 0

    def step(self, ids, cur):
        """ids [R, C] host (tokens so far; C = cur). Feeds the tokens the cache has not seen yet (all of
        them without a cache)."""
        seen = self.cache.length if self.cache is not None else 0
        new = ids[:, seen:cur]  # [R, S]: whole prompt first, then one token (without a cache: everything)
        mask = None if self.mask is None else self.mask[:, :cur]
        rec = None if self.recorder is None else self.recorder.scoped(f"step.{self.calls}.")
        cached = self.cache is not None
        flags = dict(output_attentions=self.want_attentions, output_hidden_states=self.want_hidden)
        if self.is_ed:
            cross = {} if cached else {"encoder_hidden_states": self.enc_hidden}
            out = self.call(input_ids=new, attention_mask=mask, encoder_attention_mask=self.enc_mask,
                            past_key_values=self.cache, use_cache=cached,
                            recorder=None if rec is None else rec.scoped("decoder."), **cross, **flags)
        else:
            # transformers' prepare_inputs_for_generation: positions = cumsum(mask) - 1, 1 at padding
            pos = np.cumsum(mask, axis=1) - 1
            pos[mask == 0] = 1
            extra = {} if self.token_types is None else {"token_type_ids": self.token_types[:, seen:cur]}
            attend = mask
            if self.bidirectional and cached:  # every new query sees every key not padded: [R, S, T]
                attend = np.broadcast_to(mask[:, None, :], (mask.shape[0], new.shape[1], cur))
            out = self.call(input_ids=new, attention_mask=attend, position_ids=pos[:, seen:cur],
                            past_key_values=self.cache, use_cache=cached, recorder=rec, **extra, **flags)
        if cached:
            self.cache = out.past_key_values
        self.calls += 1
        if self.want_attentions:
            self.attentions.append(out.attentions)
            if self.is_ed:
                self.cross_attentions.append(out.cross_attentions)
        if self.want_hidden:
            self.hidden_states.append(out.hidden_states)
        logits = out.logits[:, -1, :]  # [R, V]
        # Processors may write into the result: a float32 model's logits are a fresh array that nothing
        # else holds (``out`` is dropped here), so no copy is needed; other dtypes are converted (a copy).
        return logits.astype(np.float32, copy=False)

    def record(self, name, array):
        """File the search's ``name`` of the last step (``step.{t}.search.{name}``) with the recorder, if any."""
        if self.recorder is not None:
            self.recorder(f"step.{self.calls - 1}.search.{name}", array)

    def reorder(self, index):
        if self.cache is not None:
            self.cache = self.cache.reorder_rows_in_place(index)


def _accepts(model, name):
    """Does ``model``'s forward take the keyword ``name``?"""
    return name in inspect.signature(model.forward).parameters


def _cached_bidirectional_twin(model):
    """The same model (same parameters, no copy) with ``is_decoder`` set in a copy of its config, so that
    its layers run with the KV cache; ``_Session`` gives it a bidirectional 3-D mask, so the attention is
    the encoder's. This is transformers 4.57.6's generation from a decoder class built without
    ``is_decoder``: generate() hands it a DynamicCache, which its self-attention layers fill and read
    although the model is an encoder (no causal mask)."""
    twin = copy.copy(model)
    twin.config = copy.copy(model.config)
    twin.config.is_decoder = True
    return twin


def generate(model, inputs=None, *, input_ids=None, attention_mask=None, token_type_ids=None,
             decoder_input_ids=None, decoder_attention_mask=None, encoder_outputs=None, generation_config=None,
             seed=None, output_beam_trace=False, recorder=None, **kwargs):
    """Generate token ids, with transformers' keyword names and defaults (see config.py for precedence).

    model: an EncoderDecoderModel, or a decoder-only LM (BertLMHeadModel, RobertaForCausalLM,
    BertGenerationDecoder). inputs or input_ids= (not both): ids [B, S] — the encoder input, or the
    decoder-only prompt (left-padded). token_type_ids [B, S]: the encoder's (encoder-decoder), or the
    prompt's (decoder-only; each new token gets the prompt's last type, as in transformers).
    Returns the sequences [B * num_return_sequences, C] (host int64) or, with return_dict_in_generate, a
    :class:`GenerateOutput` (sequences, sequences_scores when output_scores and beam search, scores,
    logits, beam_indices, ``beam_trace`` when ``output_beam_trace``; with output_attentions /
    output_hidden_states, transformers' per-step fields: ``attentions`` / ``hidden_states`` for a
    decoder-only model, ``encoder_attentions``, ``encoder_hidden_states``, ``decoder_attentions``,
    ``cross_attentions``, ``decoder_hidden_states`` for an encoder-decoder).
    A decoder-only class loaded without ``is_decoder`` generates as transformers 4.57.6 does (with its
    warning): bidirectional attention, and with use_cache (the default) the KV cache — the prompt's
    tokens attend to each other both ways, each new token to everything before it.
    recorder: a ``refimpl.Recorder`` (or the one ``refimpl.record(model)`` installed) that receives the
    encoder's intermediates, every decoder call's under ``step.{t}.`` and the search's choices.
    """
    if input_ids is not None:
        if inputs is not None:
            raise InputError(
                "the input ids were given twice, as inputs (the first argument) and as input_ids=; pass one of them"
            )
        inputs = input_ids
    if recorder is None:
        recorder = model.__dict__.get("_recorder")
    is_ed = bool(getattr(model, "is_encoder_decoder", False))
    dcfg = model.decoder.config if is_ed else model.config
    for longer, total in (("max_new_tokens", "max_length"), ("min_new_tokens", "min_length")):
        if kwargs.get(longer) is not None and kwargs.get(total) is not None:
            raise InputError(
                f"both {longer}={kwargs[longer]!r} and {total}={kwargs[total]!r} were given; pass one: {longer} "
                f"counts the tokens to add, {total} the whole length (prompt included). transformers would use "
                f"{longer} and ignore {total}"
            )
    explicit_max_length = "max_length" in kwargs and kwargs["max_length"] is not None
    gc = resolve_generation_config(model, generation_config, kwargs)
    xp = model.xp
    vocab = dcfg.vocab_size
    gc.check_vocabulary(vocab)
    eos = gc.eos_list()
    pad = gc.pad_token_id if gc.pad_token_id is not None else (eos[0] if eos else None)
    expand = max(gc.num_beams, gc.num_return_sequences)
    want_attentions = gc.return_dict_in_generate and gc.output_attentions
    want_hidden = gc.return_dict_in_generate and gc.output_hidden_states
    bidirectional = not is_ed and not dcfg.is_decoder
    if bidirectional:
        warnings.warn(
            f"If you want to use `{type(model).__name__}` as a standalone, add `is_decoder=True.` (transformers' "
            "warning). Generating as transformers 4.57.6 does for this config: bidirectional attention"
            + (", the prompt's keys and values cached" if gc.use_cache else ", the whole sequence at every step"),
            UserWarning, stacklevel=3,
        )

    # --- inputs: decoder ids [B, L0], encoder side -------------------------------------------------
    enc_mask = dec_mask = token_types = None
    cross = enc_hidden = None
    encoder_record = None
    if is_ed:
        start = gc.decoder_start_token_id if gc.decoder_start_token_id is not None else gc.bos_token_id
        if start is None:
            raise InputError(
                "decoder_start_token_id is not set (nor bos_token_id): pass decoder_start_token_id=... to "
                "generate or set it in config.json (bert2bert uses the [CLS] id)"
            )
        if encoder_outputs is None:
            if inputs is None:
                raise InputError("give the encoder input ids (inputs or input_ids=) or encoder_outputs")
            src = _host_ids(inputs, "inputs", model.encoder.config.vocab_size)
            enc_mask = (_host_mask(attention_mask, "attention_mask", src.shape) if attention_mask is not None
                        else _infer_mask(src, pad, eos))
            types = {}
            if token_type_ids is not None:
                if not _accepts(model.encoder, "token_type_ids"):
                    raise InputError(
                        f"token_type_ids were given but the encoder ({type(model.encoder).__name__}) has no token type "
                        "embeddings; drop token_type_ids (transformers ignores them there)"
                    )
                types["token_type_ids"] = _host_ids(token_type_ids, "token_type_ids", model.encoder.config.type_vocab_size,
                                                    shape=src.shape)
            # as transformers' _prepare_encoder_decoder_kwargs_for_generation: the encoder returns its
            # attentions / hidden states when generation asks for them
            encoder_outputs = model.encoder(input_ids=src, attention_mask=enc_mask,
                                            output_attentions=gc.output_attentions,
                                            output_hidden_states=gc.output_hidden_states,
                                            recorder=None if recorder is None else recorder.scoped("encoder."), **types)
        else:
            if token_type_ids is not None:
                raise InputError("token_type_ids go to the encoder, but encoder_outputs were given (the encoder does "
                                 "not run): drop token_type_ids or encoder_outputs")
            if attention_mask is not None:
                enc_hidden = getattr(encoder_outputs, "last_hidden_state", encoder_outputs)
                enc_mask = _host_mask(attention_mask, "attention_mask", enc_hidden.shape[:2])
        encoder_record = encoder_outputs
        _check_rows_fit(model, dcfg, gc, getattr(encoder_outputs, "last_hidden_state", encoder_outputs).shape[0],
                        expand, getattr(encoder_outputs, "last_hidden_state", encoder_outputs).shape[1])
        enc_hidden = model.project(getattr(encoder_outputs, "last_hidden_state", encoder_outputs),
                                   recorder=recorder)  # [B, E, D]
        b = enc_hidden.shape[0]
        if gc.use_cache:
            keys, values = model.cross_kv(enc_hidden, recorder=recorder)  # once per generate, on B rows
            cross = (tuple(xp.repeat(k, expand, axis=0) for k in keys),
                     tuple(xp.repeat(v, expand, axis=0) for v in values))
            enc_hidden = None
        else:
            enc_hidden = xp.repeat(enc_hidden, expand, axis=0)  # [R, E, D]: cross K/V at every step
        if decoder_input_ids is None:
            ids = np.full((b, 1), start, np.int64)
        else:
            ids = _host_ids(decoder_input_ids, "decoder_input_ids", vocab)
            if decoder_attention_mask is not None:
                dec_mask = _host_mask(decoder_attention_mask, "decoder_attention_mask", ids.shape)
            if (ids[:, 0] != start).all():  # transformers prepends the start token
                ids = np.concatenate([np.full((b, 1), start, np.int64), ids], axis=1)
                if dec_mask is not None:
                    dec_mask = np.concatenate([np.ones((b, 1), np.int64), dec_mask], axis=1)
        if enc_mask is not None:
            enc_mask = np.repeat(enc_mask, expand, axis=0)
    else:
        if inputs is None:
            if gc.bos_token_id is None:
                raise InputError("give a prompt (inputs or input_ids=) or set bos_token_id to start from it")
            ids = np.full((1, 1), gc.bos_token_id, np.int64)
        else:
            ids = _host_ids(inputs, "inputs", vocab)
        dec_mask = (_host_mask(attention_mask, "attention_mask", ids.shape) if attention_mask is not None
                    else _infer_mask(ids, pad, eos))
        if token_type_ids is not None:
            if not _accepts(model, "token_type_ids"):
                raise InputError(
                    f"token_type_ids were given but {type(model).__name__} has no token type embeddings; drop "
                    "token_type_ids (transformers ignores them there)"
                )
            token_types = _host_ids(token_type_ids, "token_type_ids", dcfg.type_vocab_size, shape=ids.shape)
        b = ids.shape[0]
        _check_rows_fit(model, dcfg, gc, b, expand, 0)
    for name, value in (("decoder_input_ids", decoder_input_ids), ("decoder_attention_mask", decoder_attention_mask),
                        ("encoder_outputs", encoder_outputs)):
        if value is not None and not is_ed:
            raise InputError(f"{name} is only used by an encoder-decoder; {type(model).__name__} is decoder-only "
                             "(give the prompt as input_ids)")
    ids = np.repeat(ids, expand, axis=0)
    if dec_mask is not None:
        dec_mask = np.repeat(dec_mask, expand, axis=0)
    prompt_len = ids.shape[1]
    # --- lengths (transformers' _prepare_generated_length) -----------------------------------------
    if gc.max_new_tokens is not None:
        gc.max_length = gc.max_new_tokens + prompt_len
    elif not explicit_max_length and gc.max_length == 20:
        gc.max_length = 20 + prompt_len
        if not is_ed:
            gc.max_length = min(gc.max_length, dcfg.max_position_embeddings)
    if gc.min_new_tokens is not None:
        gc.min_length = gc.min_new_tokens + prompt_len
    if prompt_len >= gc.max_length:
        raise InputError(
            f"the {'decoder input' if is_ed else 'prompt'} has {prompt_len} tokens but max_length={gc.max_length}; "
            "set max_new_tokens (tokens to add) or a larger max_length"
        )
    # Positions the decoder can embed: all max_position_embeddings, except inside an encoder-decoder with a
    # RoBERTa decoder, whose positions start at padding_idx + 1 (decoder-only generation feeds positions
    # from 0, as transformers does).
    positions = dcfg.max_position_embeddings
    if is_ed and getattr(dcfg, "model_type", "") == "roberta":
        positions -= dcfg.pad_token_id + 1
    if gc.max_length - 1 > positions:
        what = (f"max_new_tokens={gc.max_new_tokens} after {prompt_len} input tokens" if gc.max_new_tokens is not None
                else f"max_length={gc.max_length}")
        raise InputError(
            f"{what} would feed the decoder {gc.max_length - 1} positions, more than the {positions} it can embed "
            f"(max_position_embeddings={dcfg.max_position_embeddings}); use at most "
            f"max_new_tokens={positions + 1 - prompt_len}"
        )

    rows = ids.shape[0]
    if token_types is not None:  # [R, M]: the prompt's types, then its last column for every new token
        full = np.empty((b, gc.max_length), np.int64)
        full[:, :prompt_len] = token_types
        full[:, prompt_len:] = token_types[:, -1:]
        token_types = np.repeat(full, expand, axis=0)
    cache = None
    if gc.use_cache:
        cache = KVCache.allocate(xp, model.dtype, dcfg.num_hidden_layers, rows, dcfg.num_attention_heads,
                                 dcfg.head_size, gc.max_length - 1)
        if cross is not None:
            cache = cache.with_cross(*cross)
    call = None
    if bidirectional and gc.use_cache:
        call = _cached_bidirectional_twin(model)
    session = _Session(model, is_ed, cache, enc_mask, dec_mask, gc.max_length, recorder, call=call,
                       bidirectional=bidirectional, token_types=token_types, enc_hidden=enc_hidden,
                       want_attentions=want_attentions, want_hidden=want_hidden)
    procs = build_processors(gc, prompt_len, vocab, eos)
    rng = np.random.default_rng(seed)
    if gc.num_beams > 1:
        out = _beam_search(session, ids, b, gc, procs, eos, pad, vocab, rng, output_beam_trace)
    else:
        out = _greedy_or_sample(session, ids, gc, procs, eos, pad, rng)
    out.decoder_calls = session.calls
    if is_ed:
        if want_attentions:
            out.encoder_attentions = getattr(encoder_record, "attentions", None)
            out.decoder_attentions, out.cross_attentions = tuple(session.attentions), tuple(session.cross_attentions)
        if want_hidden:
            out.encoder_hidden_states = getattr(encoder_record, "hidden_states", None)
            out.decoder_hidden_states = tuple(session.hidden_states)
    else:
        if want_attentions:
            out.attentions = tuple(session.attentions)
        if want_hidden:
            out.hidden_states = tuple(session.hidden_states)
    return out if gc.return_dict_in_generate else out.sequences


# --- greedy search and sampling --------------------------------------------------------------------


def _sample_rows(probs, rng):
    """One draw per row from probs [R, V] (backend): inverse CDF with u ~ U(0, 1] (a zero-probability
    token is never drawn)."""
    xp = array_module(probs)
    cdf = xp.cumsum(probs, axis=-1)  # [R, V]
    u = xp.asarray((1.0 - rng.random(probs.shape[0])).astype(np.float32))  # (0, 1]
    target = u[:, None] * cdf[:, -1:]
    idx = (cdf < target).sum(axis=-1)
    return np.minimum(np.asarray(to_host(idx)), probs.shape[-1] - 1).astype(np.int64)


def _greedy_or_sample(session, ids0, gc, procs, eos, pad, rng):
    """transformers' _sample: argmax (or a draw) per row until every row has hit eos or max_length."""
    rows, cur = ids0.shape
    ids = np.zeros((rows, gc.max_length), np.int64)
    ids[:, :cur] = ids0
    unfinished = np.ones(rows, bool)
    scores, raw = [], []
    eos_arr = np.asarray(eos, np.int64)
    while True:
        logits = session.step(ids, cur)  # [R, V] float32
        if gc.output_logits:
            raw.append(logits.copy())
        s = apply_processors(procs, ids[:, :cur], logits)
        if gc.output_scores:
            scores.append(s.copy())
        if gc.do_sample:
            nxt = _sample_rows(session.model.kernels.softmax(s), rng)
        else:
            nxt = np.asarray(to_host(s.argmax(axis=-1))).astype(np.int64)
        if eos:
            nxt = np.where(unfinished, nxt, pad)
        session.record("scores", s)
        session.record("next_tokens", nxt)
        ids[:, cur] = nxt
        cur += 1
        done = np.full(rows, cur >= gc.max_length)
        if eos:
            done |= np.isin(nxt, eos_arr)
        unfinished &= ~done
        if not unfinished.any():
            break
    return GenerateOutput(sequences=ids[:, :cur].copy(), scores=tuple(scores) if gc.output_scores else None,
                          logits=tuple(raw) if gc.output_logits else None)


# --- beam search ------------------------------------------------------------------------------------


def _top_k_host(values, k):
    """Indices of the k largest of each row of host ``values`` [B, N], best first; ties: lower index first."""
    return np.argsort(-values, axis=1, kind="stable")[:, :k]


def _top_k_backend(scores, k, chunk=64):
    """(values, indices) of the k largest per row of backend ``scores`` [B, N], on the host, best first
    (ties: lower index first).

    Selection without a full partition of the N = K*V scores: the maxima of chunks of ``chunk`` scores
    give a threshold — the k-th largest chunk maximum, below which no top-k score can lie (k chunks hold
    a score at least that large) — and only the scores of the chunks reaching it are sorted. About 3x faster than
    argpartition over the row on numpy; exactly a stable descending sort's first k.
    """
    xp = array_module(scores)
    b, n = scores.shape
    full = n // chunk * chunk
    maxima = scores[:, :full].reshape(b, -1, chunk).max(axis=2)  # [B, N / chunk]
    if full < n:
        maxima = xp.concatenate([maxima, scores[:, full:].max(axis=1, keepdims=True)], axis=1)
    m = maxima.shape[1]
    if m >= k:
        threshold = xp.partition(maxima, m - k, axis=1)[:, m - k:m - k + 1]  # [B, 1]
    else:
        threshold = xp.full((b, 1), -xp.inf, dtype=scores.dtype)
    # Every score >= threshold lies in a chunk whose maximum is >= threshold: only those chunks (a few
    # per row) are searched, not the whole row.
    rows, chunks = (np.asarray(to_host(a)) for a in xp.nonzero(maxima >= threshold))
    part = np.empty((b, k), np.int64)
    starts = np.searchsorted(rows, np.arange(b + 1))  # nonzero returns row-major order
    offsets = np.arange(chunk)
    for r in range(b):
        idx = (chunks[starts[r]:starts[r + 1], None] * chunk + offsets).ravel()
        idx = idx[idx < n]  # the last chunk may be partial
        row_vals = np.asarray(to_host(scores[r, xp.asarray(idx)]))
        part[r] = idx[np.lexsort((idx, -row_vals))[:k]]  # value descending, then index ascending
    vals = np.asarray(to_host(xp.take_along_axis(scores, xp.asarray(part), axis=1)))
    return vals, part


def _log_softmax_in_place(kernels, logits):
    """The kernel set's log_softmax of a step's [R, V] logits, which are ours to overwrite: the fast set
    works in place (the same operations as the reference, so the same values), sparing two [R, V]
    allocations per step (4 MB each at 32 rows of BERT's vocabulary: 1.2 ms a step)."""
    if kernels.name == "fast":
        from ..kernels.softmax import log_softmax

        return log_softmax(logits, out=logits)
    return kernels.log_softmax(logits)


def _gather(a, idx):
    """a [B, N, ...] gathered along axis 1 by idx [B, k] -> [B, k, ...]."""
    return np.take_along_axis(a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1)


def _beam_search(session, ids0, batch, gc, procs, eos, pad, vocab, rng, want_trace):
    """transformers 4.57.6 ``_beam_search``, vectorised over the batch; see the module docstring."""
    nb, max_len, lp, es = gc.num_beams, gc.max_length, gc.length_penalty, gc.early_stopping
    prompt = cur = ids0.shape[1]
    keep = max(2, 1 + len(eos)) * nb  # candidates per input
    top_mask = np.arange(keep) < nb
    eos_arr = np.asarray(eos, np.int64)
    fill = ((pad or eos[0]) if eos else -1)  # transformers: `pad_token_id or eos_token_id[0] if eos ... else -1`

    run_seq = np.full((batch, nb, max_len), fill, np.int64)
    run_seq[:, :, :cur] = ids0.reshape(batch, nb, cur)
    seqs = run_seq.copy()
    run_scores = np.zeros((batch, nb), np.float32)
    run_scores[:, 1:] = BIG
    beam_scores = np.full((batch, nb), BIG, np.float32)
    finished = np.zeros((batch, nb), bool)
    unsatisfied = np.ones((batch, 1), bool)
    run_bi = np.full((batch, nb, max_len - cur), -1, np.int64)
    bi = run_bi.copy()
    offsets = (np.arange(batch) * nb)[:, None]
    scores_out, raw = [], []
    trace = BeamTrace.empty() if want_trace else None

    while True:
        flat = run_seq[:, :, :cur].reshape(batch * nb, cur)
        logits = session.step(flat, cur)  # [R, V] float32
        xp = array_module(logits)
        if gc.output_logits:
            raw.append(logits.copy())
        logp = apply_processors(procs, flat, _log_softmax_in_place(session.model.kernels, logits))  # [R, V]
        if gc.output_scores:
            scores_out.append(logp.copy())
        acc = (logp.reshape(batch, nb, vocab) + xp.asarray(run_scores)[:, :, None]).reshape(batch, nb * vocab)
        if gc.do_sample:  # Gumbel-top-k = multinomial without replacement from softmax(acc)
            g = xp.asarray(rng.gumbel(size=acc.shape).astype(np.float32))
            _, cand = _top_k_backend(acc + g, keep)
            vals = np.asarray(to_host(xp.take_along_axis(acc, xp.asarray(cand), axis=1)))
        else:
            vals, cand = _top_k_backend(acc, keep)  # [B, 2K] accumulated log-probs, flat indices
        src = cand // vocab  # beam each candidate extends
        tok = cand % vocab
        cand_bi = _gather(run_bi, src)
        cand_seq = _gather(run_seq, src)
        cand_seq[:, :, cur] = tok
        cand_bi[:, :, cur - prompt] = src + offsets
        hits = np.full(tok.shape, cur + 1 >= max_len)
        if eos:
            hits |= np.isin(tok, eos_arr)

        # running beams: the K best candidates that did not just finish
        run_lp = vals + hits.astype(np.float32) * BIG
        nxt = _top_k_host(run_lp, nb)
        run_seq, run_scores, run_bi = _gather(cand_seq, nxt), _gather(run_lp, nxt), _gather(cand_bi, nxt)

        # finished hypotheses: candidates among the top K that hit eos / max_length, length-penalised
        just = hits & top_mask[None, :]
        fin = vals / np.float32((cur + 1 - prompt) ** lp)
        full = finished.all(axis=1, keepdims=True) & (es is True)
        fin = fin + full.astype(np.float32) * BIG
        fin = fin + (~unsatisfied).astype(np.float32) * BIG
        fin = fin + (~just).astype(np.float32) * BIG
        m_scores = np.concatenate([beam_scores, fin], axis=1)
        best = _top_k_host(m_scores, nb)
        seqs = _gather(np.concatenate([seqs, cand_seq], axis=1), best)
        beam_scores = _gather(m_scores, best)
        bi = _gather(np.concatenate([bi, cand_bi], axis=1), best)
        finished = _gather(np.concatenate([finished, just], axis=1), best)

        session.record("scores", logp)
        session.record("next_tokens", run_seq[:, :, cur])
        session.record("beam_indices", run_bi[:, :, cur - prompt].reshape(-1))
        session.record("beam_scores", run_scores)
        session.reorder(run_bi[:, :, cur - prompt].reshape(-1))
        if trace is not None:
            trace.add(step=cur - prompt, cand_tokens=tok, cand_beams=src, cand_scores=vals, cand_finished=hits,
                      chosen=nxt, running_scores=run_scores, hyp_scores=beam_scores, hyp_finished=finished)
        cur += 1

        # early-stop heuristic and the loop condition
        best_len = (max_len - prompt) if (es == "never" and lp > 0.0) else (cur - prompt)
        best_running = run_scores[:, :1] / np.float32(best_len ** lp)
        worst = np.where(finished, beam_scores.min(axis=1, keepdims=True), BIG)
        unsatisfied = unsatisfied & (best_running > worst).any(axis=-1, keepdims=True)
        go_on = unsatisfied.any() and not (finished.all() and es is True) and not hits.all()
        if not go_on:
            break

    nrs = gc.num_return_sequences
    seqs = seqs[:, :nrs].reshape(batch * nrs, max_len)
    final_scores = beam_scores[:, :nrs].reshape(-1)
    bi = bi[:, :nrs].reshape(batch * nrs, -1)
    gen_len = int((bi != -1).sum(axis=1).max())
    return GenerateOutput(
        sequences=seqs[:, :prompt + gen_len].copy(),
        sequences_scores=final_scores if gc.output_scores else None,
        scores=tuple(scores_out) if gc.output_scores else None,
        logits=tuple(raw) if gc.output_logits else None,
        beam_indices=bi[:, :gen_len].copy(),
        beam_trace=trace.stacked() if trace is not None else None,
    )
