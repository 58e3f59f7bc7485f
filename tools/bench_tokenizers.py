"""Tokens per second: refimpl's WordPiece vs transformers' Python (slow) and Rust (fast) BERT tokenizers.

Same process, same vocabulary (all-MiniLM-L6-v2), a mixed corpus (English prose, code, accented Latin,
Greek/Cyrillic, CJK, emoji) cut to 1 KB, 100 KB and 1 MB; each input is one call on a batch of lines
(``--shape lines``: ~200-character lines, as a dataset would be fed; ``sentences``: one short sentence per
item; ``single``: the whole input as one string). Each timing is the median of ``--repeat`` calls, each on a
freshly loaded refimpl tokenizer (word cache cold); the tokenizers take turns, call by call. Prints a table; the cost per byte should stay flat.

    /work/venv/bin/python tools/bench_tokenizers.py [--sizes 1e3,1e5,1e6] [--repeat 7] [--shape lines]
        [--baseline DIR]     # DIR: another checkout (git archive <commit> refimpl | tar -x -C DIR), timed alongside
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


def bench(makers: dict, lines, repeat):
    """name -> (tokens, median seconds) over ``repeat`` rounds; each round calls every tokenizer once, in turn
    (so load from other jobs hits all of them alike), each on ``make()`` (a fresh refimpl tokenizer: word
    cache cold)."""
    times = {name: [] for name in makers}
    n_tokens = {}
    for _ in range(repeat):
        for name, make in makers.items():
            tok = make()
            t0 = time.perf_counter()
            ids = tok(lines, add_special_tokens=False)["input_ids"]
            times[name].append(time.perf_counter() - t0)
            n_tokens[name] = sum(len(x) for x in ids)
    return {name: (n_tokens[name], statistics.median(times[name])) for name in makers}


def load_baseline(directory: str):
    """``refimpl`` of another checkout, imported as the package ``refimpl_baseline`` (its imports are relative)."""
    import importlib.util

    package = Path(directory) / "refimpl"
    spec = importlib.util.spec_from_file_location("refimpl_baseline", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    sys.modules["refimpl_baseline"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("refimpl_baseline.tokenizers")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e3,1e5,1e6")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shape", choices=["lines", "sentences", "single"], default="lines")
    ap.add_argument("--baseline", help="a directory holding another version's refimpl/, timed as 'baseline'")
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
    if args.baseline:
        contenders["baseline BertTokenizer"] = load_baseline(args.baseline).BertTokenizer.from_pretrained(d)
    print(f"transformers {transformers.__version__}; Python {sys.version.split()[0]}; median of {args.repeat}; "
          f"shape {args.shape}")
    print(f"{'input':>8}  {'tokenizer':<28} {'tokens':>9} {'seconds':>9} {'tokens/s':>12} {'µs/KB':>8}")
    for size in (int(float(s)) for s in args.sizes.split(",")):
        lines = corpus(size, shape=args.shape)
        n_bytes = sum(len(x.encode("utf-8")) for x in lines)
        makers = {name: (lambda t=tok: type(t).from_pretrained(d)) if not name.startswith("transformers") else (lambda t=tok: t)
                  for name, tok in contenders.items()}  # fmt: skip
        results, speed = {}, {}
        for name, (n_tokens, secs) in bench(makers, lines, args.repeat).items():
            results[name], speed[name] = n_tokens, n_tokens / secs
            print(f"{n_bytes / 1e3:>6.0f}KB  {name:<28} {n_tokens:>9} {secs:>9.4f} {n_tokens / secs:>12,.0f} "
                  f"{secs / n_bytes * 1e9:>8.1f}")  # fmt: skip
        for name in [n for n in speed if "BertTokenizer" in n and "Legacy" not in n]:
            print(f"{'':>8}  {name} / transformers slow: {speed[name] / speed['transformers slow (Python)']:.1f}x")
        assert results["refimpl BertTokenizer"] == results["transformers fast (Rust)"]
        assert results["refimpl BertTokenizerLegacy"] == results["transformers slow (Python)"]
        assert results.get("baseline BertTokenizer", results["refimpl BertTokenizer"]) == results["refimpl BertTokenizer"]


if __name__ == "__main__":
    main()
