"""refimpl's record of every intermediate equals transformers', tensor by tensor, under the same names.

transformers' tensors come out of its own modules through tools/hf_record.py (hooks; the rules are in its
docstring). Each case runs in float64 (bound 1e-10 absolute + relative, the float64 row of
tests/tolerances.py: only the summation order differs) and in float32 (the table's bound for the
tensor's kind, or no further from transformers' float64 than transformers' own float32 is, as the
other parity tests). Both kernel sets record (the suite runs once per set). The name sets must be
equal: a name refimpl records that transformers has no tensor for, or the reverse, fails.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import refimpl
from generation_models import build_decoder, build_encoder_decoder, prompt_batch, source_batch
from reference import reference, to_torch
from tolerances import TOLERANCES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from hf_record import hf_record  # noqa: E402

pytestmark = pytest.mark.parity

TINY = dict(vocab_size=99, hidden_size=12, num_attention_heads=3, intermediate_size=37, num_hidden_layers=2,
            max_position_embeddings=24, type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            initializer_range=0.2)


def kind(name):
    """The tolerance-table row of a recorded name."""
    last = name.rsplit(".", 1)[-1]
    if last in ("probs",):
        return "attn"
    if name.endswith("loss"):
        return "loss"
    if name.endswith(("decoder", "classifier", "qa_outputs", "seq_relationship")) or "scores" in last:
        return "logits"
    return "hidden"


def assert_records_match(mine, theirs, dtype, truth=None, skip=("search.",)):
    mine = {k: np.asarray(refimpl.backend.to_host(v), np.float64) for k, v in mine.items()
            if not any(s in k for s in skip)}
    # transformers computes causal-LM losses in float32 even for a float64 model (tests/tolerances.py)
    float32_loss = {k for k, v in theirs.items() if k.endswith("loss") and v.dtype == np.float32}
    theirs = {k: np.asarray(v, np.float64) for k, v in theirs.items()}
    assert sorted(mine) == sorted(theirs), (
        f"only refimpl: {sorted(set(mine) - set(theirs))[:10]}; only transformers: {sorted(set(theirs) - set(mine))[:10]}")
    failures = []
    for name, want in theirs.items():
        got = mine[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        atol, rtol = TOLERANCES["float32" if name in float32_loss else dtype][kind(name)]
        finite = np.abs(want) < np.finfo(dtype).max / 4  # masked score entries (finfo.min + s): compared exactly below
        err = np.abs(got - want)
        ok = err <= atol + rtol * np.abs(want)
        if truth is not None and name in truth:  # float32: no further from float64 than torch's float32 at worst
            t = np.asarray(truth[name], np.float64)
            torch_worst = np.abs(want - t)[finite].max() if finite.any() else 0.0
            ok |= np.abs(got - t) <= atol + rtol * np.abs(t) + torch_worst
        bound = atol + rtol * np.abs(want)
        bad = finite & ~ok
        if bad.any() or not np.array_equal(got[~finite] < -1e30, want[~finite] < -1e30):
            i = np.unravel_index(np.argmax(np.where(finite, err - bound, -np.inf)), err.shape)
            failures.append(f"{name}: max error {err[finite].max():.3e} at {i}: refimpl {got[i]!r}, transformers {want[i]!r}")
    assert not failures, "\n".join(failures[:12])
    return len(theirs)


def _hf(transformers, cls, **cfg):
    config_cls = transformers.BertConfig if not cls.startswith("Roberta") else transformers.RobertaConfig
    if cls.startswith("BertGeneration"):
        config_cls = transformers.BertGenerationConfig
    return getattr(transformers, cls)(config_cls(**{**TINY, **cfg}, attn_implementation="eager")).eval()


def _inputs(rng, batch=2, seq=7, choices=None, labels=None, types=True):
    shape = (batch, choices, seq) if choices else (batch, seq)
    ids = rng.integers(5, 99, shape)
    mask = np.ones(shape, np.int64)
    mask[1, ..., seq - 2:] = 0  # padding in row 1
    out = {"input_ids": ids, "attention_mask": mask}
    if types:
        out["token_type_ids"] = rng.integers(0, 2, shape)
    return out


CASES = {  # name -> (class, config, extra inputs)
    "BertModel": ("BertModel", {}, {"head_mask": "yes"}),
    "BertModel-relative_key_query": ("BertModel", {"position_embedding_type": "relative_key_query"}, {}),
    "BertModel-relative_key": ("BertModel", {"position_embedding_type": "relative_key", "hidden_act": "gelu_new"}, {}),
    "BertForPreTraining": ("BertForPreTraining", {}, {"labels": "tokens", "next_sentence_label": "nsp"}),
    "BertForMaskedLM": ("BertForMaskedLM", {}, {"labels": "tokens"}),
    "BertLMHeadModel": ("BertLMHeadModel", {"is_decoder": True}, {"labels": "tokens"}),
    "BertForNextSentencePrediction": ("BertForNextSentencePrediction", {}, {"labels": "nsp"}),
    "BertForSequenceClassification": ("BertForSequenceClassification", {"num_labels": 3}, {"labels": "class"}),
    "BertForMultipleChoice": ("BertForMultipleChoice", {}, {"labels": "choice"}),
    "BertForTokenClassification": ("BertForTokenClassification", {"num_labels": 5}, {"labels": "token_class"}),
    "BertForQuestionAnswering": ("BertForQuestionAnswering", {}, {"labels": "span"}),
    "RobertaForMaskedLM": ("RobertaForMaskedLM", {"pad_token_id": 1, "type_vocab_size": 1}, {"labels": "tokens"}),
    "BertGenerationDecoder": ("BertGenerationDecoder", {"is_decoder": True}, {"labels": "tokens"}),
}


def _case_inputs(rng, cls, extra, cfg):
    choices = 3 if cls == "BertForMultipleChoice" else None
    types = not cls.startswith(("BertGeneration", "Roberta"))
    inputs = _inputs(rng, choices=choices, types=types)
    shape = inputs["input_ids"].shape
    if "head_mask" in extra:
        inputs["head_mask"] = np.array([[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]], np.float32)
    lab = extra.get("labels")
    if lab == "tokens":
        inputs["labels"] = np.where(rng.random(shape) < 0.3, -100, rng.integers(0, 99, shape))
    elif lab == "nsp":
        inputs["labels"] = rng.integers(0, 2, (shape[0],))
    elif lab == "class":
        inputs["labels"] = rng.integers(0, cfg["num_labels"], (shape[0],))
    elif lab == "choice":
        inputs["labels"] = rng.integers(0, 3, (shape[0],))
    elif lab == "token_class":
        inputs["labels"] = rng.integers(0, cfg["num_labels"], shape)
    elif lab == "span":
        inputs["start_positions"], inputs["end_positions"] = np.array([1, 9]), np.array([3, 2])
    if extra.get("next_sentence_label"):
        inputs["next_sentence_label"] = rng.integers(0, 2, (shape[0],))
    return inputs


def _hf_call(torch, model, inputs, dtype):
    kw = {k: to_torch(torch, v) for k, v in inputs.items()}
    if dtype == "float64":
        kw = {k: v.double() if v.is_floating_point() else v for k, v in kw.items()}
    with torch.no_grad(), hf_record(model) as rec:
        out = model(**kw)
    if out.get("loss") is not None:  # the loss is the model's output, not a module's
        rec["loss"] = out.loss.numpy().copy()
    return rec


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_records_match_transformers(case, tmp_path):
    torch, transformers = reference()
    cls, cfg, extra = CASES[case]
    torch.manual_seed(0)
    hf = _hf(transformers, cls, **cfg)
    hf.save_pretrained(tmp_path)
    inputs = _case_inputs(np.random.default_rng(1), cls, extra, cfg)
    theirs64 = _hf_call(torch, hf.double(), inputs, "float64")
    theirs32 = _hf_call(torch, hf.float(), inputs, "float32")
    for dtype, theirs in (("float64", theirs64), ("float32", theirs32)):
        model = getattr(refimpl, cls).from_pretrained(tmp_path, dtype=dtype)
        with refimpl.record(model) as rec:
            model(**inputs)
        n = assert_records_match(rec, theirs, dtype, truth=theirs64 if dtype == "float32" else None)
        assert n >= 20, n


def test_decoder_with_cache_records_match_transformers(tmp_path):
    """A relative-position decoder with cross-attention: a 4-token call that fills the cache, then one
    more token through the cache (cache_key / cache_value: what attention reads after the write)."""
    torch, transformers = reference()
    torch.manual_seed(2)
    hf = _hf(transformers, "BertLMHeadModel", is_decoder=True, add_cross_attention=True,
             position_embedding_type="relative_key")
    hf.save_pretrained(tmp_path)
    rng = np.random.default_rng(3)
    ids = rng.integers(5, 99, (2, 5))
    enc = rng.standard_normal((2, 6, 12))
    for dtype in ("float64", "float32"):
        t = torch.float64 if dtype == "float64" else torch.float32
        model_t = hf.to(t)
        mine = refimpl.BertLMHeadModel.from_pretrained(tmp_path, dtype=dtype)
        with torch.no_grad():
            first = model_t(input_ids=torch.tensor(ids[:, :4]), encoder_hidden_states=torch.tensor(enc, dtype=t),
                            use_cache=True)
            with hf_record(model_t) as theirs:
                model_t(input_ids=torch.tensor(ids[:, 4:]), encoder_hidden_states=torch.tensor(enc, dtype=t),
                        past_key_values=first.past_key_values, use_cache=True)
        out = mine(input_ids=ids[:, :4], encoder_hidden_states=enc.astype(dtype))
        with refimpl.record(mine) as rec:
            mine(input_ids=ids[:, 4:], encoder_hidden_states=enc.astype(dtype), past_key_values=out.past_key_values)
        assert any(k.endswith("attention.self.cache_key") for k in rec)
        assert assert_records_match(rec, theirs, dtype) >= 30


def test_bert2bert_generation_records_match_transformers(tmp_path):
    """Greedy bert2bert generation (hidden sizes 32 -> 24: enc_to_dec_proj): the encoder once, every
    decoder step under step.{t}., cross-attention keys/values once; and the search's recorded scores and
    tokens are the returned ones."""
    torch, transformers = reference()
    _, path, eos = build_encoder_decoder(tmp_path, "bert")
    hf = transformers.EncoderDecoderModel.from_pretrained(path, attn_implementation="eager").eval()  # hookable
    ids, mask = source_batch()
    mine = refimpl.EncoderDecoderModel.from_pretrained(path, dtype="float64")
    with torch.no_grad(), hf_record(hf.double(), decoder_prefix="decoder") as theirs:
        ref = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=5, do_sample=False,
                          num_beams=1, return_dict_in_generate=True, output_scores=True)
    with refimpl.record(mine) as rec:
        out = mine.generate(ids, attention_mask=mask, max_new_tokens=5, return_dict_in_generate=True,
                            output_scores=True)
    np.testing.assert_array_equal(out.sequences, ref.sequences.numpy())
    steps = out.sequences.shape[1] - 1
    assert f"step.{steps - 1}.decoder.cls.predictions.decoder" in rec and f"step.{steps}.decoder.cls.predictions.decoder" not in rec
    assert "enc_to_dec_proj" in rec and "decoder.bert.encoder.layer.1.crossattention.self.key" in rec
    assert assert_records_match(rec, theirs, "float64") > 100
    for t in range(steps):
        np.testing.assert_array_equal(rec[f"step.{t}.search.scores"], out.scores[t])
        np.testing.assert_array_equal(rec[f"step.{t}.search.next_tokens"], out.sequences[:, t + 1])


def test_decoder_only_generation_records_steps(tmp_path):
    torch, transformers = reference()
    _, path, eos = build_decoder(tmp_path, "bert")
    hf = transformers.BertLMHeadModel.from_pretrained(path, attn_implementation="eager").eval()
    ids, mask = prompt_batch()
    mine = refimpl.BertLMHeadModel.from_pretrained(path, dtype="float64")
    with torch.no_grad(), hf_record(hf.double(), decoder_prefix="") as theirs:
        hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=3, do_sample=False)
    with refimpl.record(mine) as rec:
        mine.generate(ids, attention_mask=mask, max_new_tokens=3)
    assert assert_records_match(rec, theirs, "float64") > 50
