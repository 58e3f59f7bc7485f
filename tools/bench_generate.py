"""Benchmark: refimpl generate vs transformers generate, same process, same machine.

bert2bert warm-started from all-MiniLM-L6-v2 (transformers initialises the cross-attention, saves; refimpl
loads the saved directory, so both run the same weights), 64-token inputs, exactly 64 new tokens
(min_new_tokens = max_new_tokens = 64), greedy and beam 4, batch 1 and 8, float32.

Reports tokens per second (batch x 64 / wall time of generate, encoder included; median of --repeats runs after
one untimed warm-up run of each library)
and per-step decoder time at step 1, early steps (2-5) and late steps (60-63) to show the step time stays
flat as the output grows (the attention over the cache is the only part that grows).

    python tools/bench_generate.py [--repeats 3] [--threads 2] [--json out.json]

Needs the reference stack (torch, transformers). Do not run it while something else loads the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NEW_TOKENS = 64
INPUT_TOKENS = 64


class _StepClock:
    """Records a timestamp at the start of every decoding step (both libraries: a logits-processor-like hook
    for transformers, a wrapper of the decoder step for refimpl)."""

    def __init__(self):
        self.t = []

    def tick(self):
        self.t.append(time.perf_counter())

    def step_ms(self, end):
        t = self.t + [end]
        return [1e3 * (b - a) for a, b in zip(t, t[1:])]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=str, default=None)
    ap.add_argument("--kernels", default="fast", choices=("fast", "reference"), help="refimpl's kernel set")
    args = ap.parse_args()

    import torch
    import transformers

    import refimpl
    from refimpl.generation import utils as gen_utils
    from refimpl.registry import fetch

    torch.set_num_threads(args.threads)
    try:  # the same thread count for numpy's BLAS (OpenBLAS threads spin and fight under contention)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        print("threadpoolctl not installed: numpy's BLAS uses its default thread count", file=sys.stderr)
    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    minilm = fetch("all-MiniLM-L6-v2")
    torch.manual_seed(0)
    hf = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(
        str(minilm), str(minilm), encoder_attn_implementation="eager", decoder_attn_implementation="eager").eval()
    for cfg in (hf.config, hf.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 101, 0, 102
    tmp = Path(tempfile.mkdtemp())
    hf.save_pretrained(tmp / "b2b")
    mine = refimpl.EncoderDecoderModel.from_pretrained(tmp / "b2b", kernels=args.kernels)

    rng = np.random.default_rng(0)
    ids8 = rng.integers(1000, 30000, (8, INPUT_TOKENS))
    ids8[:, 0], ids8[:, -1] = 101, 102

    clock = _StepClock()

    class HFClock(transformers.LogitsProcessor):
        def __call__(self, input_ids, scores):
            return scores

    real_step = gen_utils._Session.step

    def timed_step(self, ids, cur):
        clock.tick()
        return real_step(self, ids, cur)

    gen_utils._Session.step = timed_step
    # transformers: time the model forward calls (one per step) via a forward pre-hook on the decoder
    hf.decoder.register_forward_pre_hook(lambda mod, inp: clock.tick())

    results = []
    for batch in (1, 8):
        ids = ids8[:batch]
        mask = np.ones_like(ids)
        for beams in (1, 4):
            opts = dict(num_beams=beams, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
            row = {"batch": batch, "num_beams": beams}
            for lib in ("transformers", "refimpl"):
                walls, steps = [], []
                # One untimed warm-up run per library and setting: first calls pay one-time costs
                # (transformers' lazy initialisation; refimpl's transposed copy of the LM head's matrix,
                # made once per model on the first decoding step, see lm_prediction_head).
                for i in range(args.repeats + 1):
                    clock.t = []
                    t0 = time.perf_counter()
                    if lib == "transformers":
                        with torch.no_grad():
                            out = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), **opts).numpy()
                    else:
                        out = mine.generate(ids, attention_mask=mask, **opts)
                    end = time.perf_counter()
                    if i > 0:
                        walls.append(end - t0)
                        steps.append(clock.step_ms(end))
                    assert out.shape == (batch, NEW_TOKENS + 1), out.shape
                    if lib == "transformers":
                        want = out
                    else:
                        row["identical_sequences"] = bool(np.array_equal(want, out))
                wall = statistics.median(walls)
                per_step = np.median(np.array(steps), axis=0)
                row[lib] = {
                    "tokens_per_s": round(batch * NEW_TOKENS / wall, 1),
                    "wall_s": round(wall, 3),
                    "step1_ms": round(float(per_step[0]), 2),
                    "steps2_5_ms": round(float(np.median(per_step[1:5])), 2),
                    "steps60_63_ms": round(float(np.median(per_step[59:63])), 2),
                }
            row["speedup"] = round(row["refimpl"]["tokens_per_s"] / row["transformers"]["tokens_per_s"], 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    gen_utils._Session.step = real_step
    print()
    print("| batch | beams | transformers tok/s | refimpl tok/s | speedup | refimpl step 1 / 2-5 / 60-63 ms | transformers step 1 / 2-5 / 60-63 ms | same output |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        m, h = r["refimpl"], r["transformers"]
        print(f"| {r['batch']} | {r['num_beams']} | {h['tokens_per_s']} | {m['tokens_per_s']} | {r['speedup']}x | "
              f"{m['step1_ms']} / {m['steps2_5_ms']} / {m['steps60_63_ms']} | "
              f"{h['step1_ms']} / {h['steps2_5_ms']} / {h['steps60_63_ms']} | {r['identical_sequences']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
