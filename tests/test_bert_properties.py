"""Properties of refimpl's BERT that hold without any reference: batching, padding, caching, precision.

Models are tiny random ones from the committed goldens (weights/), so these run without torch.
"""

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import refimpl

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
F32_HIDDEN = 1e-5  # tests/tolerances.py "hidden" row: float32 summation-order differences


def load(name, cls=None, dtype="float32"):
    import json

    meta = json.loads((WEIGHTS / name / "golden.json").read_text())
    return getattr(refimpl, cls or meta["class"]).from_pretrained(WEIGHTS / name, dtype=dtype)


ENCODERS = ["bert_model_absolute", "bert_model_relative_key", "bert_model_relative_key_query"]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(ENCODERS), st.lists(st.integers(1, 14), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_batch_equals_rows_one_by_one_and_padding_is_invisible(name, lengths, seed):
    """Right-padded batch == each row alone (unpadded): real positions are unchanged by padding and batching."""
    model = load(name)
    rng = np.random.default_rng(seed)
    s = max(lengths)
    ids = rng.integers(1, model.config.vocab_size, size=(len(lengths), s))
    mask = (np.arange(s) < np.array(lengths)[:, None]).astype(np.int64)
    tt = rng.integers(0, model.config.type_vocab_size, size=ids.shape)
    batch = model(input_ids=ids, attention_mask=mask, token_type_ids=tt, output_hidden_states=True)
    for row, n in enumerate(lengths):
        alone = model(input_ids=ids[row:row + 1, :n], token_type_ids=tt[row:row + 1, :n], output_hidden_states=True)
        for layer, (hb, ha) in enumerate(zip(batch.hidden_states, alone.hidden_states)):
            np.testing.assert_allclose(hb[row, :n], ha[0], atol=F32_HIDDEN, rtol=F32_HIDDEN, err_msg=f"layer {layer} row {row}")
        np.testing.assert_allclose(batch.pooler_output[row], alone.pooler_output[0], atol=F32_HIDDEN, rtol=F32_HIDDEN)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["absolute", "relative_key_query"]), st.integers(2, 12),
       st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_cached_decoding_equals_full_pass(position_type, length, chunks, seed):
    """A decoder fed in chunks through its KV cache gives the full (uncached) pass, position by position."""
    model = load({"absolute": "bert_lm_head", "relative_key_query": "bert_lm_head_relative_cached"}[position_type])
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, model.config.vocab_size, size=(2, length))
    full = model(input_ids=ids, use_cache=False).logits
    past, start = None, 0
    steps = chunks if position_type == "absolute" else [1] * length  # relative + cache: one token per step (see bert.py)
    while start < length:
        stop = min(length, start + steps[0])
        steps = steps[1:] or [1]
        out = model(input_ids=ids[:, start:stop], past_key_values=past, use_cache=True)
        np.testing.assert_allclose(out.logits, full[:, start:stop], atol=1e-5, rtol=1e-5, err_msg=f"positions [{start}, {stop})")
        past, start = out.past_key_values, stop
    assert past.length == length


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(ENCODERS + ["bert_mlm", "bert_pretraining"]), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_float64_equals_float32_within_float32_error(name, length, seed):
    m32, m64 = load(name), load(name, dtype="float64")
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, m32.config.vocab_size, size=(2, length))
    o32, o64 = m32(input_ids=ids, output_hidden_states=True), m64(input_ids=ids, output_hidden_states=True)
    assert o64.hidden_states[-1].dtype == np.float64 and o32.hidden_states[-1].dtype == np.float32
    for h32, h64 in zip(o32.hidden_states, o64.hidden_states):
        np.testing.assert_allclose(h32, h64, atol=1e-5, rtol=1e-5)


def test_fully_masked_row_gives_uniform_attention():
    """transformers' mask constant is finfo.min, not -inf: a row with no attended key is uniform, not NaN."""
    model = load("bert_model_absolute")
    ids = np.array([[5, 6, 7]])
    out = model(input_ids=ids, attention_mask=np.zeros((1, 3), dtype=np.int64), output_attentions=True)
    for a in out.attentions:
        np.testing.assert_allclose(a, np.full_like(a, 1 / 3), atol=1e-7)
    assert np.isfinite(out.last_hidden_state).all()


def test_head_mask_zero_silences_a_head():
    model = load("bert_model_absolute")
    ids = np.array([[5, 6, 7, 8]])
    hm = np.ones((2, 4), dtype=np.float32)
    hm[1, 2] = 0.0
    out = model(input_ids=ids, head_mask=hm, output_attentions=True)
    assert (out.attentions[1][:, 2] == 0).all() and (out.attentions[1][:, 1] > 0).all()
