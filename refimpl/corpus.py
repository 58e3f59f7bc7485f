"""Corpus runs: a candidate implementation checked against refimpl over many inputs, on Dask.

    refimpl compare-corpus all-MiniLM-L6-v2 mypkg.mymodule:run --inputs corpus.jsonl --out run1/
    refimpl compare-corpus all-MiniLM-L6-v2 refimpl:reference --inputs corpus.jsonl --scheduler tcp://host:8786

The corpus (JSON lines, as ``refimpl trace --inputs``) is cut into batches; each batch is one task of a
``dask.bag`` map — local processes by default (``--workers``), or the cluster behind ``--scheduler``. A
task runs refimpl with a recorder on its batch (and refimpl in float64 with ``--oracle``), runs the
candidate on the same inputs, and compares each input's row of every common tensor at the input's own
(unpadded) positions, with the tolerance policy and oracle bands of :mod:`refimpl.compare`, vectorised
over the batch (tensors without a batch axis, like [1, S, D] position embeddings, are left to
``refimpl compare``). Its result is written to ``OUT/batches/NNNNNN.json`` at once,
so an interrupted run, started again with the same ``--out``, skips the batches already done.
``OUT/summary.json`` holds every name's worst error over the corpus and the inputs that diverge with
their first divergent tensor; the worst of those get traces of both sides in ``OUT/worst/``.

A candidate is ``refimpl:fast`` / ``refimpl:reference`` (refimpl itself with that kernel set) or
``module:function``, an importable function taking a dict of int64 arrays [B, S] (``input_ids``,
``attention_mask``, ``token_type_ids``) and returning a dict name -> array [B, ...] (its own names,
mapped with ``--map``). Dask is an optional dependency (``pip install refimpl[conformance]``).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from .errors import InputError
from .checkpoint import parse_json_text

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
_CACHE = {}  # per worker process: loaded models and candidates, by their spec


def read_corpus(path):
    """The corpus's items (dicts with ``text``/``text_pair`` or ``input_ids``...), in order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--inputs {path}: no such file")
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = parse_json_text(line)  # deep nesting: a JSONDecodeError, not a RecursionError
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(item, dict) or not ("text" in item or "input_ids" in item):
            raise InputError(f"{path}:{n}: a line must be an object with 'text' or 'input_ids'")
        unknown = set(item) - ({"text", "text_pair"} if "text" in item else set(INPUT_KEYS))
        if unknown:
            raise InputError(f"{path}:{n}: unknown keys {sorted(unknown)}; a line has text and text_pair, "
                             f"or {', '.join(INPUT_KEYS)}")
        items.append(item)
    if not items:
        raise InputError(f"{path}: the corpus is empty")
    return items


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _check_candidate(spec):
    """InputError for a candidate spec that cannot work (see the module docstring), before any task runs."""
    from .kernels import KERNEL_SETS

    if spec.startswith("refimpl:"):
        if spec.split(":", 1)[1] not in KERNEL_SETS:
            raise InputError(f"candidate {spec!r}: refimpl's kernel sets are {KERNEL_SETS} (refimpl:fast, refimpl:reference)")
        return
    _candidate(spec, None, None)


def _candidate(spec, model_dir, task):
    if spec.startswith("refimpl:"):
        from .cli import load_model
        from .trace import trace

        kernels = spec.split(":", 1)[1]
        model = _cached(("model", model_dir, task, "float32", kernels),
                        lambda: load_model(model_dir, task, "float32", "numpy", kernels)[1])
        return lambda inputs: trace(model, inputs)[0]
    module, _, name = spec.partition(":")
    if not name:
        raise InputError(f"candidate {spec!r}: write refimpl:fast, refimpl:reference or module:function")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InputError(f"candidate {spec!r} cannot be imported ({e})") from None


def item_inputs(item, tokenizer):
    """One corpus item as model inputs, int64 arrays [1, S]: a text (and text pair) through the
    tokenizer, or explicit ids as given."""
    if "text" in item:
        pair = [item["text_pair"]] if item.get("text_pair") is not None else None
        enc = tokenizer([item["text"]], pair, return_tensors="np")
        return {k: np.asarray(v, np.int64) for k, v in enc.items() if k in INPUT_KEYS}
    return {k: np.asarray([v], np.int64) for k, v in item.items()}


def _batch_inputs(items, tokenizer):
    """One padded batch of model inputs from corpus items (texts tokenized, explicit ids as given)."""
    from .cli import _batches

    return _batches([item_inputs(item, tokenizer) for item in items], len(items), 0)[0][1]


def _valid(name, shape, mask):
    """Which elements of a batch tensor belong to their row's input: real positions along S (and along
    both axes of an attention map); every element of tensors without a sequence axis. None: all."""
    b, length = mask.shape
    m = mask.astype(bool)
    if len(shape) == 3 and shape[:2] == (b, length):
        return m[:, :, None]
    if len(shape) == 4 and shape[0] == b and shape[2] == shape[3] == length:
        return m[:, None, :, None] & m[:, None, None, :]
    if len(shape) == 2 and shape == (b, length) and (name.startswith("inputs.") or name.endswith(("start_logits", "end_logits"))):
        return m
    return None


def _compare_rows(reference, candidate, mask, oracle, first):
    """Each input (row) of a batch against the candidate, every common tensor at once per name: the
    tolerance policy of :mod:`refimpl.compare` (masked scores by class), or with ``oracle`` the float64
    rounding band per row. Returns (worst per name, diverging inputs with their first tensor)."""
    from .compare import MASKED, _masked_ok, policy, rounding_verdict

    rows = mask.shape[0]
    first_bad = [None] * rows
    worst = {}
    for name, ref in reference.items():
        if name not in candidate or name.startswith("oracle."):
            continue
        ref, cand = np.asarray(ref), np.asarray(candidate[name])
        if ref.shape != cand.shape or ref.ndim == 0 or ref.shape[0] != rows:
            bad_rows = range(rows) if ref.shape != cand.shape else ()
            for r in bad_rows:
                first_bad[r] = first_bad[r] or (name, float("inf"))
            continue
        valid = _valid(name, ref.shape, mask)
        valid = np.ones(ref.shape, bool) if valid is None else np.broadcast_to(valid, ref.shape)
        axes = tuple(range(1, ref.ndim))
        atol, rtol = policy(name, ref.dtype)
        if oracle is None and ref.dtype == cand.dtype == np.float32 and not (ref <= MASKED).any():
            # the common case, in float32 and few passes: |c - r| (its rounding is 1e-7 of itself)
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(cand - ref)
                diff[np.isnan(diff)] = np.inf
                diff *= valid
                bound = np.abs(ref)
                bound *= rtol
                bound += atol
                bad = (diff > bound).any(axis=axes)
            row_max = diff.max(axis=axes).astype(np.float64)
        else:
            r64, c64 = ref.astype(np.float64), cand.astype(np.float64)
            masked, masked_ok = _masked_ok(np.where(valid, r64, 0.0), np.where(valid, c64, 0.0))
            real = valid & ~masked
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.where(real, np.abs(c64 - r64), 0.0)
                diff = np.where(np.isnan(diff), np.inf, diff)
            row_max = diff.max(axis=axes) if axes else diff
            if oracle is not None and name in oracle and ref.dtype.kind == "f":
                bad = ~rounding_verdict(c64, r64, np.asarray(oracle[name], np.float64), real, axes)["within"]
            else:
                bad = (diff > atol + rtol * np.abs(np.where(real, r64, 0.0))).any(axis=axes) if axes else diff > atol
            bad = bad | ~(masked_ok | ~valid).all(axis=axes)
        r = int(np.argmax(row_max))
        worst[name] = {"max_abs": float(row_max[r]), "input": first + r, "ok": not bool(bad.any())}
        for i in np.flatnonzero(bad):
            if first_bad[i] is None:
                first_bad[i] = (name, float(row_max[i]))
    diverging = [{"input": first + i, "first": fb[0], "max_abs": fb[1]} for i, fb in enumerate(first_bad) if fb]
    return worst, diverging


def run_batch(job, index, items, first):
    """One task: compare refimpl and the candidate on ``items`` (corpus inputs ``first``...). Writes and
    returns the batch's result (see the module docstring)."""
    from .cli import load_model
    from .tokenizers import AutoTokenizer
    from .trace import trace

    model_dir, task = job["model"], job["task"]
    model = _cached(("model", model_dir, task, "float32", "fast"), lambda: load_model(model_dir, task)[1])
    tokenizer = _cached(("tok", model_dir), lambda: AutoTokenizer.from_pretrained(model_dir))
    candidate = _cached(("cand", job["candidate"], model_dir, task), lambda: _candidate(job["candidate"], model_dir, task))
    inputs = _batch_inputs(items, tokenizer)
    reference, _ = trace(model, inputs)
    oracle = None
    if job["oracle"]:
        m64 = _cached(("model", model_dir, task, "float64", "fast"), lambda: load_model(model_dir, task, "float64")[1])
        oracle, _ = trace(m64, inputs)
    theirs = candidate(inputs)
    if job["map"]:
        from .compare import map_names

        theirs = map_names(theirs, job["map"])
    worst, diverging = _compare_rows(reference, theirs, inputs["attention_mask"], oracle, first)
    rows = inputs["input_ids"].shape[0]
    out = {"batch": index, "inputs": [first, first + rows], "worst": worst, "diverging": diverging}
    path = Path(job["out"]) / "batches" / f"{index:06d}.json"
    path.write_text(json.dumps(out))
    return out


def compare_corpus(model, candidate, inputs, out, task="base", batch=16, workers=None, scheduler=None,
                   name_map=None, oracle=False, worst_traces=3, progress=None):
    """Run the corpus comparison (module docstring); returns the summary dict (also OUT/summary.json)."""
    try:
        import dask
        import dask.bag as db
    except ImportError:
        raise InputError("compare-corpus runs on Dask: pip install 'refimpl[conformance]' (dask[bag])") from None
    from .cli import _model_dir

    if batch < 1:
        raise InputError(f"--batch {batch}: give at least 1")
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: give at least 1 (or leave it out: one per core)")
    model_dir = str(_model_dir(model))
    items = read_corpus(inputs)
    out = Path(out)
    (out / "batches").mkdir(parents=True, exist_ok=True)
    job = {"model": model_dir, "task": task, "candidate": candidate, "map": name_map, "oracle": oracle, "out": str(out)}
    _check_candidate(candidate)  # here, not in a worker's traceback
    chunks = [(j, items[s:s + batch], s) for j, s in enumerate(range(0, len(items), batch))]
    done = {int(p.stem) for p in (out / "batches").glob("*.json")}
    todo = [c for c in chunks if c[0] not in done]
    if todo:
        bag = db.from_sequence(todo, npartitions=len(todo)).map(lambda c: run_batch(job, *c))
        if scheduler:
            from distributed import Client

            with Client(scheduler):
                bag.compute()
        else:
            with dask.config.set(scheduler="processes", num_workers=workers):
                bag.compute()
    results = [json.loads((out / "batches" / f"{j:06d}.json").read_text()) for j, _, _ in chunks]
    worst, diverging = {}, []
    for res in results:
        for name, w in res["worst"].items():
            if name not in worst or w["max_abs"] > worst[name]["max_abs"]:
                worst[name] = w
        diverging += res["diverging"]
    diverging.sort(key=lambda d: -(d["max_abs"] if d["max_abs"] == d["max_abs"] else np.inf))
    summary = {"inputs": len(items), "batches": len(chunks), "resumed": len(chunks) - len(todo),
               "diverging_inputs": len(diverging), "diverging": diverging, "worst": worst,
               "candidate": candidate, "model": model_dir, "oracle": oracle}
    _write_worst_traces(job, items, diverging[:worst_traces], out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def _write_worst_traces(job, items, cases, out):
    """Traces of both sides for the worst diverging inputs, each alone: OUT/worst/{input}.*."""
    if not cases:
        return
    from .cli import load_model
    from .tokenizers import AutoTokenizer
    from .trace import save_trace, trace

    (out / "worst").mkdir(exist_ok=True)
    model = load_model(job["model"], job["task"])[1]
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    candidate = _candidate(job["candidate"], job["model"], job["task"])
    for case in cases:
        inputs = _batch_inputs([items[case["input"]]], tokenizer)
        tensors, meta = trace(model, inputs)
        save_trace(out / "worst" / f"{case['input']}.reference.safetensors", tensors, meta)
        theirs = {k: np.asarray(v) for k, v in candidate(inputs).items()}
        np.savez(out / "worst" / f"{case['input']}.candidate.npz", **theirs)
