"""Encoder benchmark: refimpl vs PyTorch eager (transformers 4.57.6) on all-MiniLM-L6-v2, same process.

    python tools/bench_encoder.py                      # the five shapes of issue 2
    python tools/bench_encoder.py --shapes 32x128 --repeats 9

For each batch x length it builds real token ids (the tokenizer over a fixed English text, rows of
different lengths, right-padded, with the padding mask), runs refimpl's ``BertModel`` and transformers'
``BertModel(attn_implementation="eager")`` under ``torch.no_grad()`` with 2 threads each, in alternating
blocks so that machine noise hits both alike, and prints the median times, the ratio refimpl/torch, and
refimpl's rate in GFLOP/s as a fraction of numpy's float32 GEMM peak measured in the same run (a
2048^3 matmul, best of several). It also checks that both agree (max |difference| of last_hidden_state
at real positions) and that loading keeps one copy of the weights: every parameter is owned memory (no
view of a file mapping), as read or as an input-major copy of an encoder layer's projection, and loading
must not grow anonymous memory by more than the weights once.

Needs torch + transformers (the reference stack); refimpl itself does not. Don't run it while anything
else is busy on the machine: OpenBLAS throughput collapses under contention.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = ((1, 16), (1, 128), (8, 128), (32, 128), (8, 512))
THREADS = 2
ROUNDS = 3  # blocks of runs per library and shape
PAUSE_S = 0.5  # seconds between blocks, for the other library's threads to go idle
TEXT = (
    "A reference implementation must be exactly right, fast enough to use, and a pleasure to read. "
    "The quick brown fox jumps over the lazy dog while the committee debates the budget for next year. "
    "Transformers turned natural language processing upside down: attention, layer normalisation and "
    "feed-forward blocks, stacked six or twelve times, learn surprisingly general representations of text. "
    "Benchmarks are only meaningful when the inputs are realistic, the threads are pinned, and the machine "
    "is otherwise idle; medians of alternating runs are more honest than the best of a lucky streak. "
)


def proc_status_kib(field: str) -> int:
    """A memory figure (kB) from /proc/self/status (Linux); 0 where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def gemm_peak_gflops(repeats: int = 7, n: int = 2048) -> float:
    """numpy float32 GEMM rate: best of ``repeats`` n x n x n products."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    np.matmul(a, b, out=c)
    best = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _block(fn, repeats) -> list:
    """Times of ``repeats`` consecutive calls, after a pause and one untimed call."""
    time.sleep(PAUSE_S)
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        times.append(_timed(fn))
    return times


def _load_average() -> float:
    """The 1-minute load average (0 where unavailable). This benchmark itself adds about 2."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def encoder_flops(cfg, b: int, s: int) -> float:
    """Multiply-adds x 2 of the encoder's matrix products (the elementwise work is not counted).

    Per layer: Q, K, V and output projections 4 * 2 M D^2, feed-forward 2 * 2 M D F, and attention
    scores plus context 2 * 2 B S^2 D, with M = B S tokens.
    """
    d, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    m = b * s
    return layers * (8.0 * m * d * d + 4.0 * m * d * f + 4.0 * b * s * s * d)


def make_inputs(tok, b: int, s: int, rng):
    """Real token ids [b, s]: windows of the tokenized text between [CLS] and [SEP], right-padded.

    Row 0 fills all s positions; the others have random lengths in [s/2, s] (at least 2), so the
    padding mask matters at every batch size above one.
    """
    stream = tok(TEXT * 40, add_special_tokens=False)["input_ids"]
    cls_id, sep_id, pad_id = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    ids = np.full((b, s), pad_id, np.int64)
    mask = np.zeros((b, s), np.int64)
    for i in range(b):
        n = s if i == 0 else int(rng.integers(max(2, s // 2), s + 1))
        start = int(rng.integers(0, len(stream) - n))
        row = [cls_id] + list(stream[start:start + n - 2]) + [sep_id] if n >= 2 else [cls_id]
        ids[i, :n] = row[:n]
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def check_one_copy(model, directory) -> dict:
    """Every parameter must be held once, in memory the process owns (refimpl/checkpoint.py reads, never
    maps, the file): as read, or an input-major copy (an encoder layer's projection matrices, see
    refimpl.kernels.linear.input_major) that replaced it. Returns the counts and the names of parameters
    that are still views of a file mapping ("mapped", which must be empty)."""
    from refimpl.checkpoint import memory_map_of
    from refimpl.kernels.linear import is_input_major

    mapped = [name for name, a in model.params.items() if memory_map_of(a) is not None]
    input_major = [name for name, a in model.params.items() if memory_map_of(a) is None and is_input_major(a)]
    copied_mib = sum(model.params[name].nbytes for name in input_major) / 2**20
    return {"params": len(model.params), "mapped": mapped, "input_major": len(input_major),
            "input_major_mib": copied_mib}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=",".join(f"{b}x{s}" for b, s in SHAPES),
                    help="comma-separated BxS list (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=0, help="timed runs per shape and library (default: by size)")
    ap.add_argument("--no-torch", action="store_true", help="time refimpl only (no reference stack needed)")
    ap.add_argument("--kernels", default="fast", choices=("fast", "reference"), help="refimpl's kernel set")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in item.split("x")) for item in args.shapes.split(",") if item]

    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(THREADS)
    except ImportError:
        pass

    import refimpl
    from refimpl.registry import fetch

    directory = fetch("all-MiniLM-L6-v2")
    weights_mib = (Path(directory) / "model.safetensors").stat().st_size / 2**20

    # Load refimpl first, before torch exists in the process, so the memory figures are its own.
    anon0, rss0 = proc_status_kib("RssAnon"), proc_status_kib("VmRSS")
    model = refimpl.BertModel.from_pretrained(directory, kernels=args.kernels)
    anon1, rss1 = proc_status_kib("RssAnon"), proc_status_kib("VmRSS")
    tok = refimpl.BertTokenizer.from_pretrained(directory)
    one_copy = check_one_copy(model, directory)
    load_anon_mib = (anon1 - anon0) / 1024.0

    torch = transformers = hf = None
    if not args.no_torch:
        import torch
        import transformers

        torch.set_num_threads(THREADS)
        hf = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()

    load_start = _load_average()
    if load_start > 1.2:
        print(f"warning: load average {load_start:.2f} before the run: another process is busy, the times "
              "(torch's above all: its OpenMP threads collapse under contention) are not comparable",
              file=sys.stderr)
    peak = gemm_peak_gflops()
    print(f"refimpl {refimpl.__version__} numpy {np.__version__}"
          + ("" if torch is None else f" | torch {torch.__version__} transformers {transformers.__version__}")
          + f" | {THREADS} threads | numpy float32 GEMM peak {peak:.0f} GFLOP/s (2048^3, best of 7)")
    print(f"weights: model.safetensors {weights_mib:.1f} MiB; loading refimpl grew anonymous memory by "
          f"{load_anon_mib:.1f} MiB (RSS {(rss1 - rss0) / 1024.0:.1f} MiB); {one_copy['params']} parameters owned, "
          f"{one_copy['input_major']} of them input-major ({one_copy['input_major_mib']:.1f} MiB)"
          + (f"; still mapped from the file: {one_copy['mapped'][:4]}" if one_copy["mapped"] else ""))
    # One copy: the anonymous memory loading added is the weights once (plus small change), not twice.
    one_copy_ok = not one_copy["mapped"] and load_anon_mib < 1.1 * weights_mib

    rng = np.random.default_rng(0)
    header = f"{'shape':>7} {'refimpl ms':>11} {'torch ms':>9} {'ratio':>6} {'GFLOP/s':>8} {'% peak':>7} {'max|diff|':>10}"
    print(header)
    print("-" * len(header))
    results = []
    for b, s in shapes:
        inputs = make_inputs(tok, b, s, rng)
        flops = encoder_flops(model.config, b, s)
        repeats = args.repeats or max(3, min(20, int(1e10 / flops)))

        def run_refimpl():
            return model(**inputs).last_hidden_state

        mine = run_refimpl()  # warm-up (and page the weights in)
        if hf is not None:
            tinputs = {k: torch.from_numpy(v) for k, v in inputs.items()}

            def run_torch():
                with torch.no_grad():
                    return hf(**tinputs).last_hidden_state

            ref = run_torch().numpy()
            real = inputs["attention_mask"].astype(bool)
            diff = float(np.abs(mine - ref)[real].max())
        # Runs come in blocks, one library at a time, with a pause between blocks: each library's idle
        # worker threads spin for a while after a call (OpenBLAS's, torch's OpenMP team), and would steal
        # the cores from the other one if runs alternated one by one.
        t_mine, t_ref = [], []
        for _ in range(ROUNDS):
            t_mine += _block(run_refimpl, repeats)
            if hf is not None:
                t_ref += _block(run_torch, repeats)
        ms = statistics.median(t_mine) * 1e3
        gflops = flops / (ms / 1e3) / 1e9
        if hf is not None:
            ms_ref = statistics.median(t_ref) * 1e3
            print(f"{b:>3}x{s:<3} {ms:>11.1f} {ms_ref:>9.1f} {ms / ms_ref:>6.2f} {gflops:>8.0f} "
                  f"{100 * gflops / peak:>6.0f}% {diff:>10.1e}")
        else:
            ms_ref = float("nan")
            print(f"{b:>3}x{s:<3} {ms:>11.1f} {'-':>9} {'-':>6} {gflops:>8.0f} {100 * gflops / peak:>6.0f}% {'-':>10}")
        results.append((b, s, ms, ms_ref, gflops))
        sys.stdout.flush()
    print(f"peak RSS {peak_rss_mib():.0f} MiB; one copy of the weights: {'yes' if one_copy_ok else 'NO'}; "
          f"load average before the run {load_start:.2f}")
    return 0 if one_copy_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
