"""Worked example: check an ONNX export of a BERT model, run by ONNX Runtime, against refimpl, node by node.

    python tools/onnx_conformance.py                        # all-MiniLM-L6-v2, one sentence
    python tools/onnx_conformance.py --plant-bug            # the same export with a wrong LayerNorm eps

Steps (docs/CONFORMANCE.md walks through them):
1. export transformers' BertModel with torch's (legacy, TorchScript-based) ONNX exporter;
2. expose intermediate node outputs as graph outputs, and name them in refimpl's terms (:func:`name_map`):
   the exporter names each node after its module (``/encoder/layer.0/attention/self/query/Add``), so a
   module's output is the last node of its scope; attention's internals are the Softmax node's input
   (``masked_scores``) and output (``probs``) and the first MatMul of the scope (``scores``); the
   embeddings' sum is the embeddings LayerNorm's input;
3. run it with ONNX Runtime and write its tensors under refimpl's names (an npz);
4. ``refimpl trace ... --with-oracle`` and ``refimpl compare golden candidate --oracle``.

Needs torch, transformers, onnx and onnxruntime (the test extra); refimpl itself needs none of them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SHAPE_OPS = {"Constant", "Shape", "Unsqueeze", "Concat", "Cast", "Slice", "Expand", "ConstantOfShape", "Equal",
             "Where", "Range"}


def export(model_dir, path, opset=17):
    """transformers' BertModel (eager attention) as ONNX at ``path``, batch and length dynamic."""
    import torch
    import transformers

    model = transformers.BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    ids = torch.tensor([[101, 7592, 2088, 102]])
    with torch.no_grad():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(path),
                          input_names=list(INPUTS), output_names=["last_hidden_state", "pooler_output"],
                          dynamic_axes={k: {0: "batch", 1: "length"} for k in INPUTS}, opset_version=opset,
                          dynamo=False)
    return Path(path)


def _module(node_name):
    """``/encoder/layer.0/attention/self/query/Add`` -> ``encoder.layer.0.attention.self.query``."""
    return node_name.rsplit("/", 1)[0].strip("/").replace("/", ".")


def name_map(model) -> dict:
    """ONNX tensor name -> refimpl name, for an exported BERT (see the module docstring)."""
    last, first_matmul, mapping = {}, {}, {}
    for node in model.graph.node:
        scope = _module(node.name)
        if node.op_type not in SHAPE_OPS and scope:
            last[scope] = node.output[0]
        if node.op_type == "MatMul" and scope.endswith("attention.self") and scope not in first_matmul:
            first_matmul[scope] = node.output[0]
        if node.op_type == "Softmax" and scope.endswith("attention.self"):
            mapping[node.input[0]] = scope + ".masked_scores"
            mapping[node.output[0]] = scope + ".probs"
        if node.op_type == "LayerNormalization" and scope == "embeddings.LayerNorm":
            mapping[node.input[0]] = "embeddings.sum"
    for scope, tensor in last.items():
        name = scope + ".context" if scope.endswith("attention.self") else scope
        mapping.setdefault(tensor, name)
    for scope, tensor in first_matmul.items():
        mapping[tensor] = scope + ".scores"
    return mapping


def expose(path, out_path):
    """A copy of the model at ``out_path`` whose mapped intermediates are graph outputs; returns the map."""
    import onnx

    model = onnx.load(str(path))
    mapping = name_map(model)
    present = {o.name for o in model.graph.output}
    for tensor in mapping:
        if tensor not in present:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))
    onnx.save(model, str(out_path))
    return mapping


def plant_layer_norm_eps(path, out_path, scope="encoder.layer.2.attention.output.LayerNorm", eps=1e-5):
    """The planted bug: one LayerNorm's epsilon changed (MiniLM uses 1e-12)."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type == "LayerNormalization" and _module(node.name) == scope:
            for attr in node.attribute:
                if attr.name == "epsilon":
                    attr.f = eps
            break
    else:
        raise ValueError(f"no LayerNormalization node in scope {scope}")
    onnx.save(model, str(out_path))


def run(path, mapping, inputs) -> dict:
    """ONNX Runtime on ``inputs``: every mapped tensor under its refimpl name, plus the two outputs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # node by node, as exported
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {k: np.asarray(inputs[k], np.int64) for k in INPUTS})
    out = {}
    for name, value in zip(names, values):
        if name in mapping:
            out[mapping[name]] = value
        if name in ("last_hidden_state", "pooler_output"):  # the graph's outputs (also a module's last node)
            out["outputs." + name] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--text", default="The quick brown fox jumps over the lazy dog.")
    ap.add_argument("--plant-bug", action="store_true", help="layer 2's attention-output LayerNorm eps 1e-5")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temporary directory)")
    args = ap.parse_args(argv)
    from refimpl.cli import _model_dir
    from refimpl.trace import load_trace

    work = Path(args.dir or tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    model_dir = _model_dir(args.model)
    golden = work / "golden.safetensors"
    subprocess.run([sys.executable, "-m", "refimpl", "trace", str(model_dir), "--text", args.text, "--with-oracle",
                    "--out", str(golden)], check=True)
    inputs = {k[len("inputs."):]: v for k, v in load_trace(golden)[0].items() if k.startswith("inputs.")}
    onnx_path = export(model_dir, work / "model.onnx")
    if args.plant_bug:
        plant_layer_norm_eps(onnx_path, onnx_path)
    mapping = expose(onnx_path, work / "model-intermediates.onnx")
    candidate = run(work / "model-intermediates.onnx", mapping, inputs)
    np.savez(work / "onnxruntime.npz", **candidate)
    print(f"ONNX Runtime: {len(candidate)} tensors under refimpl's names -> {work / 'onnxruntime.npz'}")
    return subprocess.run([sys.executable, "-m", "refimpl", "compare", str(golden), str(work / "onnxruntime.npz"),
                           "--oracle"]).returncode


if __name__ == "__main__":
    raise SystemExit(main())
