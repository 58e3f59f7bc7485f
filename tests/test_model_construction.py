"""Models as transformers builds them: ``Model(config)`` with transformers' initialisation, config defaults and
overrides, loading exceptions per class, ``save_pretrained`` both ways with transformers 4.57.6,
``return_dict=False`` and ``EncoderDecoderModel(encoder=, decoder=)`` as in the seeds.

Initialisation is checked by distribution, never by value (numpy's generator is not torch's): each
parameter's kind (ones, zeros, normal with a zeroed padding row, uniform) must be the kind transformers'
own freshly built model has for the same name, and the normals' statistics must be those of
normal(0, initializer_range) over large draws.
"""

import json

import numpy as np
import pytest

import refimpl
from refimpl.errors import CheckpointError, ConfigError, InputError
from reference import assert_outputs_match, hf_outputs, reference, to_torch

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=40, type_vocab_size=2)
BERT_CLASSES = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel",
                "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForMultipleChoice",
                "BertForTokenClassification", "BertForQuestionAnswering"]
OTHER_CLASSES = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM", "BertGenerationEncoder",
                 "BertGenerationDecoder"]


def _config(transformers, name, **extra):
    """transformers' config for class ``name`` (tiny sizes; decoders with is_decoder)."""
    kw = dict(TINY, attn_implementation="eager", **extra)  # refimpl's math is eager attention's
    if name.startswith("Roberta"):
        return transformers.RobertaConfig(**kw, pad_token_id=1, is_decoder=name == "RobertaForCausalLM")
    if name.startswith("BertGeneration"):
        kw.pop("type_vocab_size")
        return transformers.BertGenerationConfig(**kw, is_decoder=name == "BertGenerationDecoder")
    return transformers.BertConfig(**kw, is_decoder=name == "BertLMHeadModel")


def _hf_model(torch, transformers, name, seed=0, **extra):
    torch.manual_seed(seed)
    return getattr(transformers, name)(_config(transformers, name, **extra)).eval()


def _inputs(name, seed=0, batch=2, length=7):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, TINY["vocab_size"], size=(batch, length))
    mask = np.ones((batch, length), dtype=np.int64)
    mask[1, -2:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if name.startswith("Bert") and not name.startswith("BertGeneration"):
        inputs["token_type_ids"] = (np.arange(length)[None, :] >= 4).astype(np.int64).repeat(batch, 0)
    if name == "BertForMultipleChoice":
        inputs = {k: np.stack([v, v[::-1]], axis=1) for k, v in inputs.items()}  # [B, C=2, S]
    return inputs


def _hf_run(torch, model, inputs):
    with torch.no_grad():
        return hf_outputs(model(**{k: to_torch(torch, v) for k, v in inputs.items()}))


def _loading_info(transformers, name, directory):
    model, info = getattr(transformers, name).from_pretrained(str(directory), output_loading_info=True,
                                                              attn_implementation="eager")
    return model.eval(), {k: sorted(v) if k != "mismatched_keys" else v for k, v in info.items() if k != "error_msgs"}


# --- initialisation ------------------------------------------------------------------------------------


def _kind(name, arr, pad_rows=()):
    """What a new parameter looks like: 'ones', 'zeros', 'normal' (padding rows zero), or 'uniform'."""
    a = np.asarray(arr, dtype=np.float64)
    if np.all(a == 1):
        return "ones"
    if np.all(a == 0):
        return "zeros"
    body = np.delete(a, list(pad_rows), axis=0) if pad_rows else a
    assert not np.any(body == 0), f"{name}: zeros outside the padding rows {pad_rows}"
    for row in pad_rows:
        assert np.all(a[row] == 0), f"{name}: padding row {row} is not zero"
    bound = np.abs(a).max()
    # a uniform(-b, b) has no mass beyond b and a std of b / sqrt(3); a normal's max is many stds out
    return "uniform" if bound < 2.0 * a.std() else "normal"


@pytest.mark.parity
@pytest.mark.parametrize("name", BERT_CLASSES + OTHER_CLASSES)
def test_new_weights_have_transformers_kinds(name):
    """Every parameter of a freshly built refimpl model is of the kind transformers' freshly built model
    has under the same name (ones, zeros, normal with the padding rows zeroed), and the same names."""
    torch, transformers = reference()
    hf = _hf_model(torch, transformers, name)
    cfg = _config(transformers, name)
    mine = getattr(refimpl, name)(_refimpl_config(name, cfg.to_dict()), seed=0)
    hf_state = {k: v.detach().numpy() for k, v in hf.state_dict().items()
                if not k.endswith(("position_ids", "token_type_ids"))}
    tied = {k for k in hf_state if k.endswith(("decoder.weight", "decoder.bias"))}
    assert set(mine.params) == set(hf_state) - tied
    pad = cfg.pad_token_id
    for k in mine.params:
        rows = (pad,) if k.endswith("word_embeddings.weight") or (
            name.startswith("Roberta") and k.endswith("position_embeddings.weight")) else ()
        assert _kind(k, mine.params[k], rows) == _kind(k, hf_state[k], rows), k


def _refimpl_config(name, data):
    cls = getattr(refimpl, name)
    return cls.config_class.from_dict(data)


def test_normals_have_the_configured_spread():
    """Over ~500k draws the linear and embedding weights are normal(0, initializer_range): mean, std and
    the share within one std (0.6827), each to a few standard errors."""
    cfg = refimpl.BertConfig(vocab_size=3000, hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=200, initializer_range=0.05)
    model = refimpl.BertForMaskedLM(cfg, seed=3)
    draws = np.concatenate([np.asarray(v, np.float64).ravel() for k, v in model.params.items()
                            if k.endswith("weight") and "LayerNorm" not in k and "word_embeddings" not in k]
                           + [np.asarray(model.params["bert.embeddings.word_embeddings.weight"][1:]).ravel()])
    n = draws.size
    assert n > 490_000
    assert abs(draws.mean()) < 4 * 0.05 / np.sqrt(n)
    assert abs(draws.std() / 0.05 - 1) < 4 / np.sqrt(2 * n)
    assert abs(np.mean(np.abs(draws) < 0.05) - 0.682689) < 4 * np.sqrt(0.2166 / n)
    assert np.all(np.asarray(model.params["bert.embeddings.word_embeddings.weight"][0]) == 0)  # pad_token_id 0
    assert model.params["bert.embeddings.word_embeddings.weight"].dtype == np.float32


def test_enc_to_dec_proj_is_nn_linear_default():
    """enc_to_dec_proj, which transformers' _init_weights skips, is uniform(-1/sqrt(D_enc), 1/sqrt(D_enc))
    (nn.Linear's kaiming_uniform with a = sqrt 5), bias too."""
    enc = refimpl.BertConfig(**{**TINY, "hidden_size": 64})
    dec = refimpl.BertConfig(**{**TINY, "hidden_size": 32}, is_decoder=True, add_cross_attention=True)
    model = refimpl.EncoderDecoderModel(refimpl.EncoderDecoderConfig(encoder=enc, decoder=dec), seed=0)
    bound = 1 / np.sqrt(64)
    for name in ("enc_to_dec_proj.weight", "enc_to_dec_proj.bias"):
        w = np.asarray(model.params[name], np.float64)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    w = np.asarray(model.params["enc_to_dec_proj.weight"], np.float64)
    assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.05
    assert model.load_report["initialized"] == ["enc_to_dec_proj.bias", "enc_to_dec_proj.weight"]


def test_seeds_decide_the_weights():
    cfg = refimpl.BertConfig(**TINY)
    a, b, c = (refimpl.BertModel(cfg, seed=s) for s in (1, 1, 2))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["pooler.dense.weight"], c.params["pooler.dense.weight"])
    refimpl.set_seed(5)
    d = refimpl.BertModel(cfg)
    refimpl.set_seed(5)
    e = refimpl.BertModel(cfg)
    assert all(np.array_equal(d.params[k], e.params[k]) for k in d.params)
    f64 = refimpl.BertModel(cfg, seed=1, dtype="float64")
    assert f64.dtype == np.float64 and np.allclose(f64.params["pooler.dense.weight"], a.params["pooler.dense.weight"],
                                                   rtol=1e-7, atol=0)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        refimpl.BertModel(cfg, seed=-1)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
        refimpl.set_seed("0")


# --- configs ---------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_config_defaults_and_model_types_match_transformers(tmp_path):
    torch, transformers = reference()
    for mine, theirs in ((refimpl.BertConfig(), transformers.BertConfig()),
                         (refimpl.BertConfig(num_labels=3), transformers.BertConfig(num_labels=3)),
                         (refimpl.BertGenerationConfig(), transformers.BertGenerationConfig()),
                         (refimpl.RobertaConfig(), transformers.RobertaConfig())):
        want = theirs.to_dict()
        got = mine.to_dict()
        assert mine.num_labels == theirs.num_labels
        for key in ("model_type", "id2label", "label2id", "vocab_size", "pad_token_id",
                    "bos_token_id", "eos_token_id", "hidden_size", "layer_norm_eps", "initializer_range"):
            assert got[key] == want[key], (type(mine).__name__, key, got[key], want[key])
    bert_dir = tmp_path / "bert"
    transformers.BertConfig(**TINY).save_pretrained(bert_dir)
    assert (refimpl.BertGenerationConfig.from_pretrained(bert_dir).to_dict()["model_type"]
            == transformers.BertGenerationConfig.from_pretrained(bert_dir).to_dict()["model_type"] == "bert-generation")
    for overrides in ({"num_labels": 3}, {"id2label": {0: "neg", 1: "neu", 2: "pos"}},
                      {"num_labels": 1, "problem_type": "regression"}):
        theirs = transformers.BertConfig.from_pretrained(bert_dir, **overrides)
        mine = refimpl.BertConfig.from_pretrained(bert_dir, **overrides)
        assert (mine.num_labels, mine.id2label, mine.label2id, mine.problem_type) == (
            theirs.num_labels, theirs.id2label, theirs.label2id, theirs.problem_type), overrides


def test_unknown_override_is_refused(tmp_path):
    refimpl.BertConfig(**TINY).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="has no field 'num_label'"):
        refimpl.BertConfig.from_pretrained(tmp_path, num_label=3)
    model = refimpl.BertModel(refimpl.BertConfig(**TINY), seed=0)
    model.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="has no field 'hidden_sizes'"):
        refimpl.BertModel.from_pretrained(tmp_path, hidden_sizes=4)
    with pytest.raises(ConfigError, match="problem_type='binary'"):
        refimpl.BertForSequenceClassification.from_pretrained(tmp_path, problem_type="binary", init_missing=True)


# --- loading rules ---------------------------------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("name", ["BertForMaskedLM", "BertLMHeadModel", "BertForTokenClassification",
                                  "BertForQuestionAnswering", "BertForSequenceClassification", "BertModel"])
def test_pretraining_checkpoint_loads_into_every_head(tmp_path, name):
    """A BertForPreTraining checkpoint (Google's released layout) loads into every head as transformers
    loads it: the pooler ignored by classes built without one, a head the file lacks initialised only with
    init_missing=True, naming the tensors transformers reports missing; the shared tensors give
    transformers' outputs."""
    torch, transformers = reference()
    _hf_model(torch, transformers, "BertForPreTraining").save_pretrained(tmp_path)
    extra = {"is_decoder": True} if name == "BertLMHeadModel" else {}
    hf, info = _loading_info(transformers, name, tmp_path) if not extra else (None, None)
    if extra:
        model, info = transformers.BertLMHeadModel.from_pretrained(str(tmp_path), output_loading_info=True,
                                                                   attn_implementation="eager", **extra)
        hf = model.eval()
    cls = getattr(refimpl, name)
    if info["missing_keys"]:
        with pytest.raises(CheckpointError, match="init_missing=True"):
            cls.from_pretrained(tmp_path, **extra)
    mine = cls.from_pretrained(tmp_path, init_missing=True, seed=0, **extra)
    assert sorted(mine.load_report.get("initialized", [])) == info["missing_keys"]
    pooler = {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    if not cls.with_pooler:
        assert pooler <= set(mine.load_report["ignored"]) and pooler <= set(info["unexpected_keys"])
    if not info["missing_keys"]:  # same weights: same outputs
        inputs = _inputs(name)
        assert_outputs_match(mine(**inputs).arrays(), _hf_run(torch, hf, inputs), np.float32, name)


@pytest.mark.parity
def test_num_labels_override_matches_transformers(tmp_path):
    torch, transformers = reference()
    _hf_model(torch, transformers, "BertForSequenceClassification").save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"classifier.weight .* has shape \(2, 32\), but the config implies \(3, 32\)"):
        refimpl.BertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    hf = transformers.BertForSequenceClassification.from_pretrained(
        str(tmp_path), problem_type="multi_label_classification", attn_implementation="eager").eval()
    mine = refimpl.BertForSequenceClassification.from_pretrained(tmp_path, problem_type="multi_label_classification")
    inputs = _inputs("BertForSequenceClassification")
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    with torch.no_grad():
        want = hf(**{k: to_torch(torch, v) for k, v in inputs.items()}, labels=to_torch(torch, labels)).loss.item()
    assert abs(float(mine(**inputs, labels=labels).loss) - want) < 1e-6


# --- saving ----------------------------------------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("name", BERT_CLASSES + OTHER_CLASSES + ["EncoderDecoderModel"])
def test_save_round_trip_with_transformers(tmp_path, name):
    """transformers -> refimpl -> refimpl's save_pretrained -> transformers: no missing, unexpected or
    mismatched key, every tensor bit-identical, the same outputs; refimpl reloads its own save bit for bit."""
    torch, transformers = reference()
    if name == "EncoderDecoderModel":
        torch.manual_seed(0)
        enc = transformers.BertConfig(**TINY)
        dec = transformers.BertConfig(**{**TINY, "hidden_size": 24, "intermediate_size": 29}, is_decoder=True,
                                      add_cross_attention=True)
        config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
        hf = transformers.EncoderDecoderModel(config=config).eval()
    else:
        hf = _hf_model(torch, transformers, name)
    hf.save_pretrained(tmp_path / "hf")
    mine = getattr(refimpl, name).from_pretrained(tmp_path / "hf")
    mine.save_pretrained(tmp_path / "mine")
    back, info = _loading_info(transformers, name, tmp_path / "mine")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    original = hf.state_dict()
    for key, value in back.state_dict().items():
        assert torch.equal(value, original[key]), key
    config = json.loads((tmp_path / "mine" / "config.json").read_text())
    assert config["architectures"] == [name] and config["model_type"] == hf.config.model_type
    again = getattr(refimpl, name).from_pretrained(tmp_path / "mine")
    assert all(np.array_equal(np.asarray(again.params[k]), np.asarray(mine.params[k])) for k in mine.params)
    if name != "EncoderDecoderModel":
        inputs = _inputs(name)
        assert _hf_run(torch, back, inputs).keys() == _hf_run(torch, hf, inputs).keys()
        for key, value in _hf_run(torch, back, inputs).items():
            assert np.array_equal(value, _hf_run(torch, hf, inputs)[key]), key


@pytest.mark.parity
@pytest.mark.parametrize("name", BERT_CLASSES + OTHER_CLASSES)
def test_new_refimpl_model_loads_in_transformers(tmp_path, name):
    """refimpl's Model(config, seed) saved -> transformers loads every tensor (nothing missing or left
    over) and computes refimpl's outputs (float32 tolerance)."""
    torch, transformers = reference()
    cfg = _refimpl_config(name, _config(transformers, name).to_dict())
    mine = getattr(refimpl, name)(cfg, seed=0)
    mine.save_pretrained(tmp_path)
    hf, info = _loading_info(transformers, name, tmp_path)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    inputs = _inputs(name)
    assert_outputs_match(mine(**inputs).arrays(), _hf_run(torch, hf, inputs), np.float32, name)


def test_save_into_the_loaded_directory_keeps_the_model_working(tmp_path):
    """Saving over the file a model's weights are mapped from replaces it (a new file renamed over the
    old one), so the loaded model keeps computing the same outputs."""
    refimpl.BertModel(refimpl.BertConfig(**TINY), seed=0).save_pretrained(tmp_path)
    model = refimpl.BertModel.from_pretrained(tmp_path)
    ids = [[5, 6, 7, 8]]
    before = np.asarray(model(input_ids=ids).last_hidden_state).copy()
    refimpl.BertModel(refimpl.BertConfig(**TINY), seed=1).save_pretrained(tmp_path)
    assert np.array_equal(np.asarray(model(input_ids=ids).last_hidden_state), before)
    assert not np.array_equal(np.asarray(refimpl.BertModel.from_pretrained(tmp_path)(input_ids=ids).last_hidden_state),
                              before)
    with pytest.raises(CheckpointError, match="is a file; give a directory"):
        model.save_pretrained(tmp_path / "config.json")


# --- return_dict=False -----------------------------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("name", ["BertModel", "BertForPreTraining", "BertForQuestionAnswering", "BertLMHeadModel"])
def test_return_dict_false_gives_transformers_tuples(name):
    torch, transformers = reference()
    hf = _hf_model(torch, transformers, name)
    mine = getattr(refimpl, name).from_tensors(_refimpl_config(name, hf.config.to_dict()),
                                               {k: v.numpy() for k, v in hf.state_dict().items()})
    inputs = _inputs(name)
    kw = {"output_hidden_states": True, "return_dict": False}
    if name == "BertLMHeadModel":
        kw["use_cache"] = False
    with torch.no_grad():
        hf_tuple = hf(**{k: to_torch(torch, v) for k, v in inputs.items()}, **kw)
    got = mine(**inputs, **kw)
    assert isinstance(got, tuple) and len(got) == len(hf_tuple)
    for g, w in zip(got, hf_tuple):
        if isinstance(w, tuple):
            assert len(g) == len(w)
            for gi, wi in zip(g, w):
                np.testing.assert_allclose(gi, wi.numpy(), atol=1e-5, rtol=1e-5)
        else:
            np.testing.assert_allclose(g, w.numpy(), atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="return_dict must be True or False"):
        mine(**inputs, return_dict="no")


# --- EncoderDecoderModel as the seeds build it -------------------------------------------------------------


@pytest.mark.parity
def test_bert2bert_from_two_models_as_in_the_seeds(tmp_path):
    """The seeds' bert2bert: BertGenerationEncoder / BertGenerationDecoder warm-started from one BERT
    checkpoint, then ``EncoderDecoderModel(encoder=encoder, decoder=decoder)``; its loss is transformers'
    (with the same weights: refimpl's save loaded by transformers), its config transformers' own."""
    torch, transformers = reference()
    _hf_model(torch, transformers, "BertModel").save_pretrained(tmp_path / "bert")
    bert = tmp_path / "bert"
    encoder = refimpl.BertGenerationEncoder.from_pretrained(bert, bos_token_id=1, eos_token_id=2)
    decoder = refimpl.BertGenerationDecoder.from_pretrained(bert, add_cross_attention=True, is_decoder=True,
                                                            bos_token_id=1, eos_token_id=2)
    bert2bert = refimpl.EncoderDecoderModel(encoder=encoder, decoder=decoder)
    input_ids = np.array([[5, 9, 14, 30, 7]])
    labels = np.array([[1, 40, 41, 2]])
    loss = float(bert2bert(input_ids=input_ids, decoder_input_ids=labels, labels=labels).loss)

    bert2bert.save_pretrained(tmp_path / "b2b")
    hf, info = _loading_info(transformers, "EncoderDecoderModel", tmp_path / "b2b")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    with torch.no_grad():
        want = hf(input_ids=torch.tensor(input_ids), decoder_input_ids=torch.tensor(labels),
                  labels=torch.tensor(labels)).loss.item()
    assert abs(loss - want) < 1e-5

    hf_enc = transformers.BertGenerationEncoder.from_pretrained(str(bert), bos_token_id=1, eos_token_id=2)
    hf_dec = transformers.BertGenerationDecoder.from_pretrained(str(bert), add_cross_attention=True, is_decoder=True,
                                                                bos_token_id=1, eos_token_id=2)
    theirs = transformers.EncoderDecoderModel(encoder=hf_enc, decoder=hf_dec).config.to_dict()
    ours = bert2bert.config.to_dict()
    for key in ("model_type", "is_encoder_decoder", "decoder_start_token_id", "pad_token_id"):
        assert ours[key] == theirs[key], key
    for side in ("encoder", "decoder"):
        for key in ("model_type", "is_decoder", "add_cross_attention", "bos_token_id", "eos_token_id"):
            assert ours[side][key] == theirs[side][key], (side, key)

    same = refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(encoder_model=encoder, decoder_model=decoder)
    assert all(np.array_equal(same.params[k], bert2bert.params[k]) for k in bert2bert.params)


def test_encoder_decoder_construction_errors(tmp_path):
    enc = refimpl.BertModel(refimpl.BertConfig(**TINY), seed=0)
    plain = refimpl.BertLMHeadModel(refimpl.BertConfig(**TINY, is_decoder=True), seed=0)
    with pytest.raises(ConfigError, match="built without cross-attention .* add_cross_attention=True"):
        refimpl.EncoderDecoderModel(encoder=enc, decoder=plain)
    with pytest.raises(ConfigError, match="needs a config, or both encoder= and decoder="):
        refimpl.EncoderDecoderModel(encoder=enc)
    dec = refimpl.BertLMHeadModel(refimpl.BertConfig(**TINY, is_decoder=True, add_cross_attention=True), seed=0)
    with pytest.raises(ConfigError, match="encoder must be one of"):
        refimpl.EncoderDecoderModel(encoder=dec, decoder=dec)
    f64 = refimpl.BertModel(refimpl.BertConfig(**TINY), seed=0, dtype="float64")
    with pytest.raises(ConfigError, match="share backend and dtype"):
        refimpl.EncoderDecoderModel(encoder=f64, decoder=dec)
    with pytest.raises(InputError, match="give exactly one of encoder_pretrained_model_name_or_path"):
        refimpl.EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path, encoder_model=enc, decoder_model=dec)
    model = refimpl.EncoderDecoderModel(encoder=enc, decoder=dec)
    assert model.config.decoder.is_decoder and set(model.params) == (
        {f"encoder.{k}" for k in enc.params} | {f"decoder.{k}" for k in dec.params})


def test_ragged_batch_is_named():
    model = refimpl.BertModel(refimpl.BertConfig(**TINY), seed=0)
    with pytest.raises(InputError, match=r"input_ids is ragged: its rows have lengths \[3, 2\]; pad the batch"):
        model(input_ids=[[5, 6, 7], [5, 6]])
    with pytest.raises(InputError, match=r"attention_mask is ragged"):
        model(input_ids=[[5, 6, 7], [5, 6, 0]], attention_mask=[[1, 1, 1], [1, 1]])


def test_new_weights_larger_than_memory_are_refused():
    from refimpl.models.init import physical_memory

    if physical_memory() is None:
        pytest.skip("this system does not report its physical memory; the check is skipped there")
    # 10**12 rows x 32 columns of float32: 128 TB, far beyond any machine; refused before anything is drawn
    config = refimpl.BertConfig(**{**TINY, "vocab_size": 10**12})
    with pytest.raises(ConfigError, match=r"need 128\d{12} bytes .* more than this machine's physical memory of "
                                          r"\d+ bytes .*embeddings.word_embeddings.weight \[1000000000000, 32\]"
                                          r".* Make the config smaller"):
        refimpl.BertModel(config, seed=0)
