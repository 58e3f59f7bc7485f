"""Corpus runs on Dask (refimpl/corpus.py): a local cluster started here, a candidate whose bug only
some inputs trigger — exactly those are reported, each at its first divergent tensor — resuming a run
skips finished batches, and refimpl's other kernel set over the corpus is within float32 rounding."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corpus_candidates
from refimpl.corpus import compare_corpus
from refimpl.errors import InputError

TESTS = Path(__file__).resolve().parent
WORDS = "the a man woman dog cat eats runs quickly slowly market fell rose today budget analysts blamed".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    lines = [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))} for _ in range(48)]
    lines.append({"input_ids": [101, 1996, 3899, 102], "attention_mask": [1, 1, 1, 1]})  # explicit inputs
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="the corpus tests need dask[distributed] (test extra)")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])  # for the workers
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


def _lengths(minilm_dir, corpus):
    import refimpl

    tok = refimpl.AutoTokenizer.from_pretrained(minilm_dir)
    out = []
    for line in corpus.read_text().splitlines():
        item = json.loads(line)
        out.append(len(item["input_ids"]) if "input_ids" in item else len(tok([item["text"]])["input_ids"][0]))
    return np.array(out)


def test_a_bug_some_inputs_trigger_is_reported_for_exactly_those(minilm_dir, corpus, cluster, tmp_path):
    summary = compare_corpus(minilm_dir, "corpus_candidates:nudged_on_long_inputs", corpus, tmp_path / "run",
                             batch=8, scheduler=cluster)
    want = set(np.flatnonzero(_lengths(minilm_dir, corpus) > corpus_candidates.LONG).tolist())
    assert 0 < len(want) < summary["inputs"]
    assert {d["input"] for d in summary["diverging"]} == want
    assert {d["first"] for d in summary["diverging"]} == {corpus_candidates.NUDGED}
    assert summary["worst"][corpus_candidates.NUDGED]["max_abs"] == pytest.approx(1e-3, rel=0.05)
    worst = sorted((tmp_path / "run" / "worst").iterdir())
    assert len(worst) == 6 and worst[0].name.endswith(".candidate.npz")
    # resume: a finished batch is not run again, and the summary is the same
    (tmp_path / "run" / "batches" / "000002.json").unlink()
    again = compare_corpus(minilm_dir, "corpus_candidates:nudged_on_long_inputs", corpus, tmp_path / "run",
                           batch=8, scheduler=cluster)
    assert again["resumed"] == again["batches"] - 1 and again["diverging"] == summary["diverging"]


def test_the_other_kernel_set_is_within_rounding_over_the_corpus(minilm_dir, corpus, cluster, tmp_path):
    summary = compare_corpus(minilm_dir, "refimpl:reference", corpus, tmp_path / "ref", batch=16, scheduler=cluster,
                             oracle=True)
    assert summary["diverging_inputs"] == 0 and summary["inputs"] == 49
    assert all(w["ok"] for w in summary["worst"].values())


def test_command_on_local_processes_and_bad_input(minilm_dir, corpus, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "refimpl", "compare-corpus", str(minilm_dir), "refimpl:reference",
                        "--inputs", str(corpus), "--out", str(tmp_path / "cli"), "--workers", "2", "--batch", "25"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "0 diverge" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "refimpl", "compare-corpus", str(minilm_dir), "nosuchmodule:run",
                        "--inputs", str(corpus), "--out", str(tmp_path / "x")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and "cannot be imported" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(InputError, match="no such file"):
        compare_corpus(minilm_dir, "refimpl:fast", tmp_path / "none.jsonl", tmp_path / "y")
