"""generate()'s keyword surface against transformers 4.57.6 generate(), live, on the peaked tiny models of
tests/generation_models.py: ``input_ids=``, model kwargs (``token_type_ids``, ``attention_mask``),
``output_attentions`` / ``output_hidden_states`` (every step, greedy / sampling / beam search),
``output_logits``, ``remove_invalid_values``, ``use_cache=False``, and decoder classes loaded without
``is_decoder`` (transformers generates from them bidirectionally, with its KV cache).

Sequences must be identical; scores within 1e-4 (as tests/test_generation_parity.py); every step's
attentions and hidden states within the ``generate_attn`` / ``generate_hidden`` rows of tests/tolerances.py.
"""

import warnings

import numpy as np
import pytest

import refimpl
from generation_models import PAD, START, VOCAB, _choose_eos, _peaked, build_decoder, build_encoder_decoder
from generation_models import prompt_batch, source_batch
from reference import reference
from test_generation_parity import compare_generate
from tolerances import TOLERANCES

pytestmark = pytest.mark.parity


def _hf_generate(hf, ids, **kw):
    torch, _ = reference()
    kw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(torch.tensor(ids), **kw)


def compare_steps(want, got, kind, dtype, context):
    """want: transformers' per-step tuple of per-layer tensors; got: refimpl's. Same number of steps and
    layers, same shapes, values within the tolerance table's ``kind`` row."""
    from refimpl.compare import compare

    atol, rtol = TOLERANCES[np.dtype(dtype).name][kind]
    assert got is not None, f"{context}: refimpl returned None"
    assert len(want) == len(got), f"{context}: {len(want)} steps in transformers, {len(got)} in refimpl"
    worst = 0.0
    for step, (w_layers, g_layers) in enumerate(zip(want, got)):
        assert len(w_layers) == len(g_layers), f"{context}: step {step}: {len(w_layers)} vs {len(g_layers)} layers"
        for layer, (w, g) in enumerate(zip(w_layers, g_layers)):
            w, g = w.numpy(), np.asarray(g)
            assert w.shape == g.shape, f"{context}: step {step} layer {layer}: shape {w.shape} vs {g.shape}"
            report = compare(f"{context} step {step} layer {layer}", g, w, atol, rtol)
            assert report.ok, str(report)
            worst = max(worst, float(np.abs(g.astype(np.float64) - w).max()))
    return worst


def compare_layers(want, got, kind, dtype, context):
    """One tuple of per-layer tensors (the encoder's)."""
    return compare_steps((want,), (got,), kind, dtype, context)


# --- models ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["bert", "bert-generation"])
def seq2seq(request, tmp_path_factory):
    model, path, eos = build_encoder_decoder(tmp_path_factory.mktemp("ed"), request.param)
    return request.param, model, path, eos


DECODER_CLASSES = {"bert": "BertLMHeadModel", "bert-relative": "BertLMHeadModel",
                   "bert-generation": "BertGenerationDecoder"}


@pytest.fixture(scope="module", params=["bert", "bert-generation", "bert-relative"])
def decoder_only(request, tmp_path_factory):
    model, path, eos = build_decoder(tmp_path_factory.mktemp("dec"), request.param)
    return request.param, model, path, eos


def _load(kind, path, dtype="float32"):
    if kind == "ed":
        return refimpl.EncoderDecoderModel.from_pretrained(path, dtype=dtype)
    return getattr(refimpl, DECODER_CLASSES.get(kind, kind)).from_pretrained(path, dtype=dtype)


def build_non_decoder(tmp_path, cls_name, seed=0):
    """(hf_model, directory, eos) of a peaked decoder class built *without* is_decoder (transformers warns
    and runs it as an encoder): BertLMHeadModel, RobertaForCausalLM or BertGenerationDecoder."""
    torch, transformers = reference()
    common = dict(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=37,
                  num_hidden_layers=2, attn_implementation="eager", is_decoder=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cls_name == "RobertaForCausalLM":
            cfg = transformers.RobertaConfig(pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                             max_position_embeddings=40, **common)
        elif cls_name == "BertGenerationDecoder":
            cfg = transformers.BertGenerationConfig(pad_token_id=PAD, bos_token_id=START, eos_token_id=4, **common)
        else:
            cfg = transformers.BertConfig(pad_token_id=PAD, **common)
        model = _peaked(torch, getattr(transformers, cls_name)(cfg), seed)
    ids, mask = prompt_batch()
    if cls_name == "RobertaForCausalLM":
        ids[mask == 0] = 1
    eos = _choose_eos(torch, model, ids, mask, False)
    model.config.eos_token_id = eos
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = model.config.pad_token_id
    path = tmp_path / f"nondec-{cls_name}-{seed}"
    model.save_pretrained(path)
    return model, path, eos


# --- input_ids= and model kwargs --------------------------------------------------------------------


def test_input_ids_keyword(seq2seq, decoder_only):
    """input_ids= is the same input as the first argument (transformers' main_input_name), for an
    encoder-decoder (the encoder's input) and a decoder-only model (the prompt)."""
    for (kind, hf, path, eos), (ids, mask), load_kind in ((seq2seq, source_batch(), "ed"),
                                                           (decoder_only, prompt_batch(), decoder_only[0])):
        mine = _load(load_kind, path)
        torch, _ = reference()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = hf.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=6,
                               num_beams=2).numpy()
        got = mine.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, num_beams=2)
        assert want.shape == got.shape and (want == got).all(), f"{kind}: input_ids= differs from transformers"
        assert (mine.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=2) == got).all()


@pytest.mark.parametrize("opts", [dict(), dict(num_beams=3), dict(num_beams=2, num_return_sequences=2)],
                         ids=["greedy", "beam3", "beam2x2"])
def test_decoder_only_token_type_ids(tmp_path_factory, opts):
    """A BertLMHeadModel prompt with token types: transformers extends them with the last column at every
    step; the types change the result (checked: not equal to the run without them)."""
    hf, path, eos = build_decoder(tmp_path_factory.mktemp("tt"), "bert", seed=2)
    mine = _load("bert", path)
    ids, mask = prompt_batch()
    types = np.zeros_like(ids)
    types[0, 3:] = 1
    types[2, :] = 1
    want = _hf_generate(hf, ids, attention_mask=mask, token_type_ids=types, max_new_tokens=8,
                        return_dict_in_generate=True, output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, token_type_ids=types, max_new_tokens=8,
                        return_dict_in_generate=True, output_scores=True, **opts)
    compare_generate(want, got, f"token_type_ids {opts}")
    plain = mine.generate(ids, attention_mask=mask, max_new_tokens=8, return_dict_in_generate=True,
                          output_scores=True, **opts)
    assert not all(np.allclose(a, b) for a, b in zip(plain.scores, got.scores)), "token types had no effect"


@pytest.mark.parametrize("opts", [dict(), dict(num_beams=3)], ids=["greedy", "beam3"])
def test_encoder_decoder_token_type_ids(tmp_path_factory, opts):
    """bert2bert: token_type_ids go to the encoder (transformers' _prepare_encoder_decoder_kwargs_for_generation)."""
    hf, path, eos = build_encoder_decoder(tmp_path_factory.mktemp("edtt"), "bert", seed=3)
    mine = _load("ed", path)
    ids, mask = source_batch()
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    want = _hf_generate(hf, ids, attention_mask=mask, token_type_ids=types, max_new_tokens=8,
                        return_dict_in_generate=True, output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, token_type_ids=types, max_new_tokens=8,
                        return_dict_in_generate=True, output_scores=True, **opts)
    compare_generate(want, got, f"encoder token_type_ids {opts}")
    plain = mine.generate(ids, attention_mask=mask, max_new_tokens=8, return_dict_in_generate=True,
                          output_scores=True, **opts)
    assert not np.allclose(plain.scores[0], got.scores[0]), "token types had no effect"


# --- output_attentions / output_hidden_states ----------------------------------------------------------

SEARCHES = [dict(), dict(do_sample=True, top_k=1), dict(num_beams=3), dict(num_beams=3, num_return_sequences=2)]
SEARCH_IDS = ["greedy", "sample-top1", "beam3", "beam3x2"]


@pytest.mark.parametrize("opts", SEARCHES, ids=SEARCH_IDS)
def test_decoder_only_attentions_hidden_states(decoder_only, opts):
    """Every step's attentions [R, N, S, T] and hidden states [R, S, D] (S: the prompt, then 1), and the raw
    logits. Sampling with top_k=1 is deterministic, so it is compared token for token too."""
    kind, hf, path, eos = decoder_only
    mine = _load(kind, path)
    ids, mask = prompt_batch()
    kw = dict(attention_mask=mask, max_new_tokens=7, return_dict_in_generate=True, output_scores=True,
              output_logits=True, output_attentions=True, output_hidden_states=True, **opts)
    want = _hf_generate(hf, ids, **kw)
    got = mine.generate(ids, seed=0, **kw)
    compare_generate(want, got, f"{kind} {opts}")
    assert len(want.logits) == len(got.logits)
    for a, b in zip(want.logits, got.logits):
        assert np.allclose(a.numpy(), b, atol=1e-4, rtol=0)
    compare_steps(want.attentions, got.attentions, "generate_attn", np.float32, f"{kind} {opts} attentions")
    compare_steps(want.hidden_states, got.hidden_states, "generate_hidden", np.float32, f"{kind} {opts} hidden")
    assert got.decoder_attentions is None and got.encoder_attentions is None


@pytest.mark.parametrize("opts", SEARCHES, ids=SEARCH_IDS)
def test_encoder_decoder_attentions_hidden_states(seq2seq, opts):
    """encoder_attentions / encoder_hidden_states (once, [B, ...], not repeated per beam, as transformers),
    and per step decoder_attentions, cross_attentions, decoder_hidden_states."""
    kind, hf, path, eos = seq2seq
    mine = _load("ed", path)
    ids, mask = source_batch()
    kw = dict(attention_mask=mask, max_new_tokens=7, return_dict_in_generate=True, output_scores=True,
              output_attentions=True, output_hidden_states=True, **opts)
    want = _hf_generate(hf, ids, **kw)
    got = mine.generate(ids, seed=0, **kw)
    compare_generate(want, got, f"{kind} {opts}")
    compare_layers(want.encoder_attentions, got.encoder_attentions, "generate_attn", np.float32, "encoder_attentions")
    compare_layers(want.encoder_hidden_states, got.encoder_hidden_states, "generate_hidden", np.float32,
                   "encoder_hidden_states")
    for field in ("decoder_attentions", "cross_attentions"):
        compare_steps(getattr(want, field), getattr(got, field), "generate_attn", np.float32, f"{kind} {opts} {field}")
    compare_steps(want.decoder_hidden_states, got.decoder_hidden_states, "generate_hidden", np.float32,
                  f"{kind} {opts} decoder_hidden_states")
    assert got.attentions is None and got.hidden_states is None


@pytest.mark.parametrize("kind", ["ed", "bert-relative"])
def test_attentions_hidden_states_float64(tmp_path_factory, kind):
    """float64 models on both sides: the per-step tensors agree to the float64 rows."""
    d = tmp_path_factory.mktemp("f64")
    hf, path, eos = (build_encoder_decoder(d, "bert", seed=4) if kind == "ed" else build_decoder(d, kind, seed=4))
    hf = hf.double()
    mine = _load(kind, path, dtype="float64")
    ids, mask = source_batch() if kind == "ed" else prompt_batch()
    kw = dict(attention_mask=mask, max_new_tokens=6, num_beams=2, return_dict_in_generate=True,
              output_attentions=True, output_hidden_states=True)
    want = _hf_generate(hf, ids, **kw)
    got = mine.generate(ids, **kw)
    assert (want.sequences.numpy() == got.sequences).all()
    if kind == "ed":
        pairs = [("decoder_attentions", "generate_attn"), ("cross_attentions", "generate_attn"),
                 ("decoder_hidden_states", "generate_hidden")]
        compare_layers(want.encoder_hidden_states, got.encoder_hidden_states, "generate_hidden", np.float64, "encoder")
    else:
        pairs = [("attentions", "generate_attn"), ("hidden_states", "generate_hidden")]
    for field, row in pairs:
        compare_steps(getattr(want, field), getattr(got, field), row, np.float64, f"float64 {kind} {field}")


# --- remove_invalid_values ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nan_decoder(tmp_path_factory):
    """A BertLMHeadModel whose LM-head bias is nan at token 7 and +inf at token 8 (so every step's logits hold nan
    and inf), saved by transformers."""
    torch, _ = reference()
    hf, path, eos = build_decoder(tmp_path_factory.mktemp("nan"), "bert", seed=5)
    with torch.no_grad():
        hf.cls.predictions.bias[7] = float("nan")
        hf.cls.predictions.bias[8] = float("inf")
    hf.save_pretrained(path)
    return hf, path, eos


def test_remove_invalid_values_nan_inf(nan_decoder):
    """nan -> 0 and +inf -> float32 max before the argmax, in transformers' processor order (after
    bad_words / min_new_tokens, whose -inf become float32 min)."""
    hf, path, eos = nan_decoder
    mine = _load("bert", path)
    ids, mask = prompt_batch()
    kw = dict(attention_mask=mask, max_new_tokens=6, return_dict_in_generate=True, output_scores=True,
              remove_invalid_values=True, bad_words_ids=[[8]], min_new_tokens=2)
    want = _hf_generate(hf, ids, **kw)
    got = mine.generate(ids, **kw)
    compare_generate(want, got, "remove_invalid_values")
    assert all(np.isfinite(s).all() for s in got.scores)
    # token 7: nan -> 0; token 8: +inf, banned by adding -inf (transformers' bias) -> nan -> 0;
    # eos during min_new_tokens: -inf -> float32 min
    assert (got.scores[0][:, 7] == 0).all() and (got.scores[0][:, 8] == 0).all()
    assert (got.scores[0][:, eos] == np.finfo(np.float32).min).all()
    raw = mine.generate(ids, **dict(kw, remove_invalid_values=False))
    assert np.isnan(raw.scores[0][:, 7]).all(), "without remove_invalid_values the nan logits stay"


@pytest.mark.parametrize("opts", [dict(num_beams=3), dict(num_beams=2, bad_words_ids=[[9]], min_new_tokens=3)],
                         ids=["beam3", "beam2-banned"])
def test_remove_invalid_values_beam_search(decoder_only, opts):
    """Beam search with remove_invalid_values: banned tokens get float32 min instead of -inf."""
    kind, hf, path, eos = decoder_only
    mine = _load(kind, path)
    ids, mask = prompt_batch()
    kw = dict(attention_mask=mask, max_new_tokens=7, return_dict_in_generate=True, output_scores=True,
              remove_invalid_values=True, **opts)
    want = _hf_generate(hf, ids, **kw)
    got = mine.generate(ids, **kw)
    compare_generate(want, got, f"{kind} remove_invalid_values {opts}")


# --- use_cache=False ---------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", [dict(), dict(num_beams=3), dict(num_beams=3, num_return_sequences=2)],
                         ids=["greedy", "beam3", "beam3x2"])
def test_use_cache_false(decoder_only, seq2seq, opts):
    """use_cache=False: the whole sequence at every step. For BERT with relative positions this is not the
    cached result (the cached prompt gets transformers' T - 1 quirk), and refimpl follows each."""
    for (kind, hf, path, eos), load_kind, (ids, mask) in ((decoder_only, decoder_only[0], prompt_batch()),
                                                           (seq2seq, "ed", source_batch())):
        mine = _load(load_kind, path)
        kw = dict(attention_mask=mask, max_new_tokens=7, return_dict_in_generate=True, output_scores=True,
                  use_cache=False, output_attentions=True, **opts)
        want = _hf_generate(hf, ids, **kw)
        got = mine.generate(ids, **kw)
        compare_generate(want, got, f"{kind} use_cache=False {opts}")
        field = "decoder_attentions" if load_kind == "ed" else "attentions"
        compare_steps(getattr(want, field), getattr(got, field), "generate_attn", np.float32,
                      f"{kind} use_cache=False {field}")
        assert got.decoder_calls == len(got.scores)


# --- decoder classes without is_decoder --------------------------------------------------------------


@pytest.fixture(scope="module", params=["BertLMHeadModel", "RobertaForCausalLM", "BertGenerationDecoder"])
def non_decoder(request, tmp_path_factory):
    hf, path, eos = build_non_decoder(tmp_path_factory.mktemp("nondec"), request.param)
    return request.param, hf, path, eos


@pytest.mark.parametrize("opts", [dict(), dict(num_beams=3), dict(use_cache=False), dict(num_beams=2, use_cache=False),
                                  dict(do_sample=True, top_k=1)],
                         ids=["greedy", "beam3", "no-cache", "beam2-no-cache", "sample-top1"])
def test_generate_without_is_decoder(non_decoder, opts):
    """transformers warns ("If you want to use `BertLMHeadModel` as a standalone, add `is_decoder=True.`")
    and generates: bidirectional attention, and with use_cache the prompt's K/V cached. refimpl warns
    likewise and generates the same tokens; the attentions match too (bidirectional over the prompt)."""
    cls_name, hf, path, eos = non_decoder
    mine = getattr(refimpl, cls_name).from_pretrained(path)
    assert not mine.config.is_decoder
    ids, mask = prompt_batch()
    if cls_name == "RobertaForCausalLM":
        ids[mask == 0] = 1
    kw = dict(attention_mask=mask, max_new_tokens=7, return_dict_in_generate=True, output_scores=True,
              output_attentions=True, **opts)
    want = _hf_generate(hf, ids, **kw)
    with pytest.warns(UserWarning, match=rf"If you want to use `{cls_name}` as a standalone, add `is_decoder=True.`"):
        got = mine.generate(ids, seed=0, **kw)
    compare_generate(want, got, f"{cls_name} without is_decoder {opts}")
    compare_steps(want.attentions, got.attentions, "generate_attn", np.float32, f"{cls_name} {opts} attentions")
    first = np.asarray(got.attentions[0][0])  # [R, N, S, S]: the prompt attends both ways
    assert (first[:, :, 0, -1] > 0).all(), "the first prompt token should see the last one (bidirectional)"


# --- suppress_tokens, begin_suppress_tokens, renormalize_logits ---------------------------------------


@pytest.mark.parametrize("opts", [dict(suppress_tokens=[11, 12]), dict(begin_suppress_tokens=[13, 14]),
                                  dict(renormalize_logits=True, repetition_penalty=1.5),
                                  dict(num_beams=3, suppress_tokens=[11], begin_suppress_tokens=[12],
                                       renormalize_logits=True)],
                         ids=["suppress", "begin-suppress", "renormalize", "beam3-all"])
def test_suppress_and_renormalize(decoder_only, seq2seq, opts):
    """transformers' SuppressTokens / SuppressTokensAtBegin processors and LogitNormalization (last). The
    suppressed ids are chosen among the tokens the plain run emits, so the options change the result."""
    for (kind, hf, path, eos), load_kind, (ids, mask) in ((decoder_only, decoder_only[0], prompt_batch()),
                                                           (seq2seq, "ed", source_batch())):
        mine = _load(load_kind, path)
        plain = mine.generate(ids, attention_mask=mask, max_new_tokens=6)
        first = plain[:, ids.shape[1] if load_kind != "ed" else 1]
        used = sorted({int(t) for t in first if t not in (eos, PAD)})[:2]  # tokens of the first generated position
        opts = dict(opts)
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            if name in opts:
                opts[name] = used
        kw = dict(attention_mask=mask, max_new_tokens=6, return_dict_in_generate=True, output_scores=True, **opts)
        want = _hf_generate(hf, ids, **kw)
        got = mine.generate(ids, **kw)
        compare_generate(want, got, f"{kind} {opts}")
        if "renormalize_logits" not in opts or len(opts) > 2:
            assert got.sequences.shape != plain.shape or (got.sequences != plain).any(), f"{opts} had no effect"
