"""Regenerate the gradient goldens in weights/grad_goldens/: torch autograd's loss and gradients (float64)
for a few committed tiny checkpoints, so that tests/test_grad_goldens.py checks refimpl's loss_and_grads
without the reference stack.

    python tools/make_grad_goldens.py            # needs torch==2.13.0, transformers==4.57.6

For each case: transformers loads the checkpoint directory (eager attention), is cast to float64 and put in
eval mode; inputs are drawn from numpy's default_rng(seed); loss.backward() gives the gradients. Written:
``<case>.safetensors`` (``input.<name>`` arrays, ``loss``, ``grad.<parameter name>`` in float64, plus
``grad.inputs_embeds`` when the case asks for it) and ``<case>.json`` (library versions, seed, checkpoint,
class, inputs' shapes, the command).
"""

import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("USE_TF", "0")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "weights" / "grad_goldens"


def _labels(rng, v, shape, ignored=0.4):
    lab = rng.integers(0, v, shape)
    lab[rng.random(shape) < ignored] = -100
    lab[..., 0] = 1
    return lab


def cases():
    """name -> (checkpoint dir under weights/, class, inputs builder(rng, config), seed, embeds gradient?)."""
    def mlm(rng, c):
        ids = rng.integers(1, c["vocab_size"], (2, 9))
        return dict(input_ids=ids, attention_mask=(np.arange(9) < np.array([[9], [6]])).astype(np.int64),
                    token_type_ids=rng.integers(0, c["type_vocab_size"], (2, 9)), labels=_labels(rng, c["vocab_size"], (2, 9)))

    def seqcls(rng, c):
        embeds = rng.standard_normal((3, 7, c["hidden_size"]))
        return dict(inputs_embeds=embeds, attention_mask=(np.arange(7) < np.array([[7], [4], [2]])).astype(np.int64),
                    labels=rng.integers(0, c.get("num_labels", 2), (3,)))

    def cross(rng, c):
        return dict(input_ids=rng.integers(1, c["vocab_size"], (2, 6)),
                    encoder_hidden_states=rng.standard_normal((2, 5, c["hidden_size"])),
                    encoder_attention_mask=(np.arange(5) < np.array([[5], [3]])).astype(np.int64),
                    labels=_labels(rng, c["vocab_size"], (2, 6)))

    def qa(rng, c):
        return dict(input_ids=rng.integers(1, c["vocab_size"], (3, 8)), head_mask=np.array([1.0, 0.5, 0.0, 1.0]),
                    start_positions=np.array([2, 11, -3]), end_positions=np.array([5, 7, 3]))

    return {
        "bert_mlm": ("bert_mlm", "BertForMaskedLM", mlm, 11, False),
        "bert_seqcls_single": ("bert_seqcls_single", "BertForSequenceClassification", seqcls, 12, True),
        "bert_lm_head_cross": ("bert_lm_head_cross", "BertLMHeadModel", cross, 13, False),
        "bert_qa": ("bert_qa", "BertForQuestionAnswering", qa, 14, False),
    }


def main():
    import torch
    import transformers
    from safetensors.numpy import save_file

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (ckpt, cls, build, seed, embeds) in cases().items():
        directory = ROOT / "weights" / ckpt
        config = json.loads((directory / "config.json").read_text())
        inputs = build(np.random.default_rng(seed), config)
        hf = getattr(transformers, cls).from_pretrained(directory, attn_implementation="eager").double().eval()
        kw = {}
        for k, v in inputs.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            if t.is_floating_point():
                t = t.double().requires_grad_(k == "inputs_embeds")
            kw[k] = t
        loss = hf(**kw).loss
        loss.backward()
        tensors = {f"input.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
        tensors["loss"] = np.array(float(loss.detach()), dtype=np.float64)
        for pname, p in hf.named_parameters():
            if p.grad is not None:
                tensors[f"grad.{pname}"] = p.grad.numpy().copy()
        if embeds:
            tensors["grad.inputs_embeds"] = kw["inputs_embeds"].grad.numpy().copy()
        save_file(tensors, str(OUT / f"{name}.safetensors"))
        meta = {
            "generated_by": "python tools/make_grad_goldens.py",
            "checkpoint": f"weights/{ckpt}", "class": cls, "dtype": "float64 (the checkpoint's float32 weights cast)",
            "seed": seed, "attn_implementation": "eager", "mode": "eval (no dropout)",
            "inputs": {k: list(np.shape(v)) for k, v in inputs.items()}, "inputs_embeds_grad": embeds,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                         "transformers": transformers.__version__},
        }
        (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        print(f"{name}: loss {float(loss.detach()):.6f}, {sum(k.startswith('grad.') for k in tensors)} gradients", file=sys.stderr)


if __name__ == "__main__":
    main()
