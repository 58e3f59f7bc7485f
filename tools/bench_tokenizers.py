"""Tokens per second: refimpl's WordPiece vs transformers' Python (slow) and Rust (fast) BERT tokenizers.

Same process, same vocabulary (all-MiniLM-L6-v2), a mixed corpus (English prose, code, accented Latin,
Greek/Cyrillic, CJK, emoji) cut to 1 KB, 100 KB and 1 MB; each input is one call on a batch of lines
(``--shape lines``: ~200-character lines, as a dataset would be fed; ``sentences``: one short sentence per
item; ``single``: the whole input as one string). Each timing is the median of ``--repeat`` calls, each on a
freshly loaded refimpl tokenizer (word cache cold). Prints a table; the cost per byte should stay flat.

    /work/venv/bin/python tools/bench_tokenizers.py [--sizes 1e3,1e5,1e6] [--repeat 7] [--shape lines]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCES = [
    "The committee reviewed {n} proposals before lunch, and approved only the cheapest ones.",
    "def tokenize(text: str) -> list[str]:  # returns word pieces, e.g. un ##aff ##able",
    "Née à Zürich, la chercheuse étudie l'économie des réseaux électriques à Genève.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο {n} φορές.",
    "Быстрая коричневая лиса перепрыгивает через ленивую собаку в {n}-й раз.",
    "自然语言处理是人工智能的一个重要方向，{n}个模型参加了评测。",
    "東京の天気は晴れ、気温は{n}度です。",
    "Prices rose {n}% in Q3 (see https://example.com/report?id={n}) — analysts were surprised 😮👍🏽.",
    "She said: \"don't worry, it's fine\" and left at {n}:30 p.m.",
]


def corpus(n_bytes: int, seed: int = 0, shape: str = "lines") -> list[str]:
    rng = random.Random(seed)
    lines, size, line = [], 0, ""
    while size < n_bytes:
        s = rng.choice(SENTENCES).format(n=rng.randint(1, 10**6)) + " "
        line += s
        if len(line) > 200 or shape == "sentences":
            lines.append(line)
            size += len(line.encode("utf-8"))
            line = ""
    return ["".join(lines)] if shape == "single" else lines


def bench(make, lines, repeat):
    """Median wall time of ``repeat`` calls, each on ``make()`` (a fresh refimpl tokenizer: word cache cold)."""
    times, n_tokens = [], 0
    for _ in range(repeat):
        tok = make()
        t0 = time.perf_counter()
        ids = tok(lines, add_special_tokens=False)["input_ids"]
        times.append(time.perf_counter() - t0)
        n_tokens = sum(len(x) for x in ids)
    return n_tokens, statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e3,1e5,1e6")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shape", choices=["lines", "sentences", "single"], default="lines")
    args = ap.parse_args()

    import transformers

    from refimpl.registry import fetch
    from refimpl.tokenizers import BertTokenizer, BertTokenizerLegacy

    transformers.logging.set_verbosity_error()
    d = fetch("all-MiniLM-L6-v2")
    contenders = {
        "refimpl BertTokenizer": BertTokenizer.from_pretrained(d),
        "refimpl BertTokenizerLegacy": BertTokenizerLegacy.from_pretrained(d),
        "transformers slow (Python)": transformers.BertTokenizer.from_pretrained(d),
        "transformers fast (Rust)": transformers.BertTokenizerFast.from_pretrained(d),
    }
    print(f"transformers {transformers.__version__}; Python {sys.version.split()[0]}; median of {args.repeat}; "
          f"shape {args.shape}")
    print(f"{'input':>8}  {'tokenizer':<28} {'tokens':>9} {'seconds':>9} {'tokens/s':>12} {'µs/KB':>8}")
    for size in (int(float(s)) for s in args.sizes.split(",")):
        lines = corpus(size, shape=args.shape)
        n_bytes = sum(len(x.encode("utf-8")) for x in lines)
        results, speed = {}, {}
        for name, tok in contenders.items():
            make = (lambda t=tok: type(t).from_pretrained(d)) if name.startswith("refimpl") else (lambda t=tok: t)
            n_tokens, secs = bench(make, lines, args.repeat)
            results[name], speed[name] = n_tokens, n_tokens / secs
            print(f"{n_bytes / 1e3:>6.0f}KB  {name:<28} {n_tokens:>9} {secs:>9.4f} {n_tokens / secs:>12,.0f} "
                  f"{secs / n_bytes * 1e9:>8.1f}")  # fmt: skip
        print(f"{'':>8}  refimpl BertTokenizer / transformers slow: "
              f"{speed['refimpl BertTokenizer'] / speed['transformers slow (Python)']:.1f}x")
        assert results["refimpl BertTokenizer"] == results["transformers fast (Rust)"]
        assert results["refimpl BertTokenizerLegacy"] == results["transformers slow (Python)"]


if __name__ == "__main__":
    main()
