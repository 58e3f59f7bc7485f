"""generate() against transformers 4.57.6 generate(), live, on peaked tiny models (tests/generation_models.py).

Sequences must be identical (shape and every token); sequences_scores within 1e-4; beam_indices identical;
the per-step processed scores equal where finite (1e-4) with the same -inf pattern. Greedy and beam search
over the option combinations of the issue, batches with padding, num_return_sequences; encoder-decoders
(bert2bert with enc_to_dec_proj, BertGeneration pair) and decoder-only models (BertLMHeadModel,
BertGenerationDecoder, left-padded prompts).
"""

import warnings

import numpy as np
import pytest

import refimpl
from generation_models import PAD, START, build_decoder, build_encoder_decoder, prompt_batch, source_batch
from reference import reference

pytestmark = pytest.mark.parity

SCORE_TOL = 1e-4  # float32 log-prob sums over <= 16 steps; measured differences are <= 4e-6

OPTIONS = [
    dict(),
    dict(max_length=9),
    dict(min_new_tokens=4),
    dict(min_length=6),
    dict(repetition_penalty=1.7),
    dict(no_repeat_ngram_size=2),
    dict(bad_words_ids=[[7], [11, 12]]),
    dict(forced_bos_token_id=9),
    dict(forced_eos_token_id=8, max_length=7),
    dict(eos_token_id="list"),
    dict(num_beams=3),
    dict(num_beams=4, num_return_sequences=3),
    dict(num_beams=3, length_penalty=0.3),
    dict(num_beams=3, length_penalty=-1.0),
    dict(num_beams=3, length_penalty=2.0, early_stopping="never"),
    dict(num_beams=3, early_stopping=True),
    dict(num_beams=4, early_stopping=True, num_return_sequences=2, length_penalty=0.0),
    dict(num_beams=2, no_repeat_ngram_size=2, repetition_penalty=1.3),
    dict(num_beams=3, min_new_tokens=5, bad_words_ids=[[13]]),
    dict(num_beams=3, eos_token_id="list", early_stopping="never"),
    dict(num_beams=2, forced_bos_token_id=9, forced_eos_token_id=8, max_length=8),
    dict(num_beams=3, max_length=11, pad_token_id=1),
]


def _opts(opts, eos):
    opts = dict(opts)
    if opts.get("eos_token_id") == "list":
        opts["eos_token_id"] = [eos, 17]
    if "max_length" not in opts:
        opts["max_new_tokens"] = 12
    return opts


def compare_generate(hf_out, mine, context):
    hs = hf_out.sequences.numpy()
    assert hs.shape == mine.sequences.shape and (hs == mine.sequences).all(), (
        f"{context}: sequences differ\ntransformers:\n{hs}\nrefimpl:\n{mine.sequences}"
    )
    if hf_out.get("sequences_scores") is not None:
        d = np.abs(hf_out.sequences_scores.numpy() - mine.sequences_scores).max()
        assert d <= SCORE_TOL, f"{context}: sequences_scores differ by {d}"
        assert (hf_out.beam_indices.numpy() == mine.beam_indices).all(), f"{context}: beam_indices differ"
    if hf_out.get("scores") is not None:
        assert len(hf_out.scores) == len(mine.scores), f"{context}: {len(hf_out.scores)} vs {len(mine.scores)} steps"
        for step, (a, b) in enumerate(zip(hf_out.scores, mine.scores)):
            a = a.numpy()
            assert (np.isfinite(a) == np.isfinite(b)).all(), f"{context}: step {step}: -inf patterns differ"
            fin = np.isfinite(a)
            assert np.allclose(a[fin], b[fin], atol=SCORE_TOL, rtol=0), f"{context}: step {step}: scores differ"


@pytest.fixture(scope="module", params=["bert", "bert-generation"])
def seq2seq(request, tmp_path_factory):
    model, path, eos = build_encoder_decoder(tmp_path_factory.mktemp("ed"), request.param)
    return request.param, model, refimpl.EncoderDecoderModel.from_pretrained(path), eos


@pytest.fixture(scope="module", params=["bert", "bert-generation", "bert-relative"])
def decoder_only(request, tmp_path_factory):
    model, path, eos = build_decoder(tmp_path_factory.mktemp("dec"), request.param)
    cls = refimpl.BertGenerationDecoder if request.param == "bert-generation" else refimpl.BertLMHeadModel
    return request.param, model, cls.from_pretrained(path), eos


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "greedy")
def test_encoder_decoder_generate(seq2seq, opts):
    torch, _ = reference()
    kind, hf, mine, eos = seq2seq
    opts = _opts(opts, eos)
    ids, mask = source_batch()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), return_dict_in_generate=True,
                           output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True, **opts)
    compare_generate(want, got, f"{kind} {opts}")


@pytest.mark.parametrize("opts", [o for o in OPTIONS if "forced_bos_token_id" not in o],
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "greedy")
def test_decoder_only_generate(decoder_only, opts):
    torch, _ = reference()
    kind, hf, mine, eos = decoder_only
    opts = _opts(opts, eos)
    if "max_length" in opts:
        opts["max_length"] += 5  # the prompt counts
    ids, mask = prompt_batch()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), return_dict_in_generate=True,
                           output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True, **opts)
    compare_generate(want, got, f"{kind} decoder-only {opts}")


def test_padding_inferred_from_pad_token(seq2seq):
    """No attention_mask: both infer it from the pad token in the input (transformers' rule)."""
    torch, _ = reference()
    kind, hf, mine, eos = seq2seq
    ids, _ = source_batch()
    with torch.no_grad():
        want = hf.generate(torch.tensor(ids), num_beams=3, max_new_tokens=10)
    assert (want.numpy() == mine.generate(ids, num_beams=3, max_new_tokens=10)).all()


def test_decoder_input_ids_prefix(seq2seq):
    """decoder_input_ids without the start token: transformers prepends it; so do we."""
    torch, _ = reference()
    kind, hf, mine, eos = seq2seq
    ids, mask = source_batch()
    prefix = np.array([[21, 22]] * ids.shape[0])
    with torch.no_grad():
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), decoder_input_ids=torch.tensor(prefix),
                           max_new_tokens=8, num_beams=2)
    got = mine.generate(ids, attention_mask=mask, decoder_input_ids=prefix, max_new_tokens=8, num_beams=2)
    assert (want.numpy() == got).all()


@pytest.mark.slow
def test_bert2bert_minilm_beam4(minilm_dir, tmp_path):
    """bert2bert warm-started from the real all-MiniLM-L6-v2 (cross-attention and LM-head transform
    initialised by transformers, saved, loaded by refimpl): beam search of 4."""
    torch, transformers = reference()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
            str(minilm_dir), str(minilm_dir), encoder_attn_implementation="eager", decoder_attn_implementation="eager"
        ).eval()
    assert type(hf.decoder).__name__ == "BertLMHeadModel"
    hf.config.decoder_start_token_id, hf.config.pad_token_id, hf.config.eos_token_id = 101, 0, 102
    hf.generation_config.decoder_start_token_id, hf.generation_config.pad_token_id = 101, 0
    hf.generation_config.eos_token_id = 102
    hf.save_pretrained(tmp_path / "b2b")
    mine = refimpl.EncoderDecoderModel.from_pretrained(tmp_path / "b2b")
    tok = refimpl.BertTokenizer.from_pretrained(minilm_dir)
    enc = tok(["The quick brown fox jumps over the lazy dog.", "A short one."], padding=True, return_tensors="np")
    opts = dict(num_beams=4, max_new_tokens=12, num_return_sequences=2, return_dict_in_generate=True, output_scores=True)
    with torch.no_grad():
        want = hf.generate(torch.tensor(enc["input_ids"]), attention_mask=torch.tensor(enc["attention_mask"]), **opts)
    got = mine.generate(enc["input_ids"], attention_mask=enc["attention_mask"], **opts)
    compare_generate(want, got, "bert2bert MiniLM beam 4")


def test_defaults_from_generation_config_json(tmp_path):
    """Without keyword arguments both read num_beams, max_length, length_penalty, eos from the checkpoint's
    generation_config.json."""
    torch, _ = reference()
    hf, path, eos = build_encoder_decoder(tmp_path, "bert", seed=1)
    gc = hf.generation_config
    gc.num_beams, gc.max_length, gc.length_penalty, gc.no_repeat_ngram_size = 3, 10, 0.7, 2
    hf.save_pretrained(path)
    mine = refimpl.EncoderDecoderModel.from_pretrained(path)
    ids, mask = source_batch()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask)).numpy()
    got = mine.generate(ids, attention_mask=mask)
    assert want.shape == got.shape and (want == got).all()
