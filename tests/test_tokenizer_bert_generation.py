"""BertGenerationTokenizer vs transformers' BertGenerationTokenizer on a SentencePiece model trained inside
the test (sentencepiece's trainer), with and without sampling (sp_model_kwargs)."""

from __future__ import annotations

import io
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.tokenizers import AutoTokenizer, BertGenerationTokenizer

from tokenizer_strategies import text

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")
transformers.logging.set_verbosity_error()
logging.getLogger("refimpl.tokenizers").setLevel(logging.CRITICAL)
pytestmark = pytest.mark.parity
SPECIALS = ("<s>", "</s>", "<unk>", "<pad>", "<::::>")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 3.14 o'clock, isn't it?",
    "Ünïcödé text: naïve café, straße, ΟΔΟΣ, русский язык, 中文字符, 日本語のテキスト, 한국어 🙂",
    "Generation with encoder decoder models: summarization, translation, and more.",
] * 40


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bertgen")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=90,
                                   pad_id=3, character_coverage=1.0, minloglevel=2)  # fmt: skip
    (d / "spiece.model").write_bytes(model.getvalue())
    return d


@pytest.fixture(scope="module")
def pair(spm_dir):
    return BertGenerationTokenizer.from_pretrained(spm_dir), transformers.BertGenerationTokenizer.from_pretrained(spm_dir)


@settings(SETTINGS, max_examples=600)
@given(s=text(SPECIALS))
def test_single_text(pair, s):
    ours, ref = pair
    assert ours.tokenize(s) == ref.tokenize(s)
    kw = dict(return_special_tokens_mask=True, return_token_type_ids=True)
    expected = ref(s, **kw)
    assert dict(ours(s, **kw)) == dict(expected)
    for skip in (False, True):
        for clean in (None, True):
            assert ours.decode(expected["input_ids"], skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == \
                ref.decode(expected["input_ids"], skip_special_tokens=skip, clean_up_tokenization_spaces=clean)  # fmt: skip


@settings(SETTINGS, max_examples=200)
@given(a=text(SPECIALS, 6), b=text(SPECIALS, 6), truncation=st.sampled_from([True, "only_first", "only_second"]),
       max_length=st.integers(0, 20), padding=st.sampled_from([False, True, "max_length"]))  # fmt: skip
def test_pairs_and_batches(pair, a, b, truncation, max_length, padding):
    ours, ref = pair
    kw = dict(truncation=truncation, max_length=max_length, padding=padding, return_token_type_ids=True)
    assert dict(ours(a, b, **kw)) == dict(ref(a, b, **kw))
    assert dict(ours([a, b], [b, a], **kw)) == dict(ref([a, b], [b, a], **kw))


def test_sampling_passes_through(spm_dir):
    kwargs = {"enable_sampling": True, "nbest_size": -1, "alpha": 0.5}
    ours = BertGenerationTokenizer.from_pretrained(spm_dir, sp_model_kwargs=kwargs)
    ref = transformers.BertGenerationTokenizer.from_pretrained(spm_dir, sp_model_kwargs=kwargs)
    s = "The quick brown fox jumps over the lazy dog " * 3
    seen = set()
    for seed in range(5):
        spm.set_random_generator_seed(seed)
        expected = ref(s)["input_ids"]
        spm.set_random_generator_seed(seed)
        assert ours(s)["input_ids"] == expected
        seen.add(tuple(expected))
    assert len(seen) > 1  # sampling really is on


def test_auto_and_save_round_trip(spm_dir, tmp_path):
    ours = AutoTokenizer.from_pretrained(spm_dir)
    assert isinstance(ours, BertGenerationTokenizer)
    ours.save_pretrained(tmp_path)
    again = transformers.BertGenerationTokenizer.from_pretrained(tmp_path)
    s = "naïve <::::> café </s>"
    assert again(s)["input_ids"] == ours(s)["input_ids"] == BertGenerationTokenizer.from_pretrained(tmp_path)(s)["input_ids"]
