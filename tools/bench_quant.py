"""4-bit MiniLM: resident weight memory and forward time, refimpl vs transformers + bitsandbytes on CPU.

    python tools/bench_quant.py                       # nf4 + double quant, batch 8 x 128
    python tools/bench_quant.py --quant fp4 --shape 1x16 --repeats 9

Loads all-MiniLM-L6-v2 (refimpl.registry.fetch) both ways with the same BitsAndBytesConfig, float32 for the
rest of the model and float32 compute, and reports:
- resident weight bytes: every parameter and buffer the model holds (for a 4-bit layer: packed bytes,
  absmax, codebooks, nested state), against the float32 model's;
- the median forward time over ``--repeats`` runs in alternating blocks, 2 threads each (torch.set_num_threads
  and refimpl's worker threads), transformers with bitsandbytes' generic CPU path (the one refimpl reproduces;
  ``support_avx512bf16_for_cpu`` off) and, where the CPU has AVX512-BF16, also bitsandbytes' default bf16
  kernel;
- max |refimpl - transformers| of last_hidden_state.
Needs torch, transformers, bitsandbytes, accelerate (the test extra).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("USE_TF", "0")


def weight_bytes_refimpl(model) -> int:
    return int(sum(p.nbytes() if hasattr(p, "linear") else p.nbytes for p in model.params.values()))


def weight_bytes_torch(model) -> int:
    total = 0
    for module in model.modules():
        for p in list(module._parameters.values()) + list(module._buffers.values()):
            if p is None:
                continue
            total += p.numel() * p.element_size()
            qs = getattr(p, "quant_state", None)
            if qs is not None:
                total += qs.absmax.numel() * qs.absmax.element_size() + qs.code.numel() * 4
                if qs.nested:
                    total += qs.state2.absmax.numel() * 4 + qs.state2.code.numel() * 4 + 4
    return total


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quant", choices=("nf4", "fp4"), default="nf4")
    parser.add_argument("--no-double-quant", action="store_true")
    parser.add_argument("--shape", default="8x128", help="batch x length")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    import transformers
    import bitsandbytes as bnb

    import refimpl
    from refimpl.kernels import threads as refimpl_threads
    from refimpl.registry import fetch

    transformers.logging.set_verbosity_error()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    path = fetch("all-MiniLM-L6-v2")
    b, s = (int(v) for v in args.shape.split("x"))
    q = dict(load_in_4bit=True, bnb_4bit_quant_type=args.quant, bnb_4bit_use_double_quant=not args.no_double_quant)

    hf = transformers.BertModel.from_pretrained(path, quantization_config=transformers.BitsAndBytesConfig(**q),
                                                dtype=torch.float32, device_map="cpu", attn_implementation="eager").eval()
    mine = refimpl.BertModel.from_pretrained(path, quantization_config=refimpl.BitsAndBytesConfig(**q))
    full = refimpl.BertModel.from_pretrained(path)
    ids = np.random.default_rng(0).integers(1000, 29000, (b, s))
    mask = np.ones_like(ids)
    tids = torch.from_numpy(ids)

    def run_hf():
        with torch.no_grad():
            return hf(input_ids=tids, attention_mask=torch.from_numpy(mask)).last_hidden_state

    def run_mine():
        return mine(input_ids=ids, attention_mask=mask).last_hidden_state

    has_bf16 = any(getattr(m, "support_avx512bf16_for_cpu", False) for m in hf.modules())
    for m in hf.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
    err = float(np.abs(run_mine() - run_hf().numpy()).max())
    hf_times, my_times = [], []
    for _ in range(3):
        hf_times += timed(run_hf, args.repeats)
        my_times += timed(run_mine, args.repeats)
    print(f"all-MiniLM-L6-v2, {args.quant}{'' if args.no_double_quant else ' + double quant'}, float32 compute, "
          f"batch {b} x {s}, {args.threads} threads (refimpl workers: {refimpl_threads.workers()})")
    print(f"  resident weights: refimpl {weight_bytes_refimpl(mine) / 2**20:.2f} MiB, transformers+bnb "
          f"{weight_bytes_torch(hf) / 2**20:.2f} MiB, float32 model {weight_bytes_refimpl(full) / 2**20:.2f} MiB")
    mh, mm = statistics.median(hf_times), statistics.median(my_times)
    print(f"  forward (median): refimpl {mm * 1e3:.1f} ms, transformers+bnb generic CPU path {mh * 1e3:.1f} ms "
          f"(ratio {mm / mh:.2f})")
    if has_bf16:
        for m in hf.modules():
            if isinstance(m, bnb.nn.Linear4bit):
                m.support_avx512bf16_for_cpu = True
        run_hf()  # repacks the weights for the bf16 kernel
        bf = statistics.median(timed(run_hf, args.repeats * 3))
        print(f"  transformers+bnb default AVX512-BF16 kernel: {bf * 1e3:.1f} ms (bfloat16 inputs; max |diff| "
              f"{float(np.abs(run_mine() - run_hf().numpy()).max()):.2e} from refimpl)")
    print(f"  max |refimpl - transformers+bnb (generic)| of last_hidden_state: {err:.2e}")


if __name__ == "__main__":
    main()
