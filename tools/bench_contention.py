"""Shared cores: refimpl and torch beside a busy neighbour (one spinning process), against running alone.

    python tools/bench_contention.py                 # encoder shapes and a greedy decode loop
    python tools/bench_contention.py --no-torch      # refimpl only

For each workload it times, median of ``--repeats`` runs: refimpl as loaded (fast kernels, default
threads), refimpl on one core (``threadpoolctl.threadpool_limits(1)``: no worker threads, one BLAS
thread) and torch eager (2 threads), first on a quiet machine, then with a neighbour process spinning on
one core for the whole measurement. It prints each time and the slowdown factor busy / quiet. The goals
(issue 9): refimpl's slowdown no worse than torch's, and refimpl beside the neighbour never slower than
refimpl on one core beside it.

Workloads: all-MiniLM-L6-v2 encoder at 2x12 tokens ("two short sentences"), 6x16, 8x128, 32x128; and
a bert2bert (MiniLM to MiniLM) greedy decode of 16 tokens at batch 1. Needs torch + transformers for the
torch columns and the decode model (refimpl itself does not).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THREADS = 2
PAUSE_S = 0.5  # seconds between libraries: torch's and OpenBLAS's idle threads spin after a call


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def median_ms(fn, repeats, warm_s=0.3):
    """Median of ``repeats`` timed calls, after calling ``fn`` for at least ``warm_s`` seconds: steady
    state (a contended machine costs refimpl's first ~0.1 s more; see docs/performance.md)."""
    end = time.perf_counter() + warm_s
    fn()
    while time.perf_counter() < end:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--shapes", default="2x12,6x16,8x128,32x128")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(THREADS)
    import refimpl
    from refimpl.registry import fetch

    directory = fetch("all-MiniLM-L6-v2")
    model = refimpl.BertModel.from_pretrained(directory)
    rng = np.random.default_rng(0)
    work = {}
    for item in args.shapes.split(","):
        b, s = (int(v) for v in item.split("x"))
        ids = rng.integers(1000, 30000, (b, s))
        mask = np.ones_like(ids)
        work[f"encoder {item}"] = (lambda ids=ids, mask=mask: model(input_ids=ids, attention_mask=mask),
                                   (ids, mask))
    torch = transformers = None
    hf_models = {}
    if not args.no_torch:
        import torch
        import transformers

        torch.set_num_threads(THREADS)
        transformers.logging.set_verbosity_error()
        warnings.filterwarnings("ignore")
        hf = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
        torch.manual_seed(0)
        ed = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
            str(directory), str(directory), encoder_attn_implementation="eager",
            decoder_attn_implementation="eager").eval()
        for cfg in (ed.config, ed.generation_config):
            cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 101, 0, None
        tmp = Path(tempfile.mkdtemp())
        ed.save_pretrained(tmp / "b2b")
        mine_ed = refimpl.EncoderDecoderModel.from_pretrained(tmp / "b2b")
        src = rng.integers(1000, 30000, (1, 12))
        work["decode 16 tokens"] = (lambda: mine_ed.generate(src, max_new_tokens=16, min_new_tokens=16), None)
        hf_models["decode 16 tokens"] = lambda: ed.generate(torch.tensor(src), max_new_tokens=16, min_new_tokens=16,
                                                            do_sample=False, num_beams=1)
        for name, (_, inputs) in work.items():
            if inputs is not None:
                ids, mask = (torch.tensor(a) for a in inputs)
                hf_models[name] = lambda ids=ids, mask=mask: hf(input_ids=ids, attention_mask=mask)

    def measure():
        rows = {}
        for name, (fn, _) in work.items():
            time.sleep(PAUSE_S)  # the other library's idle threads spin for a while after its last call
            r = median_ms(fn, args.repeats)
            time.sleep(PAUSE_S)
            with threadpool_limits(1):
                one = median_ms(fn, args.repeats)
            t = None
            if name in hf_models:
                time.sleep(PAUSE_S)
                with torch.no_grad():
                    t = median_ms(hf_models[name], args.repeats)
            rows[name] = (r, one, t)
        return rows

    quiet = measure()
    stop = mp.Event()
    neighbour = mp.Process(target=_spin, args=(stop,), daemon=True)
    neighbour.start()
    time.sleep(0.5)
    try:
        busy = measure()
    finally:
        stop.set()
        neighbour.join(5)
    print(f"refimpl {refimpl.__version__}, {THREADS} threads; median of {args.repeats}; neighbour: one spinning process")
    print(f"{'workload':<18} {'refimpl quiet/busy ms':>22} {'x':>5} {'1-core quiet/busy ms':>21} {'x':>5}"
          f" {'torch quiet/busy ms':>20} {'x':>5}  goals")
    for name in work:
        (r0, o0, t0), (r1, o1, t1) = quiet[name], busy[name]
        torch_cell = f"{t0:9.1f} / {t1:8.1f} {t1 / t0:5.2f}" if t0 else f"{'-':>20} {'-':>5}"
        goals = []
        if t0:
            goals.append("<= torch" if r1 / r0 <= t1 / t0 else "WORSE than torch")
        goals.append("<= 1 core" if r1 <= o1 else "SLOWER than 1 core")
        print(f"{name:<18} {r0:10.1f} / {r1:9.1f} {r1 / r0:5.2f} {o0:9.1f} / {o1:9.1f} {o1 / o0:5.2f} {torch_cell}  "
              + ", ".join(goals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
