"""roberta2roberta (EncoderDecoderModel with RobertaModel / RobertaForCausalLM) and decoder-only
RobertaForCausalLM against transformers 4.57.6, live.

- forward with labels (hypothesis: random tiny configs, roberta or bert on either side, float32 and
  float64): every hidden state, attention, cross-attention, logits and loss within tests/tolerances.py;
- ``generate`` on peaked tiny models (weights x6 as tests/generation_models.py, so ties cannot decide):
  greedy and beam search on a padded batch, num_return_sequences; identical sequences, sequences_scores
  within 1e-4 (compare_generate of tests/test_generation_parity.py);
- warm start ``from_encoder_decoder_pretrained(roberta_dir, roberta_dir)``: tensors equal to the checkpoint,
  cross-attention initialised and reported, the encoder's LM head ignored and reported; transformers' own
  warm start, saved and loaded, generates the same beams.
"""

import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refimpl
from generation_models import SCALE
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs
from test_generation_parity import compare_generate

pytestmark = pytest.mark.parity

VOCAB, BOS, PAD = 99, 0, 1  # RoBERTa's <s> (the decoder start) and <pad>
COMMON = dict(vocab_size=VOCAB, num_attention_heads=4, intermediate_size=37, num_hidden_layers=2,
              max_position_embeddings=40, pad_token_id=PAD, bos_token_id=BOS, attn_implementation="eager")


def _peaked(torch, model, seed):
    """Weights normal(0, 0.02 x SCALE), vectors normal(0, 0.02), every LayerNorm weight 1 (RobertaLMHead's
    is named ``layer_norm``): a peaked next-token distribution."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02 * SCALE) if p.dim() > 1 else p.normal_(0.0, 0.02)
    return model.eval()


def source_batch(seed=0, batch=3, length=9):
    """Encoder input <s> ... with right padding (pad tokens, mask 0) in the second row."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, length))
    ids[:, 0] = BOS
    mask = np.ones_like(ids)
    mask[1, length - 3:] = 0
    ids[1, length - 3:] = PAD
    return ids, mask


def _choose_eos(torch, model, ids, mask, gen_from):
    """A token greedy search emits around step 3: rows then finish at different steps."""
    with torch.no_grad():
        out = model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=8,
                             do_sample=False, num_beams=1).numpy()[:, gen_from:]
    counts = np.bincount(out[:, 2:5].ravel(), minlength=VOCAB)
    counts[[BOS, PAD]] = 0
    return int(counts.argmax())


def _set_tokens(model, eos, seq2seq):
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id, cfg.pad_token_id = eos, PAD
        if seq2seq:
            cfg.decoder_start_token_id = BOS


@pytest.fixture(scope="module")
def roberta2roberta(tmp_path_factory):
    """(hf, refimpl, eos): peaked roberta2roberta, hidden 32 -> 24 (enc_to_dec_proj), saved and loaded."""
    torch, transformers = reference()
    enc = transformers.RobertaConfig(hidden_size=32, **COMMON)
    dec = transformers.RobertaConfig(hidden_size=24, is_decoder=True, add_cross_attention=True, **COMMON)
    cfg = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.pad_token_id, cfg.decoder_start_token_id = PAD, BOS
    hf = _peaked(torch, transformers.EncoderDecoderModel(cfg), 1)
    with torch.no_grad():  # a stronger cross-attention: the rows' outputs differ and end at different steps
        for name, p in hf.named_parameters():
            if "crossattention" in name and p.dim() > 1:
                p.mul_(2.0)
    _set_tokens(hf, 2, True)
    ids, mask = source_batch()
    eos = _choose_eos(torch, hf, ids, mask, 1)
    _set_tokens(hf, eos, True)
    path = tmp_path_factory.mktemp("r2r")
    hf.save_pretrained(path)
    mine = refimpl.EncoderDecoderModel.from_pretrained(path)
    assert type(mine.decoder).__name__ == "RobertaForCausalLM" and type(mine.encoder).__name__ == "RobertaModel"
    return hf, mine, eos


GENERATE_OPTIONS = [
    dict(),
    dict(num_beams=3),
    dict(num_beams=3, num_return_sequences=3),
    dict(num_beams=4, num_return_sequences=2, length_penalty=0.3, early_stopping=True),
    dict(num_beams=3, no_repeat_ngram_size=2, min_new_tokens=4),
    dict(repetition_penalty=1.5, max_length=9),
]


def _opt_id(o):
    return ",".join(f"{k}={v}" for k, v in o.items()) or "greedy"


@pytest.mark.parametrize("opts", GENERATE_OPTIONS, ids=_opt_id)
def test_roberta2roberta_generate(roberta2roberta, opts):
    torch, _ = reference()
    hf, mine, eos = roberta2roberta
    opts = dict(opts) if "max_length" in opts else dict(opts, max_new_tokens=12)
    ids, mask = source_batch()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), return_dict_in_generate=True,
                           output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True, **opts)
    compare_generate(want, got, f"roberta2roberta {opts}")


def test_roberta2roberta_generate_padding_inferred_and_prefix(roberta2roberta):
    """No attention_mask (inferred from the pad token) and decoder_input_ids without <s> (prepended)."""
    torch, _ = reference()
    hf, mine, eos = roberta2roberta
    ids, _ = source_batch()
    prefix = np.array([[21, 22]] * 3)
    with torch.no_grad():
        want = hf.generate(torch.tensor(ids), num_beams=3, max_new_tokens=8, decoder_input_ids=torch.tensor(prefix))
    assert np.array_equal(want.numpy(), mine.generate(ids, num_beams=3, max_new_tokens=8, decoder_input_ids=prefix))


@pytest.mark.parametrize("opts", [dict(), dict(num_beams=3, num_return_sequences=2)], ids=_opt_id)
def test_decoder_only_roberta_generate(tmp_path, opts):
    """RobertaForCausalLM alone on left-padded prompts (transformers passes positions cumsum(mask) - 1)."""
    torch, transformers = reference()
    hf = _peaked(torch, transformers.RobertaForCausalLM(transformers.RobertaConfig(hidden_size=32, is_decoder=True, **COMMON)), 1)
    rng = np.random.default_rng(1)
    ids = rng.integers(5, VOCAB, (3, 6))
    mask = np.ones_like(ids)
    mask[1, :2] = 0
    ids[1, :2] = PAD
    _set_tokens(hf, 2, False)
    _set_tokens(hf, _choose_eos(torch, hf, ids, mask, ids.shape[1]), False)
    hf.save_pretrained(tmp_path)
    mine = refimpl.RobertaForCausalLM.from_pretrained(tmp_path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=10,
                           return_dict_in_generate=True, output_scores=True, **opts)
    got = mine.generate(ids, attention_mask=mask, max_new_tokens=10, return_dict_in_generate=True,
                        output_scores=True, **opts)
    compare_generate(want, got, f"decoder-only RobertaForCausalLM {opts}")


@st.composite
def sizes(draw):
    heads = draw(st.integers(1, 4))
    return dict(
        hidden_size=heads * draw(st.integers(2 if heads > 1 else 4, 8)),  # D >= 4: LayerNorm over 2 values is ill-conditioned
        num_attention_heads=heads,
        num_hidden_layers=draw(st.integers(1, 2)),
        intermediate_size=draw(st.integers(5, 37)),
        max_position_embeddings=draw(st.integers(16, 30)),
        position_embedding_type=draw(st.sampled_from(["absolute", "absolute", "relative_key_query"])),
        hidden_act=draw(st.sampled_from(["gelu", "gelu_new", "relu"])),
        initializer_range=0.3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(enc=sizes(), dec=sizes(), vocab=st.integers(20, 90), seed=st.integers(0, 2**31 - 1),
       dtype=st.sampled_from(["float32", "float64"]), kinds=st.sampled_from(
           [("roberta", "roberta"), ("roberta", "roberta"), ("bert", "roberta"), ("roberta", "bert")]))
def test_roberta2roberta_forward_with_labels(enc, dec, vocab, seed, dtype, kinds):
    torch, transformers = reference()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cls = {"roberta": transformers.RobertaConfig, "bert": transformers.BertConfig}
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        cls[kinds[0]](vocab_size=vocab, **enc),
        cls[kinds[1]](vocab_size=vocab, is_decoder=True, add_cross_attention=True, **dec))
    config.pad_token_id, config.decoder_start_token_id = PAD, BOS
    hf = transformers.EncoderDecoderModel(config).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        mine = refimpl.EncoderDecoderModel.from_pretrained(d, dtype=dtype)
    b, s, t = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 8))
    ids = rng.integers(2, vocab, (b, s))
    mask = (np.arange(s) < rng.integers(1, s + 1, (b, 1))).astype(np.int64)
    ids[mask == 0] = PAD
    labels = rng.integers(0, vocab, (b, t))
    labels[rng.random((b, t)) < 0.3] = -100  # -> pad in the decoder input: RoBERTa position padding_idx
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True, output_hidden_states=True)
    hf = hf.double() if dtype == "float64" else hf
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf_outputs(hf(**{k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}))
    got = refimpl_outputs(mine(**inputs))
    assert_outputs_match(got, want, dtype, f"{kinds[0]}2{kinds[1]} {dtype}")


def _roberta_mlm_dir(torch, transformers, path):
    """A roberta-base-like checkpoint (RobertaForMaskedLM: roberta.* + lm_head.*), peaked."""
    cfg = transformers.RobertaConfig(hidden_size=32, type_vocab_size=1, layer_norm_eps=1e-5, **COMMON)
    _peaked(torch, transformers.RobertaForMaskedLM(cfg), 3).save_pretrained(path)
    return path


def test_warm_start_from_roberta_checkpoints(tmp_path):
    """refimpl's from_encoder_decoder_pretrained(roberta_dir, roberta_dir) loads what transformers loads,
    initialises (and reports) only the decoder's cross-attention, ignores (and reports) the encoder's LM head;
    with transformers' initial cross-attention copied in, the forward with labels matches."""
    torch, transformers = reference()
    d = _roberta_mlm_dir(torch, transformers, tmp_path / "roberta")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
            str(d), str(d), encoder_attn_implementation="eager", decoder_attn_implementation="eager").eval()
    hf.config.decoder_start_token_id, hf.config.pad_token_id = BOS, PAD
    mine = refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(d, d, decoder_start_token_id=BOS,
                                                                      pad_token_id=PAD, eos_token_id=2, seed=5)
    assert type(hf.decoder).__name__ == type(mine.decoder).__name__ == "RobertaForCausalLM"
    init = mine.load_report["decoder"]["initialized"]
    assert init and all(".crossattention." in n for n in init)
    assert "lm_head.dense.weight" in mine.load_report["encoder"]["ignored"]
    hf_state = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    for name, arr in mine.params.items():
        if name[len("decoder."):] not in init:
            assert np.array_equal(arr, hf_state[name]), name
    for name in init:  # transformers' rule: normal(0, initializer_range), LayerNorm 1 / 0, biases 0
        arr = mine.decoder.params[name]
        if name.endswith("LayerNorm.weight"):
            assert (arr == 1).all(), name
        elif name.endswith("bias"):
            assert (arr == 0).all(), name
        else:
            assert abs(arr.std() - 0.02) < 0.005, name
        mine.decoder.params[name] = hf_state["decoder." + name]
    ids, mask = source_batch()
    labels = np.array([[5, 6, 7, 2], [8, 9, 2, -100], [10, 2, -100, -100]])
    with torch.no_grad():
        want = hf(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), labels=torch.tensor(labels))
    got = mine(input_ids=ids, attention_mask=mask, labels=labels)
    assert_outputs_match(refimpl_outputs(got), hf_outputs(want), "float32", "warm-started roberta2roberta")


def test_transformers_warm_start_saved_generates_same_beams(tmp_path):
    """transformers' roberta2roberta warm start (its random cross-attention), saved, loaded by refimpl: beam 3,
    two returned sequences per input, on a padded batch."""
    torch, transformers = reference()
    d = _roberta_mlm_dir(torch, transformers, tmp_path / "roberta")
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
            str(d), str(d), encoder_attn_implementation="eager", decoder_attn_implementation="eager").eval()
    hf.config.decoder_start_token_id, hf.config.pad_token_id = BOS, PAD
    _set_tokens(hf, 2, True)
    ids, mask = source_batch(seed=2)
    _set_tokens(hf, _choose_eos(torch, hf, ids, mask, 1), True)
    hf.save_pretrained(tmp_path / "r2r")
    mine = refimpl.EncoderDecoderModel.from_pretrained(tmp_path / "r2r")
    opts = dict(num_beams=3, num_return_sequences=2, max_new_tokens=10, return_dict_in_generate=True, output_scores=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), **opts)
    got = mine.generate(ids, attention_mask=mask, **opts)
    compare_generate(want, got, "transformers-warm-started roberta2roberta, beam 3")


def test_generate_past_roberta_positions_is_an_input_error(roberta2roberta):
    """max_position_embeddings 40 with padding_idx 1 leaves 38 decoder positions: 38 new tokens fit (the start
    token takes one position, the last token is never fed); 39 raise refimpl's InputError naming the limit
    before any decoding starts (transformers fails with an IndexError inside the embedding)."""
    hf, mine, eos = roberta2roberta
    ids, mask = source_batch()
    assert mine.generate(ids, attention_mask=mask, max_new_tokens=38, min_new_tokens=38).shape == (3, 39)
    with pytest.raises(refimpl.InputError, match=r"max_new_tokens=39 after 1 input tokens would feed the decoder 39 "
                       r"positions, more than the 38 it can embed \(max_position_embeddings=40\); use at most "
                       r"max_new_tokens=38"):
        mine.generate(ids, attention_mask=mask, max_new_tokens=39, min_new_tokens=39)
