"""Write tiny reference checkpoints and their golden outputs, produced by transformers (the reference).

For every BERT class, every supported activation and every position-embedding type, this builds a tiny
odd-sized model (vocab 99, hidden 32, 4 heads, intermediate 37) with transformers 4.57.6 and a fixed
seed, runs it on fixed inputs with eager attention, and writes ``weights/<name>/``:

    config.json         the model's config (as transformers saves it)
    model.safetensors   its weights (as transformers saves them)
    golden.safetensors  inputs ("input.<kwarg>") and every output ("output.<field>[.<i>]")
    golden.json         class, forward kwargs, dtype, library versions, seed, and the generating command

The tests (tests/test_goldens.py) load these with refimpl and compare every tensor, without torch.

    python tools/make_goldens.py            # regenerate all
    python tools/make_goldens.py --only bert_mlm_relative_key
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import safetensors.numpy
import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"
SEED = 1234

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=3, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, initializer_range=0.2, pad_token_id=0)

# name -> (transformers class, config overrides, forward extras)
SPECS = {
    "bert_model_absolute": ("BertModel", {}, {}),
    "bert_model_relative_key": ("BertModel", {"position_embedding_type": "relative_key"}, {}),
    "bert_model_relative_key_query": ("BertModel", {"position_embedding_type": "relative_key_query"}, {}),
    "bert_model_head_mask": ("BertModel", {"num_hidden_layers": 3}, {"head_mask": "per_layer"}),
    "bert_model_head_mask_1d": ("BertModel", {}, {"head_mask": "per_head"}),
    "bert_model_mask_3d": ("BertModel", {}, {"mask_3d": True}),
    "bert_pretraining": ("BertForPreTraining", {}, {"labels": "mlm", "next_sentence_label": "nsp"}),
    "bert_mlm": ("BertForMaskedLM", {}, {"labels": "mlm"}),
    "bert_mlm_untied": ("BertForMaskedLM", {"tie_word_embeddings": False}, {"labels": "mlm"}),
    "bert_lm_head": ("BertLMHeadModel", {"is_decoder": True}, {"labels": "mlm", "use_cache": False}),
    "bert_lm_head_cross": ("BertLMHeadModel", {"is_decoder": True, "add_cross_attention": True},
                           {"labels": "mlm", "encoder_hidden_states": True, "use_cache": False}),
    "bert_lm_head_relative_cached": ("BertLMHeadModel", {"is_decoder": True, "position_embedding_type": "relative_key_query"},
                                     {"use_cache": True}),
    "bert_nsp": ("BertForNextSentencePrediction", {}, {"labels": "nsp"}),
    "bert_seqcls_single": ("BertForSequenceClassification", {"num_labels": 3}, {"labels": "class3"}),
    "bert_seqcls_regression": ("BertForSequenceClassification", {"num_labels": 1}, {"labels": "regression"}),
    "bert_seqcls_multilabel": ("BertForSequenceClassification", {"num_labels": 3, "problem_type": "multi_label_classification"},
                               {"labels": "multilabel3"}),
    "bert_multiple_choice": ("BertForMultipleChoice", {}, {"labels": "choice", "choices": 3}),
    "bert_token_cls": ("BertForTokenClassification", {"num_labels": 5}, {"labels": "token5"}),
    "bert_qa": ("BertForQuestionAnswering", {}, {"start_positions": True}),
}
for act in ["gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "tanh", "mish", "linear",
            "gelu_python", "gelu_accurate", "gelu_10", "relu2", "relu6", "sigmoid", "leaky_relu", "laplace"]:
    SPECS[f"bert_mlm_act_{act}"] = ("BertForMaskedLM", {"hidden_act": act}, {"labels": "mlm"})


def make_inputs(rng, cfg, extras):
    """Fixed inputs: batch 3 of length 11 with a padded row, token types, and the labels a head needs."""
    b, s = 3, 11
    choices = extras.get("choices")
    shape = (b, choices, s) if choices else (b, s)
    ids = rng.integers(1, cfg.vocab_size, size=shape)
    mask = np.ones(shape, dtype=np.int64)
    if choices:
        mask[1, :, -3:] = 0  # every choice of the second example padded
    else:
        mask[1, -4:] = 0  # second row padded
    ids = np.where(mask == 1, ids, 0)
    tt = np.zeros(shape, dtype=np.int64)
    tt[..., s // 2:] = 1
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}
    if extras.get("mask_3d"):
        m3 = np.tril(np.ones((s, s), dtype=np.int64))[None].repeat(b, 0)
        m3[1, :, -4:] = 0
        inputs["attention_mask"] = m3
    if extras.get("head_mask") == "per_layer":
        hm = np.ones((cfg.num_hidden_layers, cfg.num_attention_heads), dtype=np.float32)
        hm[0, 1] = 0.0
        hm[2, 3] = 0.5
        inputs["head_mask"] = hm
    elif extras.get("head_mask") == "per_head":
        inputs["head_mask"] = np.array([1.0, 0.0, 1.0, 0.25], dtype=np.float32)
    if extras.get("encoder_hidden_states"):
        inputs["encoder_hidden_states"] = rng.standard_normal((b, 7, cfg.hidden_size)).astype(np.float32)
        em = np.ones((b, 7), dtype=np.int64)
        em[2, -2:] = 0
        inputs["encoder_attention_mask"] = em
    labels = extras.get("labels")
    if labels == "mlm":
        lab = rng.integers(0, cfg.vocab_size, size=shape)
        lab[rng.random(shape) < 0.4] = -100
        inputs["labels"] = lab
    elif labels == "nsp":
        inputs["labels"] = rng.integers(0, 2, size=(b,))
    elif labels == "class3":
        inputs["labels"] = rng.integers(0, 3, size=(b,))
    elif labels == "regression":
        inputs["labels"] = rng.standard_normal(b).astype(np.float32)
    elif labels == "multilabel3":
        inputs["labels"] = (rng.random((b, 3)) < 0.5).astype(np.float32)
    elif labels == "choice":
        inputs["labels"] = rng.integers(0, choices, size=(b,))
    elif labels == "token5":
        lab = rng.integers(0, 5, size=shape)
        lab[mask == 0] = -100
        inputs["labels"] = lab
    if extras.get("next_sentence_label"):
        inputs["next_sentence_label"] = rng.integers(0, 2, size=(b,))
    if extras.get("start_positions"):
        inputs["start_positions"] = np.array([2, 40, 5])  # 40 is past the end: clamped and ignored
        inputs["end_positions"] = np.array([4, 6, -3])  # -3 is clamped to 0
    return inputs


def flatten_outputs(out, prefix="output."):
    """HF output -> {"output.<field>[.<i>]": array}, skipping caches."""
    flat = {}
    for key, value in out.items():
        if key == "past_key_values" or value is None:
            continue
        if isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                flat[f"{prefix}{key}.{i}"] = v.detach().cpu().numpy()
        else:
            flat[f"{prefix}{key}"] = value.detach().cpu().numpy()
    return flat


def build(name, spec, dtype=torch.float32):
    cls_name, overrides, extras = spec
    torch.manual_seed(SEED)
    cfg = transformers.BertConfig(**{**TINY, **overrides}, attn_implementation="eager")
    model = getattr(transformers, cls_name)(cfg).eval()
    # Non-trivial LayerNorm and bias values, so that a wrong parameter cannot hide behind ones/zeros.
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if pname.endswith("LayerNorm.weight"):
                param.add_(0.1 * torch.randn_like(param))
            elif pname.endswith("bias"):
                param.add_(0.05 * torch.randn_like(param))
    rng = np.random.default_rng(SEED)
    inputs = make_inputs(rng, cfg, extras)
    kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
    if "use_cache" in extras:
        kwargs["use_cache"] = extras["use_cache"]
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True, output_attentions=True, return_dict=True)
    return model, cfg, inputs, out, extras


def write(name, spec):
    model, cfg, inputs, out, extras = build(name, spec)
    target = WEIGHTS / name
    if target.exists():
        shutil.rmtree(target)
    model.save_pretrained(target, safe_serialization=True)
    tensors = {f"input.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
    tensors.update(flatten_outputs(out))
    safetensors.numpy.save_file(tensors, str(target / "golden.safetensors"))
    meta = {
        "class": spec[0],
        "dtype": "float32",
        "forward_flags": {"output_hidden_states": True, "output_attentions": True,
                          **({"use_cache": extras["use_cache"]} if "use_cache" in extras else {})},
        "seed": SEED,
        "config_overrides": spec[1],
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "attn_implementation": "eager",
        "generated_by": "python tools/make_goldens.py --only " + name,
    }
    (target / "golden.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    size = sum(f.stat().st_size for f in target.iterdir())
    print(f"{name:40s} {spec[0]:32s} {len(tensors):3d} tensors {size / 1024:7.1f} KiB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="names to regenerate (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    names = args.only or list(SPECS)
    for name in names:
        write(name, SPECS[name])


if __name__ == "__main__":
    sys.exit(main())
