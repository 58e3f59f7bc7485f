"""Start-up benchmark: the ``refimpl`` command's first result against the same work with transformers, each
in a fresh process, from process start to exit.

    python tools/bench_startup.py               # 5 runs of each, medians
    python tools/bench_startup.py --repeats 9

Two jobs, each timed as a subprocess (wall clock from spawn to exit; peak RSS from ``os.wait4``'s rusage
of that child), alternating refimpl and transformers run by run so that machine noise hits both alike:

* **main job** — ``python -m refimpl`` (fetch-verify all-MiniLM-L6-v2, load tokenizer and BertModel, embed the
  six example sentences, print similarities) vs a fresh ``python -c`` that imports transformers, loads
  ``AutoTokenizer`` and ``AutoModel`` from the same directory, tokenizes the six sentences, runs the forward
  under ``torch.no_grad()`` and mean-pools.
* **fill-mask** — ``python -m refimpl run --task fill-mask --model DIR TEXT`` vs ``pipeline("fill-mask",
  model=DIR)(TEXT)``. DIR is all-MiniLM-L6-v2 with a masked-LM head added (seeded random head weights,
  decoder tied to the word embeddings; written once to a temporary directory): the real model size, a
  real tokenizer.

Prints the medians, peak RSS, the ratio refimpl / transformers (issue 11's target: at most 0.05) and the
load average before and after (the machine may be shared: say so when quoting the numbers). Needs
torch + transformers (the reference stack) for the transformers side; refimpl itself does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = "Paris is the [MASK] of France."

HF_MAIN = """
import torch, transformers
from refimpl.cli import EXAMPLES
path = {path!r}
tok = transformers.AutoTokenizer.from_pretrained(path)
model = transformers.AutoModel.from_pretrained(path).eval()
enc = tok(EXAMPLES, padding=True, truncation=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**enc).last_hidden_state
mask = enc["attention_mask"][..., None].float()
emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)
print(emb @ emb.T)
"""

HF_FILL_MASK = """
import transformers
print(transformers.pipeline("fill-mask", model={path!r}, device="cpu")({text!r}))
"""


def mlm_checkpoint(minilm: Path, out: Path) -> Path:
    """all-MiniLM-L6-v2 as a BertForMaskedLM checkpoint: its weights under ``bert.``, a seeded random MLM head."""
    from safetensors.numpy import load_file, save_file

    tensors = {f"bert.{k}": v for k, v in load_file(minilm / "model.safetensors").items()
               if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    config = json.loads((minilm / "config.json").read_text())
    d, v = config["hidden_size"], config["vocab_size"]
    rng = np.random.default_rng(0)
    tensors.update({
        "cls.predictions.transform.dense.weight": (rng.standard_normal((d, d)) * 0.02).astype(np.float32),
        "cls.predictions.transform.dense.bias": np.zeros(d, np.float32),
        "cls.predictions.transform.LayerNorm.weight": np.ones(d, np.float32),
        "cls.predictions.transform.LayerNorm.bias": np.zeros(d, np.float32),
        "cls.predictions.bias": np.zeros(v, np.float32),
    })
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config["architectures"] = ["BertForMaskedLM"]
    (out / "config.json").write_text(json.dumps(config, indent=1))
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / f, out / f)
    return out


def run_once(cmd):
    """(seconds from spawn to exit, peak RSS in MiB) of one fresh process."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error",
               USE_TF="0", USE_FLAX="0", USE_TORCH="1")  # transformers: torch only (no TensorFlow import)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)[:200]} failed:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def loadavg():
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ["?"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--make-mlm", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from refimpl.registry import fetch

    minilm = fetch("all-MiniLM-L6-v2")
    if args.make_mlm:
        mlm_checkpoint(minilm, Path(args.make_mlm))
        return
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        # written by a child: this process stays small, so the children forked from it start small (a
        # forked child's peak RSS counts the parent's pages it ran with before exec)
        mlm = Path(tmp) / "minilm-mlm"
        subprocess.run([py, __file__, "--make-mlm", str(mlm)], check=True)
        jobs = {
            "main job (python -m refimpl)": (
                [py, "-m", "refimpl"],
                [py, "-c", HF_MAIN.format(path=str(minilm))]),
            "refimpl run --task fill-mask": (
                [py, "-m", "refimpl", "run", "--task", "fill-mask", "--model", str(mlm), TEXT],
                [py, "-c", HF_FILL_MASK.format(path=str(mlm), text=TEXT)]),
        }
        before = loadavg()
        for cmds in jobs.values():  # warm the page cache and Python's bytecode caches once
            for cmd in cmds:
                run_once(cmd)
        results = {}
        for name, (mine, theirs) in jobs.items():
            times = {"refimpl": [], "transformers": []}
            rss = {"refimpl": [], "transformers": []}
            for _ in range(args.repeats):
                for side, cmd in (("refimpl", mine), ("transformers", theirs)):
                    s, m = run_once(cmd)
                    times[side].append(s)
                    rss[side].append(m)
            results[name] = {side: (statistics.median(times[side]), max(rss[side])) for side in times}
        after = loadavg()
    print(f"start-up, process start to exit, median of {args.repeats} (peak RSS the largest run); "
          f"{os.cpu_count()} CPUs, load average {' '.join(before)} before, {' '.join(after)} after")
    print(f"{'job':<32} {'refimpl':>18} {'transformers':>18} {'ratio':>7}")
    for name, r in results.items():
        (ms, mm), (ts, tm) = r["refimpl"], r["transformers"]
        print(f"{name:<32} {ms:7.2f} s {mm:6.0f} MiB {ts:7.2f} s {tm:6.0f} MiB {ms / ts:7.3f}")
    print("target (issue 11): ratio <= 0.05")


if __name__ == "__main__":
    main()
