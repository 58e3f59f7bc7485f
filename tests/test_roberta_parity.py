"""Live parity of RobertaModel / RobertaForCausalLM / RobertaForMaskedLM with transformers 4.57.6 (eager).

Random tiny configs (hypothesis): sizes, activation (the LM head's gelu stays exact whatever it is),
position-embedding type, padding_idx 0..2, token types; batches whose padded positions hold the pad token
(RoBERTa's positions skip them) and, sometimes, pad tokens inside the real text; explicit positions or
inputs_embeds; head masks; labels; cross-attention; float32 and float64. Every hidden state, attention,
cross-attention, logits and loss within tests/tolerances.py. Also: KV-cached decoding against
transformers' cache (pad tokens inside later chunks included), cached == full pass, the position rule,
loading exceptions and length errors.
"""

import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refimpl
from refimpl.errors import ConfigError, InputError
from refimpl.models.roberta import roberta_position_ids
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs, to_torch

pytestmark = pytest.mark.parity

CLASSES = ["RobertaModel", "RobertaModel+decoder", "RobertaForCausalLM", "RobertaForCausalLM+cross", "RobertaForMaskedLM"]


@st.composite
def configs(draw):
    heads = draw(st.integers(1, 4))
    pad = draw(st.integers(0, 2))
    return dict(
        vocab_size=draw(st.integers(20, 90)),
        hidden_size=heads * draw(st.integers(2 if heads > 1 else 4, 8)),  # D >= 4: LayerNorm over 2 values is ill-conditioned
        num_attention_heads=heads,
        num_hidden_layers=draw(st.integers(1, 2)),
        intermediate_size=draw(st.integers(5, 37)),
        max_position_embeddings=draw(st.integers(12 + pad + 1, 30)),
        type_vocab_size=draw(st.integers(1, 2)),
        hidden_act=draw(st.sampled_from(["gelu", "gelu_new", "relu", "silu"])),
        position_embedding_type=draw(st.sampled_from(["absolute", "absolute", "relative_key", "relative_key_query"])),
        layer_norm_eps=draw(st.sampled_from([1e-12, 1e-5])),
        pad_token_id=pad,
        bos_token_id=3,
        eos_token_id=4,
        initializer_range=0.3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def make_batch(rng, cfg, b, s):
    """ids [B, S] with the pad token at right-padded positions (mask 0) and sometimes inside the text."""
    pad = cfg["pad_token_id"]
    ids = rng.integers(0, cfg["vocab_size"], (b, s))
    ids[ids == pad] = 5
    lengths = rng.integers(1, s + 1, b)
    mask = (np.arange(s) < lengths[:, None]).astype(np.int64)
    ids[mask == 0] = pad
    if rng.random() < 0.3:  # pad tokens inside the text (attended to, but position padding_idx)
        ids[rng.random((b, s)) < 0.2] = pad
    return ids, mask


def _hf_run(torch, model, dtype, inputs):
    model = model.double() if dtype == "float64" else model.float()
    kwargs = {k: to_torch(torch, v) for k, v in inputs.items()}
    if dtype == "float64":
        kwargs = {k: (v.double() if hasattr(v, "is_floating_point") and v.is_floating_point() else v)
                  for k, v in kwargs.items()}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model(**kwargs)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(cfg=configs(), cls_name=st.sampled_from(CLASSES), seed=st.integers(0, 2**31 - 1),
       variant=st.sampled_from(["ids", "ids", "ids", "position_ids", "inputs_embeds"]),
       use_head_mask=st.booleans(), tie=st.booleans())
def test_random_roberta_matches_transformers(cfg, cls_name, seed, variant, use_head_mask, tie):
    torch, transformers = reference()
    rng = np.random.default_rng(seed)
    cls_name, _, extra = cls_name.partition("+")
    is_dec = cls_name == "RobertaForCausalLM" or extra == "decoder"
    cfg = dict(cfg, is_decoder=is_dec, add_cross_attention=extra == "cross", tie_word_embeddings=tie)
    torch.manual_seed(seed)
    hf = getattr(transformers, cls_name)(transformers.RobertaConfig(**cfg, attn_implementation="eager")).eval()
    b, s = int(rng.integers(1, 4)), int(rng.integers(1, 10))
    ids, mask = make_batch(rng, cfg, b, s)
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=rng.integers(0, cfg["type_vocab_size"], (b, s)),
                  output_hidden_states=True, output_attentions=True)
    if variant == "position_ids":
        inputs["position_ids"] = rng.integers(0, cfg["max_position_embeddings"], (b, s))
    elif variant == "inputs_embeds":
        del inputs["input_ids"]
        inputs["inputs_embeds"] = rng.standard_normal((b, s, cfg["hidden_size"])).astype(np.float32)
    if use_head_mask:
        inputs["head_mask"] = rng.choice([0.0, 0.5, 1.0], size=(cfg["num_hidden_layers"], cfg["num_attention_heads"])).astype(np.float32)
    if cls_name != "RobertaModel":
        labels = rng.integers(0, cfg["vocab_size"], (b, s))
        labels[rng.random((b, s)) < 0.3] = -100
        inputs["labels"] = labels
    if extra == "cross":
        e = int(rng.integers(1, 6))
        inputs["encoder_hidden_states"] = rng.standard_normal((b, e, cfg["hidden_size"])).astype(np.float32)
        inputs["encoder_attention_mask"] = (np.arange(e) < rng.integers(1, e + 1, (b, 1))).astype(np.int64)
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        for dtype in ("float32", "float64"):
            mine = getattr(refimpl, cls_name).from_pretrained(d, dtype=dtype)
            want = hf_outputs(_hf_run(torch, hf, dtype, inputs))
            mine_in = {k: (v.astype(np.float64) if dtype == "float64" and getattr(v, "dtype", None) == np.float32 else v)
                       for k, v in inputs.items()}
            got = refimpl_outputs(mine(**mine_in))
            assert_outputs_match(got, want, dtype, f"{cls_name}{'+' + extra if extra else ''} {variant} {dtype} cfg={cfg}")


def test_position_ids_rule():
    """transformers' create_position_ids_from_input_ids, worked example and random ids with a cache offset."""
    torch, transformers = reference()
    from transformers.models.roberta.modeling_roberta import create_position_ids_from_input_ids

    assert roberta_position_ids(np.array([[0, 5, 6, 1, 1]]), 1).tolist() == [[2, 3, 4, 1, 1]]
    assert roberta_position_ids(np.array([[0, 5, 6, 1, 1]]), 1, 3).tolist() == [[5, 6, 7, 1, 1]]
    rng = np.random.default_rng(0)
    for pad in (0, 1, 2):
        for past in (0, 4):
            ids = rng.integers(0, 4, (5, 11))
            want = create_position_ids_from_input_ids(torch.tensor(ids), pad, past).numpy()
            assert np.array_equal(roberta_position_ids(ids, pad, past), want)


def _tiny_decoder(transformers, torch, seed=7, cross=True):
    cfg = transformers.RobertaConfig(vocab_size=57, hidden_size=24, num_attention_heads=3, num_hidden_layers=2,
                                     intermediate_size=31, max_position_embeddings=40, is_decoder=True,
                                     add_cross_attention=cross, hidden_act="gelu_new", initializer_range=0.3,
                                     attn_implementation="eager")
    torch.manual_seed(seed)
    return transformers.RobertaForCausalLM(cfg).eval()


def test_cached_decoder_matches_transformers_cache(tmp_path):
    """RobertaForCausalLM with cross-attention: a prompt, then chunks through each library's cache. Chunks
    hold pad tokens, so the per-chunk cumsum + cached length rule is exercised."""
    torch, transformers = reference()
    hf = _tiny_decoder(transformers, torch)
    hf.save_pretrained(tmp_path)
    mine = refimpl.RobertaForCausalLM.from_pretrained(tmp_path)
    rng = np.random.default_rng(7)
    ids = rng.integers(2, 57, size=(2, 10))
    ids[0, 2] = ids[1, 6] = ids[0, 7] = 1  # pad tokens in the first, third and fourth chunk
    enc = rng.standard_normal((2, 5, 24)).astype(np.float32)
    enc_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    hf_past, my_past = None, None
    for start, stop in [(0, 4), (4, 5), (5, 8), (8, 9), (9, 10)]:
        chunk = ids[:, start:stop]
        mask = np.ones((2, stop), dtype=np.int64)
        with torch.no_grad():
            r = hf(input_ids=torch.tensor(chunk), attention_mask=torch.tensor(mask), past_key_values=hf_past,
                   encoder_hidden_states=torch.tensor(enc), encoder_attention_mask=torch.tensor(enc_mask),
                   use_cache=True, output_attentions=True, output_hidden_states=True)
        m = mine(input_ids=chunk, attention_mask=mask, past_key_values=my_past, encoder_hidden_states=enc,
                 encoder_attention_mask=enc_mask, use_cache=True, output_attentions=True, output_hidden_states=True)
        hf_past, my_past = r.past_key_values, m.past_key_values
        assert my_past.length == stop
        assert_outputs_match(refimpl_outputs(m), hf_outputs(r), "float32", context=f"cached chunk [{start}:{stop})")


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True), seed=st.integers(0, 2**31 - 1))
def test_cached_decoding_equals_full_pass(tmp_path_factory, cuts, seed):
    """Without pad tokens in the ids, feeding a sequence chunk by chunk through the cache gives the logits of
    one full pass (the positions continue from the cached length)."""
    torch, transformers = reference()
    d = tmp_path_factory.getbasetemp() / "roberta-cache-full"
    if not d.exists():
        _tiny_decoder(transformers, torch, cross=False).save_pretrained(d)
    mine = refimpl.RobertaForCausalLM.from_pretrained(d, dtype="float64")
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, 57, size=(2, 9))
    full = mine(input_ids=ids, use_cache=False).logits
    past, pieces = None, []
    bounds = [0] + sorted(cuts) + [9]
    for start, stop in zip(bounds, bounds[1:]):
        out = mine(input_ids=ids[:, start:stop], past_key_values=past, use_cache=True)
        past = out.past_key_values
        pieces.append(out.logits)
    assert np.allclose(np.concatenate(pieces, axis=1), full, atol=1e-10, rtol=1e-10)


def test_loading_exceptions_and_length_errors(tmp_path):
    """RobertaModel from a RobertaForMaskedLM checkpoint: prefix removed, LM head ignored and reported, no
    pooler (pooler_output None). Positions beyond max_position_embeddings - padding_idx - 1 are an error
    naming the limit; pad_token_id must be a position index."""
    torch, transformers = reference()
    torch.manual_seed(0)
    cfg = transformers.RobertaConfig(vocab_size=40, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                                     intermediate_size=13, max_position_embeddings=12, attn_implementation="eager")
    mlm = transformers.RobertaForMaskedLM(cfg).eval()
    mlm.save_pretrained(tmp_path)
    base = refimpl.RobertaModel.from_pretrained(tmp_path)
    assert "lm_head.dense.weight" in base.load_report["ignored"]
    assert base.load_report["prefix"] == "removed 'roberta.'"
    ids = np.array([[0, 5, 6, 7, 2, 1]])
    out = base(input_ids=ids)
    assert out.pooler_output is None
    with torch.no_grad():
        want = mlm.roberta(torch.tensor(ids)).last_hidden_state.numpy()
    assert np.abs(out.last_hidden_state - want).max() < 1e-5
    # 12 positions, padding_idx 1: 10 tokens fit, pad tokens do not count
    base(input_ids=np.full((1, 10), 5))
    base(input_ids=np.array([[5] * 10 + [1] * 3]))
    with pytest.raises(InputError, match=r"sequence length 11 exceeds the 10 positions of max_position_embeddings=12"):
        base(input_ids=np.full((1, 11), 5))
    with pytest.raises(InputError, match=r"exceeds the 10 positions"):
        base(inputs_embeds=np.zeros((1, 11, 16), np.float32))
    with pytest.raises(ConfigError, match=r"pad_token_id=None"):
        refimpl.RobertaConfig(pad_token_id=None).validate()
    # a causal LM loaded with is_decoder given as an override, as transformers' from_pretrained(..., is_decoder=True)
    lm = refimpl.RobertaForCausalLM.from_pretrained(tmp_path, is_decoder=True)
    assert lm.config.is_decoder and lm(input_ids=ids).logits.shape == (1, 6, 40)
