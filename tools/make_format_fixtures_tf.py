"""Write Google-BERT-style TensorFlow 1 checkpoints with TensorFlow, and what TensorFlow and transformers
read from them: the reference for refimpl.formats.tf_bundle (tests/test_formats_tf.py).

A tiny BertForPreTraining (vocab 99, hidden 32, 2 layers, 4 heads, intermediate 37; transformers 4.57.6,
seeded) is written under Google's variable names (``bert/encoder/layer_0/attention/self/query/kernel``, kernels
[in, out], ``gamma``/``beta``, ``cls/predictions/output_bias``, ``cls/seq_relationship/output_weights``), plus
the optimizer slots Google's checkpoints carry (``.../adam_m``, ``.../adam_v``) and ``global_step``, by
``tf.compat.v1.train.Saver`` (one shard) or by SaveV2 per shard + MergeV2Checkpoints (``--shards N``, as a
sharded Saver does). The inverse name table below is written from transformers'
``convert_bert_pytorch_checkpoint_to_original_tf.py`` rules, independently of refimpl. Into ``--out``:

    bert_config.json, bert_model.ckpt.index, bert_model.ckpt.data-0000k-of-0000n   the checkpoint
    expected_tf.safetensors     every variable as ``tf.train.load_variable`` reads it (TF names)
    expected_hf.safetensors     BertForPreTraining's state dict after transformers' load_tf_weights_in_bert
    provenance.json             versions, seed, shards, the command

    python tools/make_format_fixtures_tf.py --out weights/tf_bert_pretraining              # the committed ones
    python tools/make_format_fixtures_tf.py --out weights/tf_bert_sharded --shards 3 --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, initializer_range=0.2)
TRANSPOSED = ("dense.weight", "attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight")


def google_name(hf: str):
    """transformers' name -> (Google's TF name, transpose?), or None for the tied decoder weight."""
    if hf == "cls.predictions.decoder.weight" or hf == "cls.predictions.decoder.bias":
        return None
    special = {"cls.predictions.bias": "cls/predictions/output_bias",
               "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
               "cls.seq_relationship.bias": "cls/seq_relationship/output_bias"}
    if hf in special:
        return special[hf], False
    name = hf
    for old, new in (("layer.", "layer_"), ("word_embeddings.weight", "word_embeddings"),
                     ("position_embeddings.weight", "position_embeddings"),
                     ("token_type_embeddings.weight", "token_type_embeddings"), (".", "/"),
                     ("LayerNorm/weight", "LayerNorm/gamma"), ("LayerNorm/bias", "LayerNorm/beta"), ("weight", "kernel")):
        name = name.replace(old, new)
    return name, hf.endswith(TRANSPOSED)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--no-slots", action="store_true", help="leave out adam_m/adam_v")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import safetensors.numpy
    import torch
    import transformers
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert

    torch.manual_seed(args.seed)
    config = transformers.BertConfig(**TINY)
    model = transformers.BertForPreTraining(config).eval()
    variables = {}
    for hf, t in model.state_dict().items():
        mapped = google_name(hf)
        if mapped is None:
            continue
        tf_name, transpose = mapped
        arr = t.detach().numpy()
        variables[tf_name] = np.ascontiguousarray(arr.T if transpose else arr)
    rng = np.random.default_rng(args.seed)
    if not args.no_slots:
        for name in list(variables)[:6]:
            variables[name + "/adam_m"] = rng.standard_normal(variables[name].shape).astype(np.float32)
            variables[name + "/adam_v"] = rng.random(variables[name].shape).astype(np.float32)
    variables["global_step"] = np.array(1000, dtype=np.int64)

    import tensorflow as tf

    prefix = str(out / "bert_model.ckpt")
    for stale in out.glob("bert_model.ckpt*"):
        stale.unlink()
    if args.shards == 1:
        graph = tf.Graph()
        with graph.as_default():
            tf_vars = [tf.compat.v1.get_variable(n, initializer=tf.constant(v)) for n, v in variables.items()]
            saver = tf.compat.v1.train.Saver(tf_vars)
            with tf.compat.v1.Session(graph=graph) as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                saver.save(sess, prefix, write_meta_graph=False)  # the graph (.meta) is not needed
    else:  # what a sharded Saver does: SaveV2 per shard into temporary prefixes, then MergeV2Checkpoints
        names = sorted(variables)
        groups = [names[k::args.shards] for k in range(args.shards)]
        parts = []
        for k, group in enumerate(groups):
            part = tf.raw_ops.ShardedFilename(basename=prefix + "_temp/part", shard=k, num_shards=args.shards)
            tf.raw_ops.SaveV2(prefix=part, tensor_names=group, shape_and_slices=[""] * len(group),
                              tensors=[tf.constant(variables[n]) for n in group])
            parts.append(part)
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=tf.stack(parts), destination_prefix=prefix,
                                      delete_old_dirs=True)
    (out / "bert_config.json").write_text(json.dumps(TINY, indent=2, sort_keys=True) + "\n")

    # what TensorFlow reads back, and what transformers makes of it
    listed = dict(tf.train.list_variables(prefix))
    expected_tf = {n: np.ascontiguousarray(tf.train.load_variable(prefix, n)) for n in listed}
    assert set(expected_tf) == set(variables), "TF lists other variables than were written"
    for n, v in variables.items():
        assert expected_tf[n].tobytes() == v.tobytes(), n
    safetensors.numpy.save_file({n: np.atleast_1d(v) if v.ndim == 0 else v for n, v in expected_tf.items()},
                                str(out / "expected_tf.safetensors"))
    torch.manual_seed(args.seed + 1)  # different weights, so that every tensor must come from the checkpoint
    loaded = transformers.BertForPreTraining(config).eval()
    load_tf_weights_in_bert(loaded, config, prefix)
    state = {k: v.detach().numpy().copy() for k, v in loaded.state_dict().items()}
    for k, v in model.state_dict().items():
        assert np.array_equal(state[k], v.numpy()), f"transformers' load of {k} differs from the original weights"
    state.pop("cls.predictions.decoder.weight")  # tied to the word embeddings, as transformers saves it
    state.pop("cls.predictions.decoder.bias", None)
    safetensors.numpy.save_file(state, str(out / "expected_hf.safetensors"))
    shard_files = sorted(p.name for p in out.glob("bert_model.ckpt.data-*"))
    (out / "provenance.json").write_text(json.dumps({
        "generated_by": "python tools/make_format_fixtures_tf.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "shards": args.shards, "files": shard_files, "config": TINY,
        "versions": {"tensorflow": tf.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
    }, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}: {len(variables)} variables in {shard_files}")


if __name__ == "__main__":
    main()
