"""Models loaded with bitsandbytes quantization against transformers 4.57.6 + bitsandbytes 0.50.x on CPU.

transformers' models are loaded with ``dtype=torch.float32`` (transformers would otherwise make the rest of a
quantized model float16, refimpl keeps the dtype it is given) and ``device_map="cpu"``. On a CPU with
AVX512-BF16, bitsandbytes' Linear4bit switches to a bfloat16 kernel at inference; the tests turn that off
(``support_avx512bf16_for_cpu = False``) so transformers runs bitsandbytes' generic CPU path, the one refimpl
reproduces (docs/precision.md). Sizes: hidden 64 (rows hold whole 64-value blocks) and intermediate 100
(blocks span rows), avoiding the shapes where bitsandbytes' AVX-512 dequantize kernel is wrong
(tests/test_quant_formats.py).
"""

import logging
import warnings

import numpy as np
import pytest

import refimpl
from refimpl.errors import ConfigError
from refimpl.quantization import weights as qweights

pytestmark = pytest.mark.parity

CASES = {
    "nf4-double": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
    "fp4": dict(load_in_4bit=True, bnb_4bit_quant_type="fp4"),
    "nf4-float16": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype="float16"),
    "nf4-bfloat16-storage": dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype="bfloat16",
                                 bnb_4bit_quant_storage="bfloat16"),
    "int8": dict(load_in_8bit=True),
    "int8-low-threshold": dict(load_in_8bit=True, llm_int8_threshold=1.0),
}


@pytest.fixture(scope="module")
def stack():
    from reference import reference

    torch, transformers = reference()
    # a skip here fails the run in CI, like any skipped parity test (conftest): CI installs the quant extra
    pytest.importorskip("accelerate",  # transformers' bitsandbytes integration needs it
                        reason="accelerate not installed: `pip install -e .[quant]`")
    bitsandbytes = pytest.importorskip("bitsandbytes", reason="bitsandbytes not installed: `pip install -e .[quant]`")
    transformers.logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="bitsandbytes")
    return torch, transformers, bitsandbytes


def _hf_config(transformers, torch, q):
    q = dict(q)
    for key in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"):
        if key in q:
            q[key] = getattr(torch, q[key])
    return transformers.BitsAndBytesConfig(**q)


def _hf_load(stack, cls_name, path, q):
    torch, transformers, bnb = stack
    model = getattr(transformers, cls_name).from_pretrained(path, quantization_config=_hf_config(transformers, torch, q),
                                                            dtype=torch.float32, device_map="cpu").eval()
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False  # bitsandbytes' generic CPU path (module docstring)
    return model


def _quantized_modules(stack, model):
    bnb = stack[2]
    return sorted(n + ".weight" for n, m in model.named_modules() if isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)))


def _bound(q, want):
    from tolerances import QUANT_TOLERANCES

    half = q.get("bnb_4bit_compute_dtype", "float32") != "float32"
    atol, rtol = QUANT_TOLERANCES["quant_model_half" if half else "quant_model_float32"]
    return atol + rtol * float(np.abs(want).max())


def _tiny(transformers, cls_name="BertConfig", **kw):
    base = dict(vocab_size=99, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=100,
                max_position_embeddings=40)
    base.update(kw)
    return getattr(transformers, cls_name)(**base)


@pytest.fixture(scope="module")
def checkpoints(stack, tmp_path_factory):
    torch, transformers, _ = stack
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("quant")
    paths = {}
    for cls_name in ("BertModel", "BertForSequenceClassification", "BertForMaskedLM"):
        model = getattr(transformers, cls_name)(_tiny(transformers, num_labels=3))
        for p in model.parameters():  # larger weights than the init's, so 4-bit errors show in every layer
            p.data.normal_(0, 0.2)
        model.save_pretrained(root / cls_name)
        paths[cls_name] = root / cls_name
    return paths


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cls_name", ["BertModel", "BertForSequenceClassification"])
def test_model_outputs_and_states_match(stack, checkpoints, cls_name, case):
    torch = stack[0]
    q = CASES[case]
    hf = _hf_load(stack, cls_name, checkpoints[cls_name], q)
    mine = getattr(refimpl, cls_name).from_pretrained(checkpoints[cls_name],
                                                      quantization_config=refimpl.BitsAndBytesConfig(**q))
    assert sorted(mine.load_report["quantized"]) == _quantized_modules(stack, hf)
    # the states, bit for bit, for every quantized layer
    hf_params = dict(hf.named_parameters())
    for name in mine.load_report["quantized"]:
        w, ref = mine.params[name], hf_params[name]
        if q.get("load_in_4bit"):
            qs = ref.quant_state
            assert (w.packed.view(np.uint8) == ref.data.view(torch.uint8).numpy()).all(), name
            assert (np.asarray(w.state.absmax) == qs.absmax.numpy()).all(), name
            if qs.nested:
                assert w.state.offset == qs.offset.numpy() and (w.state.state2.absmax == qs.state2.absmax.numpy()).all()
        else:
            module = hf.get_submodule(name[: -len(".weight")])
            cb = module.state.CB if module.state.CB is not None else module.weight.CB
            scb = module.state.SCB if module.state.SCB is not None else module.weight.SCB
            assert (w.CB == cb.numpy()).all() and (w.SCB == scb.numpy()).all(), name
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 99, (3, 11))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        want = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    got = mine(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    fields = ["last_hidden_state", "pooler_output"] if cls_name == "BertModel" else ["logits"]
    for field in fields + ["hidden_states"]:
        g, w = getattr(got, field), getattr(want, field)
        pairs = zip(g, w) if field == "hidden_states" else [(g, w)]
        for i, (a, b) in enumerate(pairs):
            b = b.numpy()
            err = float(np.abs(a - b).max())
            assert err <= _bound(q, b), f"{case} {cls_name}.{field}[{i}]: max |refimpl - transformers+bnb| {err:.3e}"


def test_masked_lm_keeps_the_head_and_embeddings(stack, checkpoints):
    q = CASES["nf4-double"]
    hf = _hf_load(stack, "BertForMaskedLM", checkpoints["BertForMaskedLM"], q)
    mine = refimpl.BertForMaskedLM.from_pretrained(checkpoints["BertForMaskedLM"], quantization_config=refimpl.BitsAndBytesConfig(**q))
    assert sorted(mine.load_report["quantized"]) == _quantized_modules(stack, hf)
    assert not any(n.startswith("cls.") for n in mine.load_report["quantized"])
    ids = np.random.default_rng(2).integers(0, 99, (2, 9))
    with stack[0].no_grad():
        want = hf(input_ids=stack[0].from_numpy(ids)).logits.numpy()
    assert np.abs(mine(input_ids=ids).logits - want).max() <= _bound(q, want)


@pytest.mark.parametrize("cls_name", ["BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM",
                                      "BertForNextSentencePrediction", "BertForSequenceClassification",
                                      "BertForMultipleChoice", "BertForTokenClassification",
                                      "BertForQuestionAnswering", "RobertaModel", "RobertaForMaskedLM",
                                      "RobertaForCausalLM", "BertGenerationEncoder", "BertGenerationDecoder"])
def test_default_skip_keys_are_transformers(stack, cls_name):
    """refimpl's table of transformers' get_keys_to_not_convert, against transformers itself."""
    from transformers.integrations import get_keys_to_not_convert
    from refimpl.quantization.config import DEFAULT_SKIP

    transformers = stack[1]
    kind = "RobertaConfig" if cls_name.startswith("Roberta") else \
        "BertGenerationConfig" if cls_name.startswith("BertGeneration") else "BertConfig"
    config = _tiny(transformers, kind, is_decoder=cls_name.endswith(("LMHeadModel", "CausalLM", "Decoder")))
    keys = get_keys_to_not_convert(getattr(transformers, cls_name)(config))
    if cls_name == "BertGenerationEncoder":
        keys = [k for k in keys if not k.endswith("LayerNorm")]  # no linear layer: no effect
    assert sorted(set(DEFAULT_SKIP[cls_name])) == sorted(set(keys))


@pytest.mark.parametrize("case", ["nf4-double", "int8"])
def test_bert2bert_generate(stack, tmp_path, case):
    torch, transformers, _ = stack
    q = CASES[case]
    torch.manual_seed(3)
    enc = transformers.BertGenerationEncoder(_tiny(transformers, "BertGenerationConfig", bos_token_id=1, eos_token_id=2))
    dec = transformers.BertGenerationDecoder(_tiny(transformers, "BertGenerationConfig", bos_token_id=1, eos_token_id=2,
                                                   is_decoder=True, add_cross_attention=True))
    ed = transformers.EncoderDecoderModel(encoder=enc, decoder=dec)
    for p in ed.parameters():
        p.data.normal_(0, 0.3)
    ed.config.decoder_start_token_id, ed.config.pad_token_id, ed.config.eos_token_id = 1, 0, 2
    ed.save_pretrained(tmp_path)
    hf = _hf_load(stack, "EncoderDecoderModel", tmp_path, q)
    mine = refimpl.EncoderDecoderModel.from_pretrained(tmp_path, quantization_config=refimpl.BitsAndBytesConfig(**q))
    want_names = _quantized_modules(stack, hf)
    got_names = sorted(["encoder." + n for n in mine.encoder.load_report["quantized"]]
                       + ["decoder." + n for n in mine.decoder.load_report["quantized"]])
    assert got_names == want_names
    ids = np.random.default_rng(4).integers(3, 99, (2, 8))
    with torch.no_grad():
        want = hf.generate(torch.from_numpy(ids), max_new_tokens=8, num_beams=2, do_sample=False).numpy()
    got = mine.generate(ids, max_new_tokens=8, num_beams=2, do_sample=False)
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("case", ["nf4-double", "fp4", "int8"])
def test_checkpoint_saved_quantized_by_transformers_loads(stack, checkpoints, tmp_path, case):
    torch = stack[0]
    q = CASES[case]
    hf = _hf_load(stack, "BertModel", checkpoints["BertModel"], q)
    hf.save_pretrained(tmp_path)
    fresh = refimpl.BertModel.from_pretrained(checkpoints["BertModel"], quantization_config=refimpl.BitsAndBytesConfig(**q))
    loaded = refimpl.BertModel.from_pretrained(tmp_path)  # config.json's quantization_config applies
    assert sorted(loaded.load_report["quantized"]) == sorted(fresh.load_report["quantized"])
    for name in fresh.load_report["quantized"]:
        a, b = fresh.params[name], loaded.params[name]
        if q.get("load_in_4bit"):
            assert (a.dequantized() == b.dequantized()).all(), name
        else:
            assert (a.CB == b.CB).all() and (a.SCB == b.SCB).all(), name
    ids = np.random.default_rng(5).integers(0, 99, (2, 6))
    with torch.no_grad():
        want = hf(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()
    assert np.abs(loaded(input_ids=ids).last_hidden_state - want).max() <= _bound(q, want)


def test_skip_modules_override(stack, checkpoints):
    q = dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["query", "pooler"])
    hf = _hf_load(stack, "BertModel", checkpoints["BertModel"], q)
    mine = refimpl.BertModel.from_pretrained(checkpoints["BertModel"], quantization_config=refimpl.BitsAndBytesConfig(**q))
    assert sorted(mine.load_report["quantized"]) == _quantized_modules(stack, hf)
    assert not any("query" in n for n in mine.load_report["quantized"])


def test_bad_quantization_input_is_named(checkpoints):
    path = checkpoints["BertModel"]
    with pytest.raises(ConfigError, match="dtype='float64' with 4-bit quantization.*dtype='float32'"):
        refimpl.BertModel.from_pretrained(path, dtype="float64", quantization_config=refimpl.BitsAndBytesConfig(load_in_4bit=True))
    with pytest.raises(ConfigError, match="bnb_4bit_compute_dtype='float64' is not supported.*float32"):
        refimpl.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype="float64")
    with pytest.raises(ConfigError, match="bnb_4bit_quant_type='int4' does not exist; choose 'nf4' or 'fp4'"):
        refimpl.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="int4")
    with pytest.raises(ConfigError, match="both True"):
        refimpl.BitsAndBytesConfig(load_in_4bit=True, load_in_8bit=True)
    with pytest.raises(ConfigError, match="quantizes nothing"):
        refimpl.BitsAndBytesConfig()
    with pytest.raises(ConfigError, match="must be a refimpl.BitsAndBytesConfig"):
        refimpl.BertModel.from_pretrained(path, quantization_config="4bit")


def test_bfloat16_without_ml_dtypes_is_named(monkeypatch):
    import sys

    from refimpl.quantization import halfdtypes

    monkeypatch.setitem(sys.modules, "ml_dtypes", None)
    with pytest.raises(ConfigError, match=r"bfloat16 on numpy needs the ml_dtypes package.*pip install"):
        halfdtypes.bfloat16()


def test_quantized_weight_objects_report_their_size(checkpoints):
    model = refimpl.BertModel.from_pretrained(checkpoints["BertModel"],
                                              quantization_config=refimpl.BitsAndBytesConfig(load_in_4bit=True))
    w = model.params["encoder.layer.0.intermediate.dense.weight"]
    assert isinstance(w, qweights.Linear4bitWeight) and w.shape == (100, 64)
    assert w.nbytes() == 100 * 64 // 2 + 4 * (100 * 64 // 64) + 16 * 4


def test_quantized_model_refuses_saving_and_gradients(checkpoints, tmp_path):
    """What a quantized model cannot do yet is a named error, not a traceback from inside numpy."""
    from refimpl.errors import CheckpointError

    q = refimpl.BitsAndBytesConfig(load_in_4bit=True)
    mine = refimpl.BertForSequenceClassification.from_pretrained(checkpoints["BertForSequenceClassification"],
                                                                 quantization_config=q)
    with pytest.raises(CheckpointError, match=r"save_pretrained is not supported for a quantized model .*float model"):
        mine.save_pretrained(tmp_path / "q")
    with pytest.raises(CheckpointError, match=r"loss_and_grads is not supported for a quantized model"):
        mine.loss_and_grads(input_ids=[[5, 6, 7]], labels=[1])


@pytest.mark.parametrize("case", ["nf4-double", "int8"])
def test_trace_records_the_quantization_states(stack, checkpoints, tmp_path, case):
    """``refimpl trace`` of a quantized model files every quantized weight's state under ``quant.``: the
    packed bytes and scales equal bitsandbytes' (so a kernel author compares states, not only outputs)."""
    from refimpl.trace import load_trace, save_trace, trace

    torch = stack[0]
    q = CASES[case]
    hf = _hf_load(stack, "BertModel", checkpoints["BertModel"], q)
    mine = refimpl.BertModel.from_pretrained(checkpoints["BertModel"], quantization_config=refimpl.BitsAndBytesConfig(**q))
    tensors, meta = trace(mine, {"input_ids": np.array([[5, 6, 7, 8]])})
    save_trace(tmp_path / "t.safetensors", tensors, meta)
    tensors, _ = load_trace(tmp_path / "t.safetensors")
    hf_params = dict(hf.named_parameters())
    assert mine.load_report["quantized"]
    for name in mine.load_report["quantized"]:
        ref = hf_params[name]
        if q.get("load_in_4bit"):
            qs = ref.quant_state
            assert np.array_equal(tensors[f"quant.{name}.packed"].view(np.uint8), ref.data.view(torch.uint8).numpy())
            assert np.array_equal(tensors[f"quant.{name}.absmax"], qs.absmax.numpy())
            assert np.array_equal(tensors[f"quant.{name}.state2.absmax"], qs.state2.absmax.numpy())
            assert tensors[f"quant.{name}.offset"][0] == qs.offset.numpy()
        else:
            module = hf.get_submodule(name[: -len(".weight")])
            cb = module.state.CB if module.state.CB is not None else module.weight.CB
            assert np.array_equal(tensors[f"quant.{name}.CB"], cb.numpy())
