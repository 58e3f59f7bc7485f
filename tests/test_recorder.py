"""The recorder: its API (globs, streaming, one forward per recorder), completeness (every name documented
and every documented name recorded, docs/intermediates.md current), that the last recorded tensors are
the outputs, that recording changes no result, and that both kernel sets record the same names.
Parity of the recorded tensors with transformers is tests/test_recorder_parity.py."""

import sys
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.errors import InputError
from refimpl.recorder import MEANINGS, meaning_key, pattern_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_intermediates_doc as doc  # noqa: E402


@pytest.fixture(scope="module")
def examples():
    return doc.examples()


def test_docs_intermediates_is_what_the_code_records():
    path = Path(__file__).resolve().parents[1] / "docs" / "intermediates.md"
    assert path.read_text() == doc.render(), "docs/intermediates.md is stale: run python tools/make_intermediates_doc.py"


def test_every_recorded_name_is_documented_and_every_meaning_is_recorded(examples):
    used = set()
    for title, rec in examples:
        for name in rec:
            key = meaning_key(name)
            assert key is not None, f"{name} ({title}) has no entry in refimpl.recorder.MEANINGS"
            used.add(key)
    assert used == set(MEANINGS), f"documented but never recorded: {sorted(set(MEANINGS) - used)}"


def test_pattern_of():
    assert pattern_of("step.12.decoder.bert.encoder.layer.3.output.dense") == \
        "step.{t}.decoder.bert.encoder.layer.{i}.output.dense"
    assert pattern_of("embeddings.LayerNorm") == "embeddings.LayerNorm"


def _model(cls=refimpl.BertModel, kernels=None, dtype="float32", **cfg):
    model = doc.random_model(cls, doc.config(**cfg))
    if kernels is None and dtype == "float32":
        return model
    tensors = {k: np.asarray(v, np.float32) for k, v in model.params.items()}
    return cls.from_tensors(model.config, tensors, dtype=dtype, kernels=kernels)


IDS = np.random.default_rng(0).integers(5, 99, (3, 6))


def test_last_recorded_tensors_are_the_outputs():
    model = _model()
    with refimpl.record(model) as rec:
        out = model(input_ids=IDS, output_hidden_states=True, output_attentions=True)
    names = list(rec)
    assert names[-1] == "pooler.activation" and names[-2] == "pooler.dense"
    np.testing.assert_array_equal(rec["pooler.activation"], out.pooler_output)
    np.testing.assert_array_equal(rec["encoder.layer.1.output.LayerNorm"], out.last_hidden_state)
    np.testing.assert_array_equal(rec["embeddings.LayerNorm"], out.hidden_states[0])
    for i in range(2):
        np.testing.assert_array_equal(rec[f"encoder.layer.{i}.output.LayerNorm"], out.hidden_states[i + 1])
        np.testing.assert_array_equal(rec[f"encoder.layer.{i}.attention.self.probs"], out.attentions[i])
    head = _model(refimpl.BertForMaskedLM)
    labels = np.where(IDS % 3 == 0, -100, IDS)
    with refimpl.record(head) as rec:
        out = head(input_ids=IDS, labels=labels)
    assert list(rec)[-2:] == ["cls.predictions.decoder", "loss"]
    np.testing.assert_array_equal(rec["cls.predictions.decoder"], out.logits)
    assert rec["loss"] == out.loss


def test_recording_changes_no_result_and_costs_nothing_without_a_recorder(monkeypatch):
    """With a recorder the outputs are bit-identical to a call without one (the fast set's row blocks
    assemble their records; nothing recorded is written into afterwards). The machine is taken as free
    for both calls: a busy neighbour would change the thread split, and float32 rounding with it."""
    import refimpl.kernels.threads as threads

    monkeypatch.setattr(threads, "free_cores", lambda wanted: wanted)
    model = _model()
    ids = np.random.default_rng(1).integers(5, 99, (40, 7))  # 280 rows: row blocks on worker threads
    plain = model(input_ids=ids).last_hidden_state
    with refimpl.record(model) as rec:
        recorded = model(input_ids=ids).last_hidden_state
    np.testing.assert_array_equal(plain, recorded)
    assert model.kernels.recorder is None and model._ops().recorder is None  # nothing left bound
    q = rec["encoder.layer.0.attention.self.query"]
    assert q.shape == (40, 7, model.config.hidden_size)


def test_both_kernel_sets_record_the_same_names_and_values():
    fast, ref = _model(kernels="fast", dtype="float64"), _model(kernels="reference", dtype="float64")
    recs = []
    for model in (fast, ref):
        with refimpl.record(model) as rec:
            model(input_ids=np.random.default_rng(2).integers(5, 99, (30, 9)))
        recs.append(rec)
    assert list(recs[0]) == list(recs[1])
    for name in recs[0]:
        np.testing.assert_allclose(recs[0][name], recs[1][name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_include_globs_callback_and_keep():
    model = _model()
    with refimpl.record(model, include="encoder.layer.1.*") as rec:
        model(input_ids=IDS)
    assert rec and all(n.startswith("encoder.layer.1.") for n in rec)
    rec2 = refimpl.Recorder(include=["*.probs", "pooler.*"])
    model(input_ids=IDS, recorder=rec2)
    assert list(rec2) == ["encoder.layer.0.attention.self.probs", "encoder.layer.1.attention.self.probs",
                          "pooler.dense", "pooler.activation"]
    streamed = []
    stream = refimpl.Recorder(callback=lambda name, a: streamed.append((name, a.shape)))
    model(input_ids=IDS, recorder=stream)
    assert len(stream) == 0 and [n for n, _ in streamed] == list(rec2_all(model))
    kept = refimpl.Recorder(callback=lambda name, a: None, keep=True)
    model(input_ids=IDS, recorder=kept)
    assert list(kept) == [n for n, _ in streamed]


def rec2_all(model):
    rec = refimpl.Recorder()
    model(input_ids=IDS, recorder=rec)
    return rec


def test_one_forward_per_recorder_and_scope_ends_with_the_block():
    model = _model()
    with refimpl.record(model) as rec:
        model(input_ids=IDS)
        with pytest.raises(InputError, match="recorded twice"):
            model(input_ids=IDS)
    model(input_ids=IDS)  # outside the block: records nothing, raises nothing
    assert "embeddings.sum" in rec
    with pytest.raises(KeyError, match="was not recorded"):
        rec["encoder.layer.9.output.dense"]
    fresh = refimpl.Recorder(include="pooler.*")
    model(input_ids=IDS, recorder=fresh)
    with pytest.raises(InputError, match="recorded twice"):  # names are tracked even when not kept
        model(input_ids=IDS, recorder=fresh)


def test_beam_search_records_every_step_and_its_bookkeeping(examples):
    title, rec = examples[-1]
    steps = sorted({int(n.split(".")[1]) for n in rec if n.startswith("step.")})
    assert steps == list(range(len(steps))) and len(steps) >= 2
    for t in steps:
        scores = rec[f"step.{t}.search.scores"]
        idx = rec[f"step.{t}.search.beam_indices"]
        assert scores.shape == (doc.B * doc.BEAMS, doc.V) and idx.shape == (doc.B * doc.BEAMS,)
        assert rec[f"step.{t}.search.beam_scores"].shape == rec[f"step.{t}.search.next_tokens"].shape == (doc.B, doc.BEAMS)
        # the reorder index picks, for each running beam, a row of the same input
        assert np.array_equal(idx // doc.BEAMS, np.repeat(np.arange(doc.B), doc.BEAMS))
    # cache keys grow by one position per step
    t_len = [rec[f"step.{t}.decoder.bert.encoder.layer.0.attention.self.cache_key"].shape[2] for t in steps]
    assert t_len == [t + 1 for t in steps]


def test_generate_scores_are_the_recorded_ones():
    rng = np.random.default_rng(5)
    dec_cfg = doc.config(is_decoder=True, add_cross_attention=True)
    dec = doc.random_model(refimpl.BertLMHeadModel, dec_cfg, seed=3)
    with refimpl.record(dec) as rec:
        out = dec.generate(rng.integers(5, 99, (2, 3)), max_new_tokens=3, num_beams=2, return_dict_in_generate=True,
                           output_scores=True)
    for t, scores in enumerate(out.scores):
        np.testing.assert_array_equal(rec[f"step.{t}.search.scores"], scores)
