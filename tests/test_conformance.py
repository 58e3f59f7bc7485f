"""The conformance tools: traces, the comparison (first divergence in forward order), the float64
oracle's rounding verdict — float32 implementations called rounding, planted bugs called divergent at the
right first tensor — and the ``refimpl trace`` / ``refimpl compare`` commands end to end."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import refimpl
import refimpl.kernels
from refimpl.compare import compare_traces, map_names
from refimpl.errors import InputError
from refimpl.trace import load_trace, save_trace, trace
from conftest import RUN_DIR  # where `python -m refimpl` subprocesses start

ROOT = Path(__file__).resolve().parents[1]
TEXT = "The stock market fell sharply today, and analysts blamed the budget."


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    tok = refimpl.AutoTokenizer.from_pretrained(minilm_dir)
    return minilm_dir, tok


def _inputs(tok, padded_row=False):
    enc = tok([TEXT, "A man is eating food."], padding=True, return_tensors="np")
    batch = {k: np.asarray(v, np.int64) for k, v in enc.items()}
    if padded_row:
        batch["attention_mask"][1] = 0  # a fully padded row
    return batch


def _traces(directory, inputs, **load):
    m32 = refimpl.BertModel.from_pretrained(directory, **load)
    m64 = refimpl.BertModel.from_pretrained(directory, dtype="float64")
    ref, meta = trace(m32, inputs)
    oracle, _ = trace(m64, inputs)
    return ref, meta, oracle


def test_trace_holds_inputs_intermediates_outputs_in_order(minilm, tmp_path):
    directory, tok = minilm
    inputs = _inputs(tok)
    model = refimpl.BertModel.from_pretrained(directory)
    tensors, meta = trace(model, inputs)
    names = list(tensors)
    assert names[0] == "inputs.input_ids" and "embeddings.LayerNorm" in names
    from refimpl.trace import one_core

    with one_core():  # traces run on one core: reproducible whatever the machine's load
        out = model(**inputs)
    np.testing.assert_array_equal(tensors["outputs.last_hidden_state"], out.last_hidden_state)
    np.testing.assert_array_equal(tensors["outputs.pooler_output"], tensors["pooler.activation"])
    np.testing.assert_array_equal(tensors["encoder.layer.5.output.LayerNorm"], out.last_hidden_state)
    assert meta["dtype"] == "float32" and meta["kernels"] == refimpl.kernels.DEFAULT and meta["batch"] == 2
    assert meta["refimpl"] == refimpl.__version__ and len(meta["config_digest"]) == 16
    for fmt in ("safetensors", "npz"):
        path = save_trace(tmp_path / f"t.{fmt}", tensors, meta)
        back, back_meta = load_trace(path)
        assert list(back) == names and back_meta["order"] == names
        for k in names:
            np.testing.assert_array_equal(back[k], tensors[k])


def test_load_trace_refuses_what_is_not_a_trace_and_never_unpickles(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(InputError, match="neither a safetensors nor an npz"):
        load_trace(bad)
    pickled = tmp_path / "p.npz"
    np.savez(pickled, evil=np.array([object()], dtype=object))
    with pytest.raises(InputError, match="neither a safetensors nor an npz"):
        load_trace(pickled)
    with pytest.raises(InputError, match="no such trace file"):
        load_trace(tmp_path / "missing.npz")


def test_a_trace_agrees_with_itself_and_a_nudge_is_found_where_it_is(minilm):
    directory, tok = minilm
    ref, _, _ = _traces(directory, _inputs(tok))
    same = compare_traces(ref, ref)
    assert same.ok and same.first_divergent is None and len(same.results) == len(ref)
    nudged = dict(ref)
    name = "encoder.layer.2.attention.output.dense"
    nudged[name] = ref[name].copy()
    nudged[name][0, 3, 7] += 1e-3
    result = compare_traces(ref, nudged)
    assert not result.ok and result.first_divergent.name == name
    bad = result.first_divergent
    assert bad.where == (0, 3, 7) and bad.frac_out == pytest.approx(1 / ref[name].size)
    names = [r.name for r in result.results]
    assert all(r.ok for r in result.results[:names.index(name)])
    assert "FIRST DIVERGENCE: " + name in result.summary()


def test_names_on_one_side_are_listed_not_failures_unless_strict(minilm):
    directory, tok = minilm
    ref, _, _ = _traces(directory, _inputs(tok))
    partial = {k: v for k, v in ref.items() if "layer.3" not in k}
    result = compare_traces(ref, partial)
    assert result.ok and result.only_reference and all("layer.3" in n for n in result.only_reference)
    assert not compare_traces(ref, partial, strict_names=True).ok


def test_name_maps_with_globs_and_shape_mismatches():
    ref = {"encoder.layer.0.output.dense": np.ones((1, 2, 3), np.float32),
           "encoder.layer.1.output.dense": np.ones((1, 2, 3), np.float32)}
    theirs = {"/blocks.0/ffn/out": np.ones((1, 2, 3), np.float32), "/blocks.1/ffn/out": np.ones((2, 3), np.float32)}
    mapped = map_names(theirs, {"/blocks.*/ffn/out": "encoder.layer.{1}.output.dense"})
    assert set(mapped) == set(ref)
    result = compare_traces(ref, theirs, name_map={"/blocks.*/ffn/out": "encoder.layer.{1}.output.dense"})
    assert not result.ok and "shape [2, 3] in the candidate" in result.first_divergent.line()
    with pytest.raises(InputError, match="match no tensor"):
        map_names(theirs, {"/nothing/*": "x"})


# --- the float64 oracle -----------------------------------------------------------------------------------


def _planted(monkeypatch, bug):
    """Patch refimpl into a buggy candidate implementation (undone by monkeypatch after the test)."""
    import refimpl.models.bert as bert
    import refimpl.ops.masks as masks
    from refimpl.ops import attention as att

    if bug == "mask -1e4":
        monkeypatch.setattr(masks, "finfo_min", lambda dtype: -1e4)
    elif bug == "transposed head split":
        def split_heads(x, n):
            b, length, d = x.shape
            return x.reshape(b, length, d // n, n).transpose(0, 3, 1, 2)  # heads interleaved, not contiguous
        monkeypatch.setattr(bert, "split_heads", split_heads)
    elif bug == "no sqrt scaling":
        def attention(q, k, v, mask=None, head_mask=None, position_scores=None, record=None):
            scores = q @ k.swapaxes(-1, -2)
            record("scores", scores)
            scores = scores + mask if mask is not None else scores  # the / sqrt(H) forgotten
            record("masked_scores", scores)
            probs = att.softmax(scores)
            record("probs", probs)
            return probs @ v, probs
        monkeypatch.setitem(refimpl.kernels.TABLE, "attention", (attention, attention))


PLANTED = {  # bug -> (how the candidate is loaded, the first tensor where it must be caught)
    "tanh GELU": ({"hidden_act": "gelu_new"}, "encoder.layer.0.intermediate.intermediate_act_fn"),
    "LayerNorm eps 1e-5": ({"layer_norm_eps": 1e-5}, "embeddings.LayerNorm"),
    "mask -1e4": ({}, "encoder.layer.0.attention.self.masked_scores"),
    "transposed head split": ({}, "encoder.layer.0.attention.self.scores"),
    "no sqrt scaling": ({}, "encoder.layer.0.attention.self.masked_scores"),
}


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_oracle_catches_planted_bugs_at_the_right_tensor(bug, minilm, monkeypatch):
    directory, tok = minilm
    inputs = _inputs(tok, padded_row=True)  # a fully padded row: what the mask constant decides
    ref, _, oracle = _traces(directory, inputs)
    overrides, where = PLANTED[bug]
    config = refimpl.BertConfig.from_pretrained(directory)
    for k, v in overrides.items():
        setattr(config, k, v)
    _planted(monkeypatch, bug)
    candidate, _ = trace(refimpl.BertModel.from_pretrained(directory, config=config, kernels="reference"), inputs)
    result = compare_traces(ref, candidate, oracle=oracle)
    assert not result.ok
    assert result.first_outside_rounding.name == where, result.summary()


def test_oracle_calls_float32_rounding_rounding(minilm):
    """refimpl's reference kernels and its fast kernels on another batch composition are other float32
    implementations: within rounding everywhere (transformers' own float32: test_oracle_on_transformers)."""
    directory, tok = minilm
    inputs = _inputs(tok, padded_row=True)
    ref, _, oracle = _traces(directory, inputs, kernels="fast")
    other, _ = trace(refimpl.BertModel.from_pretrained(directory, kernels="reference"), inputs)
    result = compare_traces(ref, other, oracle=oracle)
    assert result.ok, result.summary()
    assert all(r.verdict == "within rounding" for r in result.results if r.rounding)


@pytest.mark.parity
def test_oracle_on_transformers_float32(minilm):
    """transformers' float32 (every module's output, hooked: tools/hf_record.py) is within rounding of the
    oracle for every tensor refimpl records, on sentences and on a batch with a fully padded row."""
    from reference import reference

    torch, transformers = reference()
    sys.path.insert(0, str(ROOT / "tools"))
    from hf_record import hf_record

    directory, tok = minilm
    hf = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    for padded in (False, True):
        inputs = _inputs(tok, padded_row=padded)
        ref, _, oracle = _traces(directory, inputs)
        with torch.no_grad(), hf_record(hf) as theirs:
            hf(**{k: torch.tensor(v) for k, v in inputs.items()})
        result = compare_traces(ref, theirs, oracle=oracle)
        assert len(result.results) >= 80
        assert result.ok, result.summary()


# --- the commands -----------------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "refimpl", *map(str, args)], capture_output=True, text=True,
                          cwd=RUN_DIR, timeout=120)


def test_trace_and_compare_commands_end_to_end(minilm_dir, tmp_path):
    golden = tmp_path / "golden.safetensors"
    r = _cli("trace", minilm_dir, "--text", "A man is eating food.", "--text", TEXT, "--with-oracle", "--out", golden)
    assert r.returncode == 0, r.stderr
    tensors, meta = load_trace(golden)
    assert "sample.0.embeddings.LayerNorm" in tensors and "oracle.sample.1.pooler.activation" in tensors
    assert meta["oracle"] and [b["samples"] for b in meta["batches"]] == [[0], [1]]
    r = _cli("compare", golden, golden, "--oracle", "--json", "-")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    nudged = dict(tensors)
    name = "sample.1.encoder.layer.4.intermediate.dense"
    nudged[name] = tensors[name] + np.float32(1e-2)
    np.savez(tmp_path / "cand.npz", **nudged)
    r = _cli("compare", golden, tmp_path / "cand.npz")
    assert r.returncode == 1 and f"FIRST DIVERGENCE: {name}" in r.stdout, r.stdout + r.stderr
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps({"text": "Hello there."}) + "\n"
                     + json.dumps({"input_ids": [[101, 7592, 102]][0], "attention_mask": [1, 1, 0]}) + "\n")
    r = _cli("trace", minilm_dir, "--inputs", lines, "--batch", "2", "--out", tmp_path / "b.npz")
    assert r.returncode == 0, r.stderr
    t, meta = load_trace(tmp_path / "b.npz")
    mask = t["inputs.attention_mask"]  # the text's row, then the explicit row right-padded to its length
    assert meta["batch"] == 2 and mask[0].all() and mask[1].tolist() == [1, 1, 0] + [0] * (mask.shape[1] - 3)


@pytest.mark.parametrize("args, message", [
    (("compare", "missing.safetensors", "missing.npz"), "no such trace file"),
    (("trace", "/nonexistent/model", "--text", "x", "--out", "o.npz"), "neither a checkpoint directory"),
    (("trace", "all-MiniLM-L6-v2", "--task", "translation", "--text", "x", "--out", "o.npz"), "unknown task"),
    (("trace", "all-MiniLM-L6-v2", "--out", "o.npz"), "nothing to trace"),
])
def test_commands_say_what_is_wrong_without_a_traceback(args, message, minilm_dir, tmp_path):
    r = subprocess.run([sys.executable, "-m", "refimpl", *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_name_map_file_of_the_wrong_kind_is_named(tmp_path):
    """``compare --map F``: deeply nested or non-UTF-8 JSON is the command's error, not a RecursionError."""
    from refimpl.cli import CliError, _name_map

    deep, latin = tmp_path / "deep.json", tmp_path / "latin.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    latin.write_bytes(b'{"caf\xe9": "x"}')
    with pytest.raises(CliError, match=r"--map .*deep.json: not JSON \(nested too deeply"):
        _name_map(deep)
    with pytest.raises(CliError, match=r"--map .*latin.json: not UTF-8 text"):
        _name_map(latin)


@pytest.mark.parity
def test_generation_trace_records_every_step(tmp_path):
    """``refimpl trace ED_DIR --generate N``: the encoder once, every decoder step, the search, the sequences."""
    from generation_models import build_encoder_decoder, source_batch

    _, path, eos = build_encoder_decoder(tmp_path, "bert")
    ids, mask = source_batch(batch=1)
    lines = tmp_path / "in.jsonl"
    lines.write_text(json.dumps({"input_ids": ids[0].tolist(), "attention_mask": mask[0].tolist()}) + "\n")
    r = _cli("trace", path, "--inputs", lines, "--generate", "4", "--num-beams", "2", "--out", tmp_path / "g.npz")
    assert r.returncode == 0, r.stderr
    tensors, meta = load_trace(tmp_path / "g.npz")
    want = refimpl.EncoderDecoderModel.from_pretrained(path).generate(ids, attention_mask=mask, max_new_tokens=4,
                                                                       num_beams=2)
    np.testing.assert_array_equal(tensors["outputs.sequences"], want)
    steps = {int(k.split(".")[1]) for k in tensors if k.startswith("step.")}
    assert steps == set(range(want.shape[1] - 1)) and "step.0.search.beam_indices" in tensors
    assert "encoder.embeddings.LayerNorm" in tensors and meta["generate"] == {"max_new_tokens": 4, "num_beams": 2}
