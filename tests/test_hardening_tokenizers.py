"""Byte-level BPE of long words (issue 12): the priority-queue merge gives transformers' ids on random
words of every length (the rescan it replaced, tests/test_fuzz.py; here transformers itself)."""

import json
import random

import pytest

from refimpl.tokenizers import RobertaTokenizer
from refimpl.tokenizers.roberta import bpe, bpe_rescan

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytestmark = pytest.mark.parity

CORPUS = ["The quick brown fox jumps over the lazy dog. It's 3.14 o'clock, isn't it?",
          "Ünïcödé text: naïve café, straße, ΟΔΟΣ, русский язык, 中文字符, 日本語のテキスト, 한국어 🙂👍🏽"] * 50


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe_long")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(CORPUS, vocab_size=400, min_frequency=2,
                                special_tokens=["<s>", "</s>", "<unk>", "<pad>", "<mask>"])
    trainer.save_model(str(d))
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    return d


def test_long_words_match_transformers(bpe_dir):
    ours = RobertaTokenizer.from_pretrained(bpe_dir)
    theirs = transformers.RobertaTokenizer.from_pretrained(bpe_dir)
    rng = random.Random(0)
    letters = "thequickbrownfoxjumpsoverthelazydogÜïöéß中文🙂"
    for length in [1, 2, 3, 7, 50, 300, 2000, 20000]:
        word = "".join(rng.choice(letters) for _ in range(length))
        assert ours(word)["input_ids"] == theirs(word)["input_ids"], length


def test_fast_and_rescan_agree_on_the_trained_table(bpe_dir):
    ranks = RobertaTokenizer.from_pretrained(bpe_dir).bpe_ranks
    rng = random.Random(1)
    symbols = sorted({c for pair in ranks for c in "".join(pair)})
    for _ in range(300):
        word = "".join(rng.choice(symbols) for _ in range(rng.randint(0, 200)))
        assert bpe(word, ranks) == bpe_rescan(word, ranks)
