"""The longer fuzz run: every target of tests/test_fuzz.py with many more examples, randomised (CI runs them
derandomised and bounded to a few seconds each), then the checkpoint readers of refimpl.formats on mutated
files (a PyTorch .bin written by refimpl's own fixtures, byte flips and truncations).

    python tools/fuzz.py                    # 20000 examples per target (minutes)
    python tools/fuzz.py --examples 200000  # longer
    python tools/fuzz.py -k header          # one target (pytest -k)

A failure prints hypothesis's smallest failing example; add it to tests/test_hardening_*.py as a case.
Needs the test extra (hypothesis, pytest); the safetensors differential needs nothing else.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fuzz_format_readers(examples: int, seed: int) -> int:
    """Mutated copies of small checkpoint files through refimpl.formats' readers: each must load or raise a
    RefimplError (no raw exception, no hang, no allocation beyond the file's size). Returns failures."""
    sys.path.insert(0, str(ROOT))
    from refimpl.errors import RefimplError

    try:
        from refimpl.formats import torch_pickle
    except ImportError:
        print("refimpl.formats.torch_pickle not present: skipped")
        return 0
    seeds = sorted((ROOT / "weights").rglob("*.bin")) + sorted((ROOT / "tests").rglob("*.bin"))
    if not seeds:
        print("no .bin files to mutate: skipped")
        return 0
    rng, failures = random.Random(seed), 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pytorch_model.bin"
        for i in range(examples):
            data = bytearray(rng.choice(seeds).read_bytes())
            for _ in range(rng.randint(1, 8)):
                kind = rng.random()
                if kind < 0.5 and data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
                elif kind < 0.8 and data:
                    del data[rng.randrange(len(data)):]
                else:
                    at = rng.randrange(len(data) + 1)
                    data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            path.write_bytes(bytes(data))
            try:
                torch_pickle.read_state_dict(path)
            except RefimplError:
                pass
            except Exception as e:  # noqa: BLE001 - what this tool looks for
                failures += 1
                keep = Path(tmp).parent / f"fuzz_failure_{seed}_{i}.bin"
                keep.write_bytes(bytes(data))
                print(f"raw {type(e).__name__}: {e} (input kept in {keep})")
    print(f"formats: {examples} mutated .bin files, {failures} raw exceptions")
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000, help="examples per target (default %(default)s)")
    ap.add_argument("-k", default=None, help="only the targets whose name matches (pytest -k)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the format mutations")
    args = ap.parse_args(argv)
    env = dict(os.environ, REFIMPL_FUZZ_EXAMPLES=str(args.examples))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_fuzz.py"),
           "--hypothesis-show-statistics"] + (["-k", args.k] if args.k else [])
    code = subprocess.call(cmd, cwd=ROOT, env=env)
    if args.k is None:
        code |= 1 if fuzz_format_readers(max(args.examples // 20, 100), args.seed) else 0
    return code


if __name__ == "__main__":
    sys.exit(main())
