"""refimpl.pipeline against transformers' pipelines on the same checkpoints.

Tiny BERT heads are built by transformers from a seed (hidden 32, 4 heads, intermediate 37, 2 layers,
the MiniLM WordPiece vocabulary so the real tokenizer runs; weights scaled up so the candidates a
pipeline ranks are far apart compared with float32 rounding), saved, and loaded by both libraries; MiniLM
itself for feature extraction and sentence similarity. Strings, ids, offsets must be equal; scores agree
within tests/tolerances.py's pipeline rows. sentence-similarity has no transformers pipeline: it is
checked against transformers' BertModel outputs pooled in numpy as the checkpoint declares.
"""

import json
import shutil

import numpy as np
import pytest

import refimpl
from reference import reference
from tolerances import PIPELINE_TOLERANCES, bounds

pytestmark = pytest.mark.parity

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG"}
SCALE = 5.0  # weight std 0.02 * SCALE: peaked distributions, no near-ties among the ranked candidates

MASKED = ["Paris is the [MASK] of France.", "The [MASK] sat on the [MASK].", "Hello [MASK]!"]
TEXTS = ["A man is eating food.", "Ünïcödé and emoji 🙂 are tokenized too, aren't they?", "Short."]
NER_TEXTS = ["Hugging Face Inc. is a company based in New York City, near the Manhattanbridge.",
             "Angela Merkel visited Strasbourg and Luxembourg with 🙂 Emmanuel Macron yesterday."]
CONTEXT = ("The Amazon rainforest covers much of the Amazon basin of South America. This basin encompasses "
           "seven million square kilometres, of which five and a half million are covered by the rainforest. "
           "The region includes territory belonging to nine nations; Brazil holds sixty percent.")
QUESTIONS = ["Which nations own the rainforest?", "How large is the basin?"]


def assert_close(mine, theirs, what, kind="probability"):
    atol, rtol = PIPELINE_TOLERANCES["float32"][kind]
    mine, theirs = np.asarray(mine, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    err = np.abs(mine - theirs)
    assert mine.shape == theirs.shape, f"{what}: shape {mine.shape} vs transformers {theirs.shape}"
    assert (err <= atol + rtol * np.abs(theirs)).all(), (
        f"{what}: max |refimpl - transformers| {err.max():.3e} (bound {atol} + {rtol} |x|); "
        f"refimpl {mine.ravel()[:4]}, transformers {theirs.ravel()[:4]}")


def assert_same_records(mine, theirs, what, score_key="score", kind="probability"):
    """Same structure, same non-score values; scores within the pipeline bound."""
    if isinstance(theirs, list):
        assert isinstance(mine, list) and len(mine) == len(theirs), f"{what}: {mine!r:.300} vs {theirs!r:.300}"
        for i, (m, t) in enumerate(zip(mine, theirs)):
            assert_same_records(m, t, f"{what}[{i}]", score_key, kind)
        return
    assert isinstance(mine, dict) and set(mine) == set(theirs), f"{what}: keys {sorted(mine)} vs {sorted(theirs)}"
    for key, value in theirs.items():
        if key == score_key:
            assert_close(mine[key], value, f"{what}.{key}", kind)
        else:
            value = value.item() if hasattr(value, "item") else value
            assert mine[key] == value, f"{what}.{key}: refimpl {mine[key]!r}, transformers {value!r}"


def _peaked(torch, model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.fill_(1.0)
            elif p.dim() > 1:
                p.normal_(0.0, 0.02 * SCALE)
            else:
                p.normal_(0.0, 0.02)
    return model.eval()


def build(root, minilm_dir, head, name, seed=0, **config):
    """A tiny transformers ``head`` (a class name) saved with MiniLM's tokenizer files: its directory."""
    torch, transformers = reference()
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_attention_heads=4, intermediate_size=37,
                                  num_hidden_layers=2, max_position_embeddings=128, attn_implementation="eager",
                                  **config)
    model = _peaked(torch, getattr(transformers, head)(cfg), seed)
    path = root / name
    model.save_pretrained(path)
    for f in TOKENIZER_FILES:
        shutil.copy(minilm_dir / f, path / f)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("pipelines")
    return {
        "mlm": build(root, minilm_dir, "BertForMaskedLM", "mlm"),
        "cls3": build(root, minilm_dir, "BertForSequenceClassification", "cls3", seed=1,
                      id2label={0: "negative", 1: "neutral", 2: "positive"}),
        "cls1": build(root, minilm_dir, "BertForSequenceClassification", "cls1", seed=2, num_labels=1),
        "multi": build(root, minilm_dir, "BertForSequenceClassification", "multi", seed=3, num_labels=4,
                       problem_type="multi_label_classification"),
        "regression": build(root, minilm_dir, "BertForSequenceClassification", "regression", seed=4, num_labels=2,
                            problem_type="regression"),
        "ner": build(root, minilm_dir, "BertForTokenClassification", "ner", seed=5, id2label=NER_LABELS),
        "qa": build(root, minilm_dir, "BertForQuestionAnswering", "qa", seed=6),
        "base": build(root, minilm_dir, "BertModel", "base", seed=7),
    }


def hf_pipeline(task, path, **kwargs):
    torch, transformers = reference()
    return transformers.pipeline(task, model=str(path), device="cpu", **kwargs)


# -- fill-mask -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    dict(),
    dict(top_k=3),
    dict(top_k=1),
    dict(targets=["capital", "city", "river", "zzyzx"]),
    dict(targets="capital", top_k=4),
])
def test_fill_mask(models, call):
    theirs = hf_pipeline("fill-mask", models["mlm"])
    mine = refimpl.pipeline("fill-mask", model=models["mlm"])
    for inputs in (MASKED[0], MASKED[1], MASKED, [MASKED[2]]):
        assert_same_records(mine(inputs, **call), theirs(inputs, **call), f"fill-mask {inputs!r} {call}")


def test_fill_mask_defaults_at_construction_and_errors(models):
    theirs = hf_pipeline("fill-mask", models["mlm"], top_k=2)
    mine = refimpl.pipeline("fill-mask", model=models["mlm"], top_k=2)
    assert_same_records(mine(MASKED[0]), theirs(MASKED[0]), "fill-mask top_k at construction")
    assert_same_records(mine(MASKED[0], top_k=3), theirs(MASKED[0], top_k=3), "call overrides construction")
    with pytest.raises(refimpl.InputError, match=r"No mask_token \(\[MASK\]\) found"):
        mine("no mask here")
    with pytest.raises(refimpl.InputError, match="unknown option"):
        mine(MASKED[0], topk=3)


# -- text-classification ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["cls3", "cls1", "multi", "regression"])
@pytest.mark.parametrize("call", [
    dict(),
    dict(top_k=2),
    dict(top_k=None),
    dict(function_to_apply="none"),
    dict(function_to_apply="sigmoid", top_k=None),
    dict(function_to_apply="softmax", top_k=1),
    dict(return_all_scores=True),
])
def test_text_classification(models, model, call):
    theirs = hf_pipeline("text-classification", models[model])
    mine = refimpl.pipeline("sentiment-analysis", model=models[model])
    raw = call.get("function_to_apply", "none" if model == "regression" else None) == "none"
    kind = "logit" if raw else "probability"
    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    with pytest.warns(UserWarning) if "return_all_scores" in call else _nothing():
        want = [theirs(t, **call) for t in (TEXTS[0], TEXTS, pair, [pair, TEXTS[2]])]
    got = [mine(t, **call) for t in (TEXTS[0], TEXTS, pair, [pair, TEXTS[2]])]
    assert_same_records(got, want, f"text-classification {model} {call}", kind=kind)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_text_classification_labels_and_errors(models):
    mine = refimpl.pipeline("text-classification", model=models["cls3"])
    assert {r["label"] for r in mine(TEXTS[0], top_k=None)} == {"negative", "neutral", "positive"}
    with pytest.raises(refimpl.InputError, match="function_to_apply='tanh'"):
        mine(TEXTS[0], function_to_apply="tanh")
    with pytest.raises(refimpl.InputError, match="text pair"):
        mine([[TEXTS[0], TEXTS[1]], TEXTS[2]])


# -- feature-extraction and sentence-similarity --------------------------------------------------------------

def test_feature_extraction_minilm(minilm_dir):
    theirs = hf_pipeline("feature-extraction", minilm_dir)
    mine = refimpl.pipeline("feature-extraction", model=minilm_dir)
    atol, rtol = bounds("last_hidden_state", np.float32)
    for inputs in (TEXTS[0], TEXTS):
        got, want = mine(inputs), theirs(inputs)
        assert type(got) is list and type(got[0]) is list
        if isinstance(inputs, list):
            for g, w in zip(got, want):
                np.testing.assert_allclose(np.array(g), np.array(w), atol=atol, rtol=rtol)
        else:
            assert np.array(got).shape == np.array(want).shape  # [1, S, D]
            np.testing.assert_allclose(np.array(got), np.array(want), atol=atol, rtol=rtol)
    tensor = mine(TEXTS[1], return_tensors=True)
    assert isinstance(tensor, np.ndarray) and tensor.shape == np.array(want[1]).shape


def _hf_sentence_embeddings(path, texts, modes, normalize, max_length):
    """transformers' BertModel last hidden states, pooled in numpy as sentence-transformers does."""
    torch, transformers = reference()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    enc = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state.numpy().astype(np.float64)  # [B, S, D]
    mask = enc["attention_mask"].numpy()[..., None].astype(np.float64)
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(np.where(mask > 0, hidden, -1e9).max(axis=1))
        elif mode == "mean":
            parts.append((hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9))
        else:
            parts.append((hidden * mask).sum(1) / np.sqrt(mask.sum(1)))
    emb = np.concatenate(parts, axis=1)
    if normalize:
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb


def test_sentence_similarity_minilm(minilm_dir):
    sim = refimpl.pipeline("sentence-similarity", model="all-MiniLM-L6-v2")
    assert (sim.pooling, sim.normalize, sim.max_seq_length) == (["mean"], True, 256)  # modules.json, 1_Pooling
    sentences = TEXTS + ["A man eats a piece of bread.", "The stock market fell sharply today."]
    want = _hf_sentence_embeddings(minilm_dir, sentences, ["mean"], True, 256)
    got = sim.encode(sentences)
    assert_close(got, want, "MiniLM sentence embeddings", kind="embedding")
    scores = sim(sentences[0], sentences[1:])
    assert_close(scores, want[1:] @ want[0], "MiniLM cosine similarities", kind="embedding")
    assert_close(sim({"source_sentence": sentences[0], "sentences": sentences[1:]}), scores, "dict form")
    assert scores[2] > scores[3]  # eating food ~ eating bread, not the stock market


@pytest.mark.parametrize("modes,normalize", [(["cls"], False), (["max"], True), (["mean_sqrt_len_tokens"], False),
                                             (["cls", "mean"], True)])
def test_sentence_embeddings_declared_pooling(models, tmp_path, modes, normalize):
    """A sentence-transformers layout around the tiny BertModel: each pooling mode as declared."""
    path = tmp_path / "st"
    shutil.copytree(models["base"], path)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": "cls" in modes,
        "pooling_mode_mean_tokens": "mean" in modes, "pooling_mode_max_tokens": "max" in modes,
        "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens" in modes}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": False}))
    sim = refimpl.pipeline("sentence-similarity", model=path)
    assert sim.pooling == modes and sim.normalize == normalize and sim.max_seq_length == 12
    want = _hf_sentence_embeddings(path, TEXTS, modes, normalize, 12)  # TEXTS[1] is truncated to 12 tokens
    assert_close(sim.encode(TEXTS), want, f"pooling {modes} normalize={normalize}", kind="embedding")


def test_sentence_similarity_refuses_undeclared_modules(models, tmp_path):
    path = tmp_path / "dense"
    shutil.copytree(models["base"], path)
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(refimpl.ConfigError, match="Dense"):
        refimpl.pipeline("sentence-similarity", model=path)
    plain = refimpl.pipeline("sentence-similarity", model=models["base"])  # no modules.json: mean, no normalize
    assert (plain.pooling, plain.normalize) == (["mean"], False)


# -- token-classification -----------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", [None, "none", "simple", "first", "average", "max"])
def test_token_classification(models, strategy):
    call = {} if strategy is None else {"aggregation_strategy": strategy}
    theirs = hf_pipeline("token-classification", models["ner"], **call)
    mine = refimpl.pipeline("ner", model=models["ner"], **call)
    want, got = theirs(NER_TEXTS), mine(NER_TEXTS)
    assert_same_records(got, want, f"token-classification {call}")
    assert all(want), "the model must predict some non-O entities for the test to mean anything"
    if strategy not in (None, "none"):
        assert any(len(e["word"].split()) > 1 or "##" not in e["word"] for row in want for e in row)
    assert_same_records(mine(NER_TEXTS[0]), theirs(NER_TEXTS[0]), "one input")


@pytest.mark.parametrize("call", [dict(ignore_labels=[]), dict(ignore_labels=["O", "B-PER"], aggregation_strategy="simple"),
                                  dict(grouped_entities=True), dict(grouped_entities=True, ignore_subwords=True)])
def test_token_classification_options(models, call):
    theirs = hf_pipeline("token-classification", models["ner"])
    mine = refimpl.pipeline("token-classification", model=models["ner"])
    with pytest.warns(UserWarning) if "grouped_entities" in call else _nothing():
        want = theirs(NER_TEXTS[1], **call)
    assert_same_records(mine(NER_TEXTS[1], **call), want, f"token-classification {call}")


def test_token_classification_errors(models):
    mine = refimpl.pipeline("token-classification", model=models["ner"])
    with pytest.raises(refimpl.InputError, match="aggregation_strategy='longest'"):
        mine(NER_TEXTS[0], aggregation_strategy="longest")
    with pytest.raises(refimpl.InputError, match="is_split_into_words"):
        mine(NER_TEXTS[0], is_split_into_words=True)
    slow = refimpl.BertTokenizerLegacy.from_pretrained(models["ner"])
    with pytest.raises(refimpl.InputError, match="Slow tokenizers cannot handle subwords"):
        refimpl.pipeline("ner", model=models["ner"], tokenizer=slow, aggregation_strategy="first")


# -- question-answering ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    dict(),
    dict(top_k=3),
    dict(top_k=5, max_answer_len=4),
    dict(handle_impossible_answer=True, top_k=2),
    dict(align_to_words=False, top_k=3),
    dict(max_seq_len=40, doc_stride=12, top_k=3),  # the context split into overlapping windows
    dict(max_seq_len=40, doc_stride=12, padding="max_length", handle_impossible_answer=True),
    dict(max_seq_len=48, doc_stride=20, padding=True, top_k=2, align_to_words=False),
])
def test_question_answering(models, call):
    theirs = hf_pipeline("question-answering", models["qa"])
    mine = refimpl.pipeline("question-answering", model=models["qa"])
    for q in QUESTIONS:
        assert_same_records(mine(question=q, context=CONTEXT, **call), theirs(question=q, context=CONTEXT, **call),
                            f"question-answering {q!r} {call}")
    with pytest.warns(FutureWarning):
        want = theirs([{"question": q, "context": CONTEXT} for q in QUESTIONS], **call)
    assert_same_records(mine([{"question": q, "context": CONTEXT} for q in QUESTIONS], **call), want, "list of dicts")
    assert_same_records(mine(question=QUESTIONS, context=CONTEXT, **call), want, "list of questions")


def test_question_answering_windows_are_the_tokenizers():
    """The overflow windows are transformers' fast tokenizer's (stride and all)."""
    from refimpl.pipelines.question_answering import window_ranges

    assert window_ranges(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_ranges(10, 4, 0) == [(0, 4), (4, 8), (8, 10)]
    assert window_ranges(4, 4, 2) == [(0, 4)]


def test_question_answering_errors(models):
    qa = refimpl.pipeline("question-answering", model=models["qa"])
    with pytest.raises(refimpl.InputError, match="`context` cannot be empty"):
        qa(question="Who?", context="")
    with pytest.raises(refimpl.InputError, match="doc_stride.*larger than `max_seq_len`"):
        qa(question="Who?", context=CONTEXT, max_seq_len=20, doc_stride=30)
    with pytest.raises(refimpl.InputError, match="doc_stride=12 must be less than the context window"):
        qa(question=QUESTIONS[0], context=CONTEXT, max_seq_len=20, doc_stride=12)
    with pytest.raises(refimpl.InputError, match="max_question_len"):
        qa(question="Who?", context=CONTEXT, max_question_len=8)
    with pytest.raises(refimpl.InputError, match="top_k parameter should be >= 1"):
        qa(question="Who?", context=CONTEXT, top_k=0)


# -- text2text-generation --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bert2bert(tmp_path_factory, minilm_dir):
    torch, transformers = reference()
    common = dict(vocab_size=30522, hidden_size=32, num_attention_heads=4, intermediate_size=37, num_hidden_layers=2,
                  max_position_embeddings=300, attn_implementation="eager")  # room for the default 256 new tokens
    enc = transformers.BertConfig(**common)
    dec = transformers.BertConfig(is_decoder=True, add_cross_attention=True, **common)
    cfg = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 101, 0, 102  # [CLS], [PAD], [SEP]
    model = _peaked(torch, transformers.EncoderDecoderModel(cfg), 8)
    path = tmp_path_factory.mktemp("bert2bert") / "bert2bert"
    model.save_pretrained(path)
    for f in TOKENIZER_FILES:
        shutil.copy(minilm_dir / f, path / f)
    return path


@pytest.mark.parametrize("call", [dict(max_new_tokens=6), dict(max_new_tokens=7, num_beams=1),
                                  dict(max_new_tokens=5, num_beams=3, num_return_sequences=2),
                                  dict(max_new_tokens=6, no_repeat_ngram_size=2, repetition_penalty=1.3)])
def test_text2text_generation(bert2bert, call):
    theirs = hf_pipeline("text2text-generation", bert2bert)
    mine = refimpl.pipeline("text2text-generation", model=bert2bert)
    for inputs in (TEXTS[0], TEXTS):
        want = theirs(inputs, **call)
        assert want and all(r["generated_text"] for r in (want if isinstance(want[0], dict) else want[0]))
        assert mine(inputs, **call) == want, f"text2text {inputs!r} {call}"


def test_text2text_generation_pipeline_defaults(bert2bert):
    """Without options: the pipeline's max_new_tokens=256, num_beams=4 (transformers' defaults for it)."""
    theirs = hf_pipeline("text2text-generation", bert2bert)
    mine = refimpl.pipeline("text2text-generation", model=bert2bert)
    assert mine(TEXTS[2]) == theirs(TEXTS[2])
    theirs = hf_pipeline("text2text-generation", bert2bert, max_new_tokens=4)
    mine = refimpl.pipeline("text2text-generation", model=bert2bert, max_new_tokens=4)
    assert mine(TEXTS[0]) == theirs(TEXTS[0])
    ids = mine(TEXTS[0], return_tensors=True)[0]["generated_token_ids"]
    assert ids[0] == 101 and len(ids) <= 5


# -- the pipeline() factory ---------------------------------------------------------------------------------------

def test_pipeline_factory_errors(models, tmp_path):
    with pytest.raises(refimpl.InputError, match="unknown task 'summarize'.*fill-mask"):
        refimpl.pipeline("summarize", model=models["mlm"])
    with pytest.raises(refimpl.InputError, match="needs model="):
        refimpl.pipeline("fill-mask")
    with pytest.raises(refimpl.CheckpointNotFoundError, match="never contacts a model hub"):
        refimpl.pipeline("fill-mask", model="bert-base-uncased")
    with pytest.raises(refimpl.CheckpointNotFoundError, match="is a file"):
        refimpl.pipeline("fill-mask", model=models["mlm"] / "config.json")
    with pytest.raises(refimpl.ConfigError, match="model_type in \\['encoder-decoder'\\]"):
        refimpl.pipeline("text2text-generation", model=models["mlm"])
    loaded = refimpl.BertForMaskedLM.from_pretrained(models["mlm"])
    with pytest.raises(refimpl.InputError, match="runs \\['BertForTokenClassification'\\]"):
        refimpl.pipeline("ner", model=loaded)
    with pytest.raises(refimpl.InputError, match="loaded already"):
        refimpl.pipeline("fill-mask", model=loaded, dtype="float64")
    fill = refimpl.pipeline("fill-mask", model=loaded)  # the tokenizer from the model's directory
    assert fill(MASKED[0])[0]["token"] == refimpl.pipeline("fill-mask", model=models["mlm"])(MASKED[0])[0]["token"]


def test_float64_pipeline_agrees(models):
    f32 = refimpl.pipeline("fill-mask", model=models["mlm"])(MASKED[0])
    f64 = refimpl.pipeline("fill-mask", model=models["mlm"], dtype="float64")(MASKED[0])
    assert [r["token"] for r in f32] == [r["token"] for r in f64]
    assert_close([r["score"] for r in f32], [r["score"] for r in f64], "float32 vs float64")


def test_text2text_generation_errors(bert2bert):
    mine = refimpl.pipeline("text2text-generation", model=bert2bert)
    with pytest.raises(refimpl.InputError, match="max_new_tokens=256 takes precedence"):
        mine(TEXTS[0], max_length=5)
    with pytest.raises(refimpl.InputError, match="unknown option.*return_text"):
        mine(TEXTS[0], return_text=True)
