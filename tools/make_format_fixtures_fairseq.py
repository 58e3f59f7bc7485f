"""Write a tiny checkpoint in fairseq RoBERTa's layout (fairseq itself is not installable here) and what
transformers makes of it: the reference for refimpl.formats.fairseq (tests/test_formats_fairseq.py).

A tiny GPT-2 byte-level BPE is learned on a fixed text (``encoder.json``, ``vocab.bpe``, GPT-2's file formats);
``dict.txt`` lists its ids in a shuffled (seeded) order with counts, as fairseq's ``preprocess`` writes it, so
fairseq's indices differ from GPT-2's and the dictionary remapping matters. A transformers 4.57.6
RobertaForMaskedLM (vocab = 4 specials + dict.txt + <mask>, hidden 32, 2 layers, 4 heads, intermediate 37,
token-type embeddings zero as the conversion script leaves them; seeded) is written under fairseq's names —
the inverse of ``convert_roberta_original_pytorch_checkpoint_to_pytorch.py`` — with an ``argparse.Namespace``
``args``, ``optimizer_history`` and ``extra_state``, by ``torch.save``. ``--legacy`` writes the fairseq < 0.9
layout instead: ``decoder.`` prefix, stacked ``in_proj_weight``/``in_proj_bias``, torch's legacy serialization.

    model.pt, dict.txt, encoder.json, vocab.bpe     the fairseq directory
    expected_hf.safetensors     the transformers model's state dict (tied decoder weight left out)
    expected_outputs.safetensors   input_ids and transformers' logits for them
    provenance.json             versions, seed, the text and its ids as fairseq encodes it (GPT-2 BPE ids
                                through dict.txt, <s> ... </s>)

    python tools/make_format_fixtures_fairseq.py --out weights/fairseq_roberta
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
from pathlib import Path

import numpy as np

TEXT = ("Hello world! The quick brown fox jumps over the lazy dog. A man is eating food; the dog eats "
        "bread. Hello again, world: cécé herlolip.")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, hidden_act="gelu",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
LAYER = {"attention.self.query": "self_attn.q_proj", "attention.self.key": "self_attn.k_proj",
         "attention.self.value": "self_attn.v_proj", "attention.output.dense": "self_attn.out_proj",
         "attention.output.LayerNorm": "self_attn_layer_norm", "intermediate.dense": "fc1", "output.dense": "fc2",
         "output.LayerNorm": "final_layer_norm"}


def learn_bpe(text, merges_wanted, byte_encoder):
    """A byte-level BPE on ``text`` (GPT-2's pre-tokenization, then greedy most-frequent-pair merges)."""
    import regex

    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    words = collections.Counter(tuple(byte_encoder[b] for b in w.encode("utf-8")) for w in pat.findall(text))
    merges = []
    for _ in range(merges_wanted):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[a, b] += c
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        new = collections.Counter()
        for w, c in words.items():
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and (w[k], w[k + 1]) == best:
                    out.append(w[k] + w[k + 1])
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            new[tuple(out)] += c
        words = new
    return merges


def fairseq_name(hf: str, legacy: bool):
    p = "decoder." if legacy else "encoder."
    e = p + "sentence_encoder."
    fixed = {"roberta.embeddings.word_embeddings.weight": e + "embed_tokens.weight",
             "roberta.embeddings.position_embeddings.weight": e + "embed_positions.weight",
             "roberta.embeddings.LayerNorm.weight": e + "emb_layer_norm.weight",
             "roberta.embeddings.LayerNorm.bias": e + "emb_layer_norm.bias",
             "lm_head.dense.weight": p + "lm_head.dense.weight", "lm_head.dense.bias": p + "lm_head.dense.bias",
             "lm_head.layer_norm.weight": p + "lm_head.layer_norm.weight",
             "lm_head.layer_norm.bias": p + "lm_head.layer_norm.bias",
             "lm_head.decoder.weight": p + "lm_head.weight", "lm_head.bias": p + "lm_head.bias"}
    if hf in fixed:
        return fixed[hf]
    if hf in ("roberta.embeddings.token_type_embeddings.weight", "lm_head.decoder.bias"):
        return None
    parts = hf.split(".")  # roberta.encoder.layer.{i}.<module>.{weight,bias}
    i, module, kind = parts[3], ".".join(parts[4:-1]), parts[-1]
    return f"{e}layers.{i}.{LAYER[module]}.{kind}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--legacy", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import safetensors.numpy
    import torch
    import transformers
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    byte_encoder = bytes_to_unicode()
    merges = learn_bpe(TEXT, 40, byte_encoder)
    tokens = [byte_encoder[b] for b in range(256)] + [a + b for a, b in merges]
    encoder = {t: k for k, t in enumerate(dict.fromkeys(tokens))}
    (out / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (out / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    rng = np.random.default_rng(args.seed)
    order = [int(k) for k in rng.permutation(len(encoder))]
    (out / "dict.txt").write_text("".join(f"{gid} {1000 - n}\n" for n, gid in enumerate(order)), encoding="utf-8")
    fairseq_index = {gid: 4 + n for n, gid in enumerate(order)}  # fairseq's Dictionary: 4 specials first
    vocab_size = 4 + len(order) + 1  # ... and <mask> last

    gpt2 = transformers.GPT2Tokenizer(str(out / "encoder.json"), str(out / "vocab.bpe"))
    gpt2_ids = gpt2.encode(TEXT)
    expected_ids = [0] + [fairseq_index[g] for g in gpt2_ids] + [2]  # fairseq: <s> ... </s>

    torch.manual_seed(args.seed)
    config = transformers.RobertaConfig(vocab_size=vocab_size, **TINY)
    model = transformers.RobertaForMaskedLM(config).eval()
    with torch.no_grad():
        model.roberta.embeddings.token_type_embeddings.weight.zero_()  # as the conversion script leaves them
    state = collections.OrderedDict()
    for hf, t in model.state_dict().items():
        name = fairseq_name(hf, args.legacy)
        if name is not None:
            state[name] = t.detach().clone()
    state[("decoder." if args.legacy else "encoder.") + "sentence_encoder.version"] = torch.tensor([2.0])
    if args.legacy:
        for i in range(config.num_hidden_layers):
            e = f"decoder.sentence_encoder.layers.{i}.self_attn."
            for kind in ("weight", "bias"):
                q, k, v = (state.pop(f"{e}{x}_proj.{kind}") for x in "qkv")
                state[f"{e}in_proj_{kind}"] = torch.cat([q, k, v])
    ns = argparse.Namespace(arch="roberta_base", task="masked_lm", criterion="masked_lm", encoder_embed_dim=32,
                            encoder_layers=2, encoder_attention_heads=4, encoder_ffn_embed_dim=37,
                            activation_fn="gelu", dropout=0.1, attention_dropout=0.1, max_positions=64,
                            encoder_normalize_before=False, lr=[0.0006], tokens_per_sample=64, seed=args.seed)
    ckpt = {"args": ns, "model": state,
            "optimizer_history": [{"criterion_name": "MaskedLmLoss", "optimizer_name": "FairseqAdam",
                                   "lr_scheduler_state": {"best": 1.5}, "num_updates": 10}],
            "extra_state": {"epoch": 1, "val_loss": 1.5, "train_iterator": {"epoch": 1, "iterations_in_epoch": 3}},
            "last_optimizer_state": None}
    torch.save(ckpt, out / "model.pt", _use_new_zipfile_serialization=not args.legacy)

    hf_state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
                if k not in ("lm_head.decoder.weight", "lm_head.decoder.bias")}
    safetensors.numpy.save_file(hf_state, str(out / "expected_hf.safetensors"))
    ids = np.array([expected_ids[:12]], dtype=np.int64)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids)).logits.numpy()
    safetensors.numpy.save_file({"input_ids": ids, "logits": logits}, str(out / "expected_outputs.safetensors"))
    (out / "provenance.json").write_text(json.dumps({
        "generated_by": "python tools/make_format_fixtures_fairseq.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "legacy": args.legacy, "text": TEXT, "expected_ids": expected_ids,
        "config": {"vocab_size": vocab_size, **TINY},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: vocab {vocab_size}, {len(state)} tensors, {len(merges)} merges")


if __name__ == "__main__":
    main()
