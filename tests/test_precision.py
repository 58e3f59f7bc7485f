"""Half precision (float16, bfloat16) on numpy against transformers 4.57.6 + torch 2.13 on the CPU.

The policy (refimpl/ops/precision.py, docs/precision.md "Half precision"): half storage, float32 compute,
one rounding per op. Checked here: each op bit for bit against torch's op on half tensors; whole forwards
(BertModel, a head, MiniLM) within tests/tolerances.py's half rows of transformers' half forward, with
refimpl's error from transformers' float64 forward no larger than torch's own half error; the share of
bit-identical elements is asserted too (a regression in the policy shows up there first); dtype="auto";
greedy bert2bert generate in float16; bad input.
"""

import json
import math
import tempfile

import numpy as np
import pytest

import refimpl
from refimpl.errors import ConfigError
from reference import reference
from tolerances import HALF_TOLERANCES

pytestmark = pytest.mark.parity

ml_dtypes = pytest.importorskip("ml_dtypes")
HALF = ("float16", "bfloat16")


def np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def to_np(t):
    """A torch tensor as numpy, bfloat16 by its bits."""
    import torch

    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.detach().numpy()


def to_t(a):
    import torch

    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a))


def equal_share(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(((a == b) | (np.isnan(a) & np.isnan(b))).mean())


def ulps(a, b, name):
    """|a - b| in half-precision ulps at max(|b|, 1): the dtype's eps times that (values below 1 are
    counted at 1, where the bound's atol applies)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / (float(np.finfo(np_dtype(name)).eps) * np.maximum(np.abs(b), 1.0))


# --- the ops, bit for bit ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("kernels", ["reference", "fast"])
def test_each_op_is_bit_identical_to_torch(name, kernels):
    """linear (float16: torch's dot order differs from the BLAS's, so ties can round apart: >= 99.5%),
    the attention products, the scaled scores, softmax, LayerNorm (>= 99.9%), the activations, half adds."""
    torch, _ = reference()
    import torch.nn.functional as F

    ops = refimpl.kernels.get_kernels(kernels)
    dt = np_dtype(name)
    rng = np.random.default_rng(1)
    r = lambda *shape, s=1.0: (rng.standard_normal(shape) * s).astype(dt)  # noqa: E731

    x, w, b = r(9, 100), r(37, 100, s=0.2), r(37)
    assert equal_share(ops.linear(x, w, b), to_np(F.linear(to_t(x), to_t(w), to_t(b)))) == 1.0
    x, w, b = r(16, 384), r(384, 384, s=0.2), r(384)
    assert equal_share(ops.linear(x, w, b), to_np(F.linear(to_t(x), to_t(w), to_t(b)))) >= 0.995

    q, k, v = r(2, 3, 7, 8), r(2, 3, 7, 8), r(2, 3, 7, 8)
    mask = ((rng.random((2, 1, 1, 7)) < 0.3) * float(np.finfo(dt).min)).astype(dt)
    head_mask = np.array([1.0, 0.5, 0.0], dt)[None, :, None, None]
    context, probs = ops.attention(q, k, v, mask, head_mask)
    scores = torch.matmul(to_t(q), to_t(k).transpose(-1, -2)) / math.sqrt(8) + to_t(mask)
    want_probs = torch.softmax(scores, dim=-1) * to_t(head_mask)
    assert equal_share(probs, to_np(want_probs)) == 1.0
    assert equal_share(context, to_np(torch.matmul(want_probs, to_t(v)))) == 1.0

    x = r(4, 17, s=4.0)
    assert equal_share(ops.softmax(x), to_np(torch.softmax(to_t(x), dim=-1))) == 1.0
    x, w, b = r(16, 384, s=3.0), (1 + r(384, s=0.3).astype(np.float32)).astype(dt), r(384, s=0.1)
    got = ops.layer_norm(x, w, b, 1e-12)
    assert equal_share(got, to_np(F.layer_norm(to_t(x), (384,), to_t(w), to_t(b), 1e-12))) >= 0.999
    y = r(16, 384)
    got = ops.add_layer_norm(x, y, w, b, 1e-12)
    assert equal_share(got, to_np(F.layer_norm(to_t(x) + to_t(y), (384,), to_t(w), to_t(b), 1e-12))) >= 0.999

    x = r(64, 384, s=2.0)
    want = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh, "silu": F.silu}
    for act, fn in want.items():
        share = equal_share(ops.activation(act)(x), to_np(fn(to_t(x))))
        # bfloat16 GELU: torch rounds its own float32 GELU (another erf than refimpl's; measured 98.9%)
        assert share >= (0.98 if (act == "gelu" and name == "bfloat16") else 0.999), (act, share)


def test_float16_gelu_is_torchs_vectorized_erf():
    """float16 GELU: torch evaluates erf by Abramowitz & Stegun 7.1.26 in float32 (ATen's vectorized erf):
    bit-identical, where a correctly rounded erf differs in ~3% of the values."""
    torch, _ = reference()
    x = (np.random.default_rng(2).standard_normal(50000) * 3).astype(np.float16)
    got = refimpl.kernels.get_kernels("fast").activation("gelu")(x)
    assert got.dtype == np.float16
    assert equal_share(got, torch.nn.functional.gelu(torch.from_numpy(x)).numpy()) == 1.0


# --- whole forwards --------------------------------------------------------------------------------------


def _compare(name, mine, ref, truth, field, min_equal):
    """Within the half row of ``field``; refimpl's max error from float64 no larger than torch's (plus the
    bound); at least ``min_equal`` of the elements bit-identical. Returns (max ulps, equal share)."""
    atol, rtol = HALF_TOLERANCES[name][field]
    a, b, t = (np.asarray(v, dtype=np.float64) for v in (mine, ref, truth))
    assert np.isfinite(a).all() == np.isfinite(b).all(), field
    ok = np.abs(a - b) <= atol + rtol * np.abs(b)
    assert ok.all(), f"{field}: {int((~ok).sum())} of {a.size} outside {atol}/{rtol}, max {np.abs(a - b).max():.3g}"
    err_mine, err_torch = np.abs(a - t).max(), np.abs(b - t).max()
    assert err_mine <= err_torch + atol, f"{field}: refimpl {err_mine:.3g} from float64, torch {err_torch:.3g}"
    share = equal_share(a, b)
    assert share >= min_equal, f"{field}: {share:.4f} bit-identical"
    return float(ulps(a, b, name).max()), share


def _hf_run(model, inputs, torch):
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True)


@pytest.mark.parametrize("name", HALF)
@pytest.mark.parametrize("head", ["BertModel", "BertForSequenceClassification"])
def test_random_bert_forward_matches_transformers_half(name, head):
    torch, transformers = reference()
    tdt = getattr(torch, name)
    cfg = dict(vocab_size=99, hidden_size=64, num_attention_heads=4, num_hidden_layers=2, intermediate_size=37,
               max_position_embeddings=40, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(3)
    hf = getattr(transformers, head)(transformers.BertConfig(**cfg, attn_implementation="eager")).eval()
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 99, (3, 13))
    mask = (np.arange(13) < np.array([[13], [9], [4]])).astype(np.int64)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": rng.integers(0, 2, (3, 13))}
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        truth = _hf_run(hf.double(), inputs, torch)
        ref = _hf_run(hf.to(tdt), inputs, torch)
        for kernels in ("fast", "reference"):
            out = getattr(refimpl, head).from_pretrained(d, dtype=name, kernels=kernels)(**inputs, output_hidden_states=True)
            fields = ["logits"] if head != "BertModel" else ["last_hidden_state", "pooler_output"]
            for field in fields:
                got = getattr(out, field)
                assert got.dtype == np_dtype(name)
                _compare(name, got, to_np(getattr(ref, field)), getattr(truth, field).numpy(), field, 0.9)
            for i, h in enumerate(out.hidden_states):
                _compare(name, h, to_np(ref.hidden_states[i]), truth.hidden_states[i].numpy(), "hidden", 0.9)


@pytest.mark.parametrize("name", HALF)
def test_minilm_matches_transformers_half(minilm_dir, name):
    """all-MiniLM-L6-v2 on real text, padded: hidden states within the half rows; bit-identical shares
    reported in docs/precision.md."""
    torch, transformers = reference()
    tok = refimpl.AutoTokenizer.from_pretrained(minilm_dir)
    batch = tok(["A man is eating food.", "The stock market fell sharply today, analysts said."],
                padding=True, return_tensors="np")
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    hf = transformers.BertModel.from_pretrained(str(minilm_dir), attn_implementation="eager").eval()
    truth = _hf_run(hf.double(), inputs, torch)
    ref = _hf_run(hf.to(getattr(torch, name)), inputs, torch)
    out = refimpl.BertModel.from_pretrained(minilm_dir, dtype=name)(**inputs, output_hidden_states=True)
    real = inputs["attention_mask"].astype(bool)
    for i, h in enumerate(out.hidden_states):
        # padded positions are ill-conditioned (tolerances.py, hidden_pad): the real ones are compared
        # one-ulp ties rounded apart in the first layers (99.8% per linear) spread chaotically: measured
        # 100% bit-identical embeddings, then 84% (float16) after layer 1 down to ~10-20% after layer 6
        u, share = _compare(name, h[real], to_np(ref.hidden_states[i])[real], truth.hidden_states[i].numpy()[real],
                            "hidden", 0.05)
        print(f"MiniLM {name} hidden_states.{i}: max {u:.0f} ulps, {share:.1%} bit-identical")


# --- dtype="auto", generation, bad input -----------------------------------------------------------------


def test_auto_dtype_reads_config_then_the_weights(tmp_path):
    torch, transformers = reference()
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=20)
    torch.manual_seed(0)
    hf = transformers.BertModel(cfg).eval().to(torch.bfloat16)
    hf.save_pretrained(tmp_path)  # config.json records "dtype": "bfloat16", the file BF16 tensors
    assert refimpl.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == np_dtype("bfloat16")
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop("dtype", None)
    config["torch_dtype"] = "float16"  # the older key
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert refimpl.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == np.float16
    config.pop("torch_dtype")
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert refimpl.BertModel.from_pretrained(tmp_path, dtype="auto").dtype == np_dtype("bfloat16")  # the BF16 file
    want = transformers.BertModel.from_pretrained(tmp_path, dtype="auto").dtype
    assert str(want) == "torch.bfloat16"


def test_bert2bert_greedy_generate_float16_matches_transformers():
    """A warm-started bert2bert in float16: the KV cache holds float16, and greedy token ids equal
    transformers' float16 generate."""
    torch, transformers = reference()
    cfg = dict(vocab_size=61, hidden_size=32, num_attention_heads=4, num_hidden_layers=2, intermediate_size=37,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, bos_token_id=1, eos_token_id=2,
               pad_token_id=0, initializer_range=0.12)
    torch.manual_seed(5)
    enc = transformers.BertGenerationEncoder(transformers.BertGenerationConfig(**cfg))
    dec = transformers.BertGenerationDecoder(transformers.BertGenerationConfig(**cfg, is_decoder=True,
                                                                               add_cross_attention=True))
    hf = transformers.EncoderDecoderModel(encoder=enc, decoder=dec).eval()
    hf.config.decoder_start_token_id, hf.config.pad_token_id, hf.config.eos_token_id = 1, 0, 2
    ids = np.random.default_rng(5).integers(3, 61, (2, 7))
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        hf16 = transformers.EncoderDecoderModel.from_pretrained(d, dtype=torch.float16).eval()
        with torch.no_grad():
            want = hf16.generate(torch.from_numpy(ids), max_new_tokens=12, num_beams=1, do_sample=False).numpy()
        mine = refimpl.EncoderDecoderModel.from_pretrained(d, dtype="float16")
        got = mine.generate(ids, max_new_tokens=12, num_beams=1, do_sample=False)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_bad_dtypes_name_the_value_and_the_fix(monkeypatch, tmp_path):
    from refimpl.backend import resolve_dtype

    with pytest.raises(ConfigError, match=r"unsupported dtype 'float8'.*bfloat16"):
        resolve_dtype("float8")
    with pytest.raises(ConfigError, match=r"bfloat16.*cupy"):
        resolve_dtype("bfloat16", "cupy")
    with pytest.raises(ConfigError, match="'auto' is read from a checkpoint's config.json"):
        refimpl.BertModel(refimpl.BertConfig(hidden_size=8, num_attention_heads=2, intermediate_size=9,
                                             num_hidden_layers=1, vocab_size=20), dtype="auto")
    import builtins

    real_import = builtins.__import__

    def no_ml_dtypes(name, *args, **kwargs):
        if name == "ml_dtypes":
            raise ImportError("No module named 'ml_dtypes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ml_dtypes)
    with pytest.raises(ConfigError, match=r"bfloat16.*pip install refimpl\[bfloat16\]"):
        resolve_dtype("bfloat16")
    monkeypatch.undo()
    # float16 with 4-bit quantization: the quantization code's own checks still apply (float64 refused)
    cfg = refimpl.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype="float16")
    model = refimpl.BertModel(refimpl.BertConfig(hidden_size=64, num_attention_heads=2, intermediate_size=64,
                                                 num_hidden_layers=1, vocab_size=20), seed=0)
    model.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="dtype='float64' with 4-bit"):
        refimpl.BertModel.from_pretrained(tmp_path, dtype="float64", quantization_config=cfg)
    half = refimpl.BertModel.from_pretrained(tmp_path, dtype="float16", quantization_config=cfg)
    out = half(input_ids=np.array([[1, 2, 3]]))
    assert out.last_hidden_state.dtype == np.float16 and np.isfinite(out.last_hidden_state).all()
