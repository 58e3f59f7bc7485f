"""The worked ONNX Runtime example (tools/onnx_conformance.py, docs/CONFORMANCE.md) runs for real: an
export of all-MiniLM-L6-v2 by torch's exporter, its node outputs named in refimpl's terms, is within
float32 rounding of refimpl's float64 oracle at every mapped tensor; the same export with one LayerNorm's
epsilon planted wrong is caught at exactly that node."""

import sys
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.compare import compare_traces
from refimpl.trace import trace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def exported(minilm_dir, tmp_path_factory):
    from reference import reference

    reference()
    pytest.importorskip("onnxruntime", reason="the conformance example needs onnx and onnxruntime (test extra)")
    import onnx_conformance as oc

    work = tmp_path_factory.mktemp("onnx")
    return oc, oc.export(minilm_dir, work / "model.onnx"), work


def _golden(minilm_dir, text):
    tok = refimpl.AutoTokenizer.from_pretrained(minilm_dir)
    inputs = {k: np.asarray(v, np.int64) for k, v in tok([text], return_tensors="np").items()}
    ref, _ = trace(refimpl.BertModel.from_pretrained(minilm_dir), inputs)
    oracle, _ = trace(refimpl.BertModel.from_pretrained(minilm_dir, dtype="float64"), inputs)
    return inputs, ref, oracle


def test_onnx_runtime_is_within_rounding_node_by_node(exported, minilm_dir):
    oc, path, work = exported
    inputs, ref, oracle = _golden(minilm_dir, "ONNX Runtime runs the exported graph node by node.")
    mapping = oc.expose(path, work / "intermediates.onnx")
    candidate = oc.run(work / "intermediates.onnx", mapping, inputs)
    result = compare_traces(ref, candidate, oracle=oracle)
    assert len(result.results) >= 80, [r.name for r in result.results]
    assert result.ok, result.summary()
    for name in ("embeddings.sum", "encoder.layer.3.attention.self.masked_scores", "encoder.layer.5.output.LayerNorm",
                 "pooler.activation", "outputs.last_hidden_state"):
        assert any(r.name == name for r in result.results), name


def test_a_planted_bug_in_the_export_is_caught_at_its_node(exported, minilm_dir):
    oc, path, work = exported
    inputs, ref, oracle = _golden(minilm_dir, "A planted bug must be found where it was planted.")
    oc.plant_layer_norm_eps(path, work / "bug.onnx")
    mapping = oc.expose(work / "bug.onnx", work / "bug-intermediates.onnx")
    result = compare_traces(ref, oc.run(work / "bug-intermediates.onnx", mapping, inputs), oracle=oracle)
    assert not result.ok
    assert result.first_outside_rounding.name == "encoder.layer.2.attention.output.LayerNorm", result.summary()
