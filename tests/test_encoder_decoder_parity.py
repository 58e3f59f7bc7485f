"""Forward parity of BertGenerationEncoder, BertGenerationDecoder and EncoderDecoderModel with transformers
4.57.6 (eager), float32 and float64: every output (hidden states, attentions, cross-attentions, logits,
loss with labels) within tests/tolerances.py. Random tiny configs drawn by hypothesis; transformers builds
and saves each model, refimpl loads the directory.
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refimpl
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs

pytestmark = pytest.mark.parity


@st.composite
def sizes(draw):
    heads = draw(st.integers(1, 4))
    return dict(
        vocab_size=draw(st.integers(20, 90)),
        hidden_size=heads * draw(st.integers(2 if heads > 1 else 4, 8)),  # D >= 4: LayerNorm over 2 values is ill-conditioned
        num_attention_heads=heads,
        num_hidden_layers=draw(st.integers(1, 2)),
        intermediate_size=draw(st.integers(5, 37)),
        max_position_embeddings=draw(st.integers(16, 30)),
        position_embedding_type=draw(st.sampled_from(["absolute", "relative_key", "relative_key_query"])),
        hidden_act=draw(st.sampled_from(["gelu", "gelu_new", "relu"])),
        initializer_range=0.3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="eager",
    )


def _batch(rng, vocab, b, s):
    ids = rng.integers(1, vocab, (b, s))
    lengths = rng.integers(1, s + 1, b)
    mask = (np.arange(s) < lengths[:, None]).astype(np.int64)
    return ids, mask


def _hf(torch, model, dtype, **inputs):
    model = model.double() if dtype == np.float64 else model.float()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model(**{k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()})


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(cfg=sizes(), dec=sizes(), seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       enc_kind=st.sampled_from(["bert", "bert-generation"]), dec_kind=st.sampled_from(["bert", "bert-generation"]))
def test_encoder_decoder_forward(cfg, dec, seed, dtype, enc_kind, dec_kind):
    torch, transformers = reference()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dec["vocab_size"] = cfg["vocab_size"]
    enc_cls = transformers.BertConfig if enc_kind == "bert" else transformers.BertGenerationConfig
    dec_cls = transformers.BertConfig if dec_kind == "bert" else transformers.BertGenerationConfig
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        enc_cls(**cfg), dec_cls(is_decoder=True, add_cross_attention=True, **dec))
    config.pad_token_id, config.decoder_start_token_id = 0, 2
    hf = transformers.EncoderDecoderModel(config).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        mine = refimpl.EncoderDecoderModel.from_pretrained(d, dtype=np.dtype(dtype).name)
    b, s, t = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 8))
    ids, mask = _batch(rng, cfg["vocab_size"], b, s)
    labels = rng.integers(0, cfg["vocab_size"], (b, t))
    labels[rng.random((b, t)) < 0.3] = -100
    labels[:, 0] = 1
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True, output_hidden_states=True)
    want = hf_outputs(_hf(torch, hf, dtype, **inputs))
    got = refimpl_outputs(mine(**inputs))
    assert_outputs_match(got, want, dtype, f"{enc_kind}2{dec_kind} {np.dtype(dtype).name}")
    # encoder_outputs reuse and explicit decoder inputs give the same logits
    enc = mine.encoder(input_ids=ids, attention_mask=mask)
    dec_ids = refimpl.models.encoder_decoder.shift_tokens_right(labels, 0, 2)
    again = mine(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=dec_ids,
                 decoder_attention_mask=(dec_ids != 0).astype(np.int64))
    assert np.array_equal(again.logits, got["logits"])


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(cfg=sizes(), seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       cls_name=st.sampled_from(["BertGenerationEncoder", "BertGenerationDecoder", "BertGenerationDecoder+cross"]),
       tie=st.booleans())
def test_bert_generation_forward(cfg, seed, dtype, cls_name, tie):
    torch, transformers = reference()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cross = cls_name.endswith("+cross")
    cls_name = cls_name.split("+")[0]
    is_dec = cls_name == "BertGenerationDecoder"
    config = transformers.BertGenerationConfig(is_decoder=is_dec, add_cross_attention=cross,
                                               tie_word_embeddings=tie or not is_dec, **cfg)
    hf = getattr(transformers, cls_name)(config).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        mine = getattr(refimpl, cls_name).from_pretrained(d, dtype=np.dtype(dtype).name)
    b, s = int(rng.integers(1, 4)), int(rng.integers(1, 9))
    ids, mask = _batch(rng, cfg["vocab_size"], b, s)
    inputs = dict(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
    if is_dec:
        labels = rng.integers(0, cfg["vocab_size"], (b, s))
        labels[rng.random((b, s)) < 0.3] = -100
        inputs["labels"] = labels
    if cross:
        inputs["encoder_hidden_states"] = rng.standard_normal((b, 5, cfg["hidden_size"])).astype(dtype)
        inputs["encoder_attention_mask"] = (rng.random((b, 5)) < 0.8).astype(np.int64)
    want = hf_outputs(_hf(torch, hf, dtype, **inputs))
    got = refimpl_outputs(mine(**inputs))
    assert_outputs_match(got, want, dtype, f"{cls_name} cross={cross} tie={tie} {np.dtype(dtype).name}")


def test_bert_generation_warm_start_from_bert_checkpoint(tmp_path):
    """BertGenerationEncoder/Decoder.from_pretrained(BERT dir): transformers drops token types and the
    pooler and initialises cross-attention and lm_head.bias. Loaded tensors must equal the BERT ones;
    refimpl reports what it dropped and initialised; with the new tensors copied from transformers' model
    the forward matches."""
    torch, transformers = reference()
    torch.manual_seed(0)
    bert = transformers.BertModel(transformers.BertConfig(vocab_size=50, hidden_size=24, num_hidden_layers=2,
                                                          num_attention_heads=3, intermediate_size=31)).eval()
    bert.save_pretrained(tmp_path / "bert")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = transformers.BertGenerationDecoder.from_pretrained(
            tmp_path / "bert", is_decoder=True, add_cross_attention=True, bos_token_id=1, eos_token_id=2,
            attn_implementation="eager").eval()
    mine = refimpl.BertGenerationDecoder.from_pretrained(tmp_path / "bert", is_decoder=True, add_cross_attention=True,
                                                        bos_token_id=1, eos_token_id=2)
    report = mine.load_report
    assert "bert.embeddings.token_type_embeddings.weight" in report["ignored"]
    assert any(n.startswith("bert.pooler.") for n in report["ignored"])
    assert "lm_head.bias" in report["initialized"]
    assert all(("crossattention." in n) or n == "lm_head.bias" for n in report["initialized"])
    assert mine.config.bos_token_id == 1 and mine.config.eos_token_id == 2
    hf_state = {k: v.detach().numpy() for k, v in hf.state_dict().items()}
    for name, arr in mine.params.items():
        if name not in report["initialized"]:
            assert np.array_equal(arr, hf_state[name]), name
    # the initialisation follows transformers' rule (normal(0, initializer_range), LayerNorm 1/0, bias 0)
    for name in report["initialized"]:
        arr = mine.params[name]
        if name.endswith("LayerNorm.weight"):
            assert (arr == 1).all()
        elif name.endswith("bias"):
            assert (arr == 0).all()
        else:
            assert abs(arr.std() - 0.02) < 0.004 and abs(arr.mean()) < 0.004, name
    # with transformers' random tensors, the outputs agree
    for name in report["initialized"]:
        mine.params[name] = hf_state[name].astype(np.float32)
    ids = np.array([[5, 6, 7, 8]])
    enc = np.random.default_rng(0).standard_normal((1, 3, 24)).astype(np.float32)
    want = hf(torch.tensor(ids), encoder_hidden_states=torch.tensor(enc)).logits.detach().numpy()
    got = mine(ids, encoder_hidden_states=enc).logits
    assert np.abs(want - got).max() < 1e-5


def test_from_encoder_decoder_pretrained_report_and_seed(tmp_path):
    """The refimpl-side warm start: same tensors as the BERT checkpoints where they exist, a reported,
    seeded initialisation elsewhere (identical for the same seed, different for another)."""
    torch, transformers = reference()
    torch.manual_seed(1)
    cfg = dict(vocab_size=40, num_hidden_layers=1, num_attention_heads=2, intermediate_size=13)
    transformers.BertModel(transformers.BertConfig(hidden_size=16, **cfg)).save_pretrained(tmp_path / "enc")
    transformers.BertModel(transformers.BertConfig(hidden_size=12, **cfg)).save_pretrained(tmp_path / "dec")
    a = refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", seed=3,
                                                                   decoder_start_token_id=1, pad_token_id=0)
    b = refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", seed=3)
    c = refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec", seed=4)
    init = a.load_report["decoder"]["initialized"]
    assert "enc_to_dec_proj.weight" in init and "cls.predictions.bias" in init
    assert any("crossattention.self.query.weight" in n for n in init)
    assert a.config.decoder_start_token_id == 1 and a.config.decoder.is_decoder and a.config.decoder.add_cross_attention
    w = "decoder.bert.encoder.layer.0.crossattention.self.query.weight"
    assert np.array_equal(a.params[w], b.params[w]) and not np.array_equal(a.params[w], c.params[w])
    out = a(input_ids=np.array([[3, 4, 5]]), decoder_input_ids=np.array([[1, 7]]))
    assert out.logits.shape == (1, 2, 40)
