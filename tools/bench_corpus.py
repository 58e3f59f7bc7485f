"""Corpus-run throughput: refimpl's own encoder against compare-corpus with 1 and 2 Dask workers.

    python tools/bench_corpus.py                 # 10,000 synthetic sentences, batches of 16

Columns, in sentences per second: refimpl's encoder alone (one process, its default threads, batches of
16: the ceiling); compare-corpus with a candidate that returns nothing (what checking costs on top of a
candidate: refimpl's recorded forward, the comparison, Dask), and with refimpl:fast as the candidate (two
forwards per batch: refimpl checked against itself), each with 1 and 2 local worker processes.
refimpl only (no torch); needs dask.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("the a man woman dog cat child eats runs reads quickly slowly market fell rose today budget analysts "
         "blamed committee debates year machine learning model attention layer table river city night").split()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args(argv)
    import os

    import refimpl
    from refimpl.corpus import compare_corpus
    from refimpl.registry import fetch

    rng = random.Random(0)
    work = Path(tempfile.mkdtemp())
    corpus = work / "corpus.jsonl"
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 20))) for _ in range(args.sentences)]
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (work / "null_candidate.py").write_text("def run(inputs):\n    return {}\n")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(work), os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, str(work))
    directory = fetch("all-MiniLM-L6-v2")

    model = refimpl.BertModel.from_pretrained(directory)
    tok = refimpl.AutoTokenizer.from_pretrained(directory)
    t0 = time.perf_counter()
    for s in range(0, len(texts), args.batch):
        enc = tok(texts[s:s + args.batch], padding=True, return_tensors="np")
        model(**{k: np.asarray(v) for k, v in enc.items()})
    own = len(texts) / (time.perf_counter() - t0)
    print(f"{len(texts)} sentences, batches of {args.batch}; refimpl encoder alone: {own:.0f} sentences/s")
    for candidate in ("null_candidate:run", "refimpl:fast"):
        for workers in (1, 2):
            t0 = time.perf_counter()
            summary = compare_corpus(directory, candidate, corpus, work / f"run-{candidate}-{workers}",
                                     batch=args.batch, workers=workers)
            rate = len(texts) / (time.perf_counter() - t0)
            print(f"compare-corpus, candidate {candidate:<18} {workers} worker(s): {rate:6.0f} sentences/s "
                  f"({rate / own:.2f} of the encoder alone; {summary['diverging_inputs']} diverging)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
