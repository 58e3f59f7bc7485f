"""Forward + backward of a MiniLM-sized BertForMaskedLM (vocab 30522, D 384, 6 layers, 12 heads, F 1536)
at 8 x 128 tokens: refimpl's ``loss_and_grads`` against transformers + torch autograd (eager attention)
in the same process, 2 threads each, float32, the same weights; prints median times, their ratio, and
each library's peak memory for one step (the resident-set high-water mark above what it held before the
step, /proc/self/clear_refs resetting it between the two), and the largest gradient difference.

    python tools/bench_backward.py [--repeats 5] [--batch 8] [--seq 128]

Needs the reference stack (torch + transformers). The machine is shared: the load average is printed
before and after; compare ratios from one run, never absolute times across runs (docs/performance.md).
"""

import argparse
import os

os.environ.setdefault("USE_TF", "0")  # transformers would import tensorflow when it is installed
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import refimpl  # noqa: E402

MINILM = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
              intermediate_size=1536, max_position_embeddings=512, hidden_dropout_prob=0.0,
              attention_probs_dropout_prob=0.0)


def rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_of(fn):
    """(result, MiB the resident set rose above its level before ``fn`` at its highest during it)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = rss_kib("VmRSS")
    out = fn()
    return out, (rss_kib("VmHWM") - before) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    import torch
    import transformers
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(2)
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    model = refimpl.BertForMaskedLM(refimpl.BertConfig(**MINILM), seed=0)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        model = refimpl.BertForMaskedLM.from_pretrained(d)  # as loaded: memory-mapped, input-major encoder weights
        hf = transformers.BertForMaskedLM.from_pretrained(d, attn_implementation="eager").train(False)
    rng = np.random.default_rng(0)
    b, s = args.batch, args.seq
    ids = rng.integers(1000, 30000, (b, s))
    mask = (np.arange(s) < rng.integers(s // 2, s + 1, (b, 1))).astype(np.int64)
    labels = np.where(rng.random((b, s)) < 0.15, ids, -100)
    t_ids, t_mask, t_labels = (torch.from_numpy(a) for a in (ids, mask, labels))

    def ours():
        return model.loss_and_grads(input_ids=ids, attention_mask=mask, labels=labels)

    def theirs():
        hf.zero_grad(set_to_none=True)
        loss = hf(input_ids=t_ids, attention_mask=t_mask, labels=t_labels).loss
        loss.backward()
        return float(loss.detach())

    times = {"refimpl": [], "torch": []}
    peaks = {}
    with threadpool_limits(2):
        (loss, grads), peaks["refimpl"] = peak_of(ours)
        want_loss, peaks["torch"] = peak_of(theirs)
        for _ in range(args.repeats):  # alternating blocks, a pause between (idle threads spin for a while)
            for name, fn in (("refimpl", ours), ("torch", theirs)):
                time.sleep(0.3)
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    diff = max(float(np.abs(grads[n] - p.grad.numpy()).max()) for n, p in hf.named_parameters() if p.grad is not None)
    scale = max(float(np.abs(p.grad.numpy()).max()) for n, p in hf.named_parameters() if p.grad is not None)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"forward + backward, BertForMaskedLM MiniLM-sized, {b}x{s}, float32, 2 threads each, "
          f"median of {args.repeats}")
    print(f"  refimpl {med['refimpl']:8.1f} ms   peak +{peaks['refimpl']:7.1f} MiB   loss {float(loss):.6f}")
    print(f"  torch   {med['torch']:8.1f} ms   peak +{peaks['torch']:7.1f} MiB   loss {want_loss:.6f}")
    print(f"  ratio refimpl / torch: time {med['refimpl'] / med['torch']:.2f}, peak memory "
          f"{peaks['refimpl'] / max(peaks['torch'], 1e-9):.2f}; max |grad diff| {diff:.2e} (largest gradient {scale:.2e})")
    best = {k: min(v) * 1000 for k, v in times.items()}
    print(f"  best of {args.repeats}: refimpl {best['refimpl']:.1f} ms, torch {best['torch']:.1f} ms, ratio "
          f"{best['refimpl'] / best['torch']:.2f} (the fairer figure when the load average shows other work)")
    print(f"  all times ms: refimpl {[round(t * 1000) for t in times['refimpl']]}, "
          f"torch {[round(t * 1000) for t in times['torch']]}")
    print(f"  load average before {' '.join(load_before)}, after {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
          f"; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
