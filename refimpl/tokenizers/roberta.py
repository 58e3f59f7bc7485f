"""Byte-level BPE (GPT-2 / RoBERTa), matching transformers 4.57.6's ``RobertaTokenizer``.

Text -> (special tokens kept whole) -> GPT-2 pre-tokenization regex -> UTF-8 bytes, each byte shown as
a printable character (``bytes_to_unicode``: a space is ``Ġ``) -> BPE merges by rank -> ids.

    >>> tok.tokenize("Hello world")
    ['Hello', 'Ġworld']
    >>> tok("Hello", "world")["input_ids"]        # <s> A </s></s> B </s>
    [0, 31414, 2, 2, 8331, 2]

Decoding maps the characters back to bytes and decodes UTF-8 with ``errors`` ("replace" by default),
so ``decode(encode(text))`` gives ``text`` back for any text.

Offsets (``return_offsets_mapping=True``) are those of transformers' ``RobertaTokenizerFast`` for the same
tokens: each token's bytes are mapped back to the characters they come from (a token holding part of a
character's UTF-8 bytes gets the whole character), then ``RobertaProcessing(trim_offsets=True)`` moves
the start past leading ``Ġ`` and the end before trailing ones::

    >>> tok("The <mask> fox  ", return_offsets_mapping=True)["offset_mapping"]
    [(0, 0), (0, 3), (4, 10), (11, 14), (16, 16), (0, 0)]      # <s> The <mask> Ġfox ĠĠ </s>
"""

from __future__ import annotations

import heapq
from functools import lru_cache
from pathlib import Path

import regex

from ..errors import InputError, TokenizerError
from .base import Seq, Special, TokenizerBase, TokenizerFileNotFoundError, read_json

#: GPT-2's pre-tokenization pattern (contractions, letters, numbers, other symbols, whitespace runs).
PRETOKENIZE_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table: printable Latin-1 bytes map to themselves, the other 68
    bytes to U+0100 upwards, in byte order (so b" " -> "Ġ" U+0120, b"\\n" -> "Ċ" U+010A)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe(word: str, ranks: dict) -> list[str]:
    """Merge the lowest-ranked adjacent pair, all its occurrences left to right, until no pair is ranked
    (transformers' ``RobertaTokenizer.bpe``).

    >>> bpe("lower", {("l", "o"): 0, ("lo", "w"): 1, ("e", "r"): 2})
    ['low', 'er']

    Written as the Rust tokenizers' ``Word::merge_all``: the symbols in a linked list, the ranked pairs in
    a priority queue of (rank, position), so a word of n characters costs O(n log n) instead of a rescan
    of the whole word per merge (a 10 MB word took minutes). One round pops every entry of the lowest rank
    (one pair: ranks are unique) in position order and merges those still present left to right, skipping
    an occurrence the previous merge consumed; the pairs the round formed enter the queue after it, so even
    a merge table whose new pair outranks the current one gives the rescan's result
    (``tests/test_hardening_tokenizers.py`` checks both on random words and tables). Entries a merge made
    stale are recognised when popped: the pair at that position no longer has that rank.
    """
    n = len(word)
    if n < 2:
        return list(word)
    symbols: list = list(word)  # None once merged into its left neighbour
    after = list(range(1, n)) + [-1]  # linked list: the next live symbol, -1 at the end
    before = list(range(-1, n - 1))
    queue = [(r, i) for i in range(n - 1) if (r := ranks.get((word[i], word[i + 1]))) is not None]
    heapq.heapify(queue)
    while queue:
        rank = queue[0][0]
        merged = []
        while queue and queue[0][0] == rank:  # this round's positions, ascending
            i = heapq.heappop(queue)[1]
            left = symbols[i]
            j = after[i] if left is not None else -1
            if j == -1 or ranks.get((left, symbols[j])) != rank:
                continue  # stale: consumed, or the pair here changed
            symbols[i], symbols[j] = left + symbols[j], None
            after[i] = k = after[j]
            if k != -1:
                before[k] = i
            merged.append(i)
        for i in merged:  # the pairs this round formed, with their left and right neighbours
            if symbols[i] is None:
                continue
            p, k = before[i], after[i]
            if p != -1 and (r := ranks.get((symbols[p], symbols[i]))) is not None:
                heapq.heappush(queue, (r, p))
            if k != -1 and (r := ranks.get((symbols[i], symbols[k]))) is not None:
                heapq.heappush(queue, (r, i))
    out, i = [], 0
    while i != -1:
        out.append(symbols[i])
        i = after[i]
    return out


def bpe_rescan(word: str, ranks: dict) -> list[str]:
    """The textbook form of :func:`bpe` (transformers' loop: rescan the word for the best pair, merge all
    its occurrences, repeat): O(n) per merge. Kept as the reference the fast form is tested against."""
    parts = list(word)
    while len(parts) > 1:
        best, best_rank = None, None
        for pair in zip(parts, parts[1:]):
            r = ranks.get(pair)
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = pair, r
        if best is None:
            break
        merged, i = [], 0
        while i < len(parts):
            if i < len(parts) - 1 and parts[i] == best[0] and parts[i + 1] == best[1]:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


#: Rust ``char::is_whitespace`` (the Unicode White_Space property): Python's ``str.isspace`` without U+001C..U+001F.
RUST_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")  # fmt: skip


def byte_char_offsets(word: str, start: int, tokens: list[str]) -> list[tuple[int, int]]:
    """Character offsets of the byte-level ``tokens`` of ``word`` (which starts at character ``start``).

    Token characters are bytes of ``word``'s UTF-8 encoding, in order; a token covers the characters
    its bytes belong to, so every token cut out of one multi-byte character gets that character:

    >>> byte_char_offsets("é🙂", 10, ["Ã©", "ðŁ", "Ļ", "Ĥ"])      # 2 + 4 bytes
    [(10, 11), (11, 12), (11, 12), (11, 12)]
    """
    char_of_byte = [j for j, c in enumerate(word) for _ in range(len(c.encode("utf-8")))]
    out, b = [], 0
    for token in tokens:
        b_end = b + len(token)
        out.append((start + char_of_byte[b], start + char_of_byte[b_end - 1] + 1))
        b = b_end
    return out


def trim_offsets(values: list[str], offsets: list[tuple[int, int]], add_prefix_space: bool) -> list[tuple[int, int]]:
    """The Rust ``RobertaProcessing`` with ``trim_offsets=True`` (``process_offsets``), on one sequence.

    ``values`` are the token strings as the Rust encoding holds them: the token, except that an lstrip
    special token (``<mask>``) holds the whitespace it swallowed too. Leading ``Ġ``/whitespace characters
    move a token's start right, trailing ones its end left (never past each other). The first token
    (index 0, or starting at 0) keeps a single leading one when ``add_prefix_space``: that space may be
    the one the pre-tokenizer added.

    >>> trim_offsets(["Ġ", "Ġ", "hi", "ĠĠ", "  <mask>"], [(0, 1), (1, 2), (2, 4), (4, 6), (6, 14)], False)
    [(1, 1), (2, 2), (2, 4), (6, 6), (8, 14)]
    """
    out = []
    for i, (value, (start, end)) in enumerate(zip(values, offsets)):
        leading = 0
        while leading < len(value) and (value[leading] == "Ġ" or value[leading] in RUST_WHITESPACE):
            leading += 1
        trailing = 0
        while trailing < len(value) and (value[-1 - trailing] == "Ġ" or value[-1 - trailing] in RUST_WHITESPACE):
            trailing += 1
        if leading:
            if (i == 0 or start == 0) and add_prefix_space and leading == 1:
                leading = 0
            start = min(start + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, start)
        out.append((start, end))
    return out


def load_merges(path) -> dict[tuple[str, str], int]:
    """merges.txt -> {(left, right): rank}. As transformers' RobertaTokenizer: the first line is a header
    (``#version: ...``) and the last line is taken to be empty (the file ends with a newline)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")[1:-1]
    except FileNotFoundError:
        raise TokenizerFileNotFoundError(f"merges file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as e:
        raise TokenizerError(f"merges file {str(path)!r} is not UTF-8 ({e})") from None
    ranks = {}
    for n, line in enumerate(lines, start=2):
        parts = tuple(line.split())
        if len(parts) != 2:
            raise TokenizerError(f"merges file {str(path)!r} line {n}: expected two symbols, got {line!r}")
        ranks[parts] = n - 2
    return ranks


#: What refimpl's RobertaTokenizer reads of a tokenizer.json (``RobertaTokenizerFast.save_pretrained``'s file);
#: any other component type is refused by name, never replaced by RoBERTa's.
ROBERTA_COMPONENTS = {
    "normalizer": (None,),
    "pre_tokenizer": ("ByteLevel",),
    "model": ("BPE",),
    "post_processor": ("RobertaProcessing",),
    "decoder": ("ByteLevel",),
}


def _refuse(where: str, section: str, component, detail: str = ""):
    kind = component.get("type") if isinstance(component, dict) else component
    supported = [k for k in ROBERTA_COMPONENTS[section] if k]
    raise TokenizerError(
        f"{where}: {section} {kind!r}{detail} is not supported by refimpl's RobertaTokenizer (it reads "
        f"{supported or 'none'}{' or none' if None in ROBERTA_COMPONENTS[section] and supported else ''}); "
        "tokenizing with RoBERTa's pipeline instead would give other ids. Use RobertaTokenizerFast's tokenizer.json, "
        "or vocab.json + merges.txt"
    )


def load_roberta_tokenizer_json(path) -> dict:
    """A byte-level BPE ``tokenizer.json`` (as ``RobertaTokenizerFast`` writes it) -> constructor arguments.

    Read: ``ByteLevel`` pre-tokenizer (``use_regex``; its ``add_prefix_space``/``trim_offsets`` are replaced by
    the class options, as ``RobertaTokenizerFast.__init__`` replaces them), ``BPE`` model (vocab, merges in
    either serialisation, ``"a b"`` or ``["a", "b"]``; rank = position), ``RobertaProcessing`` (``cls``/``sep``
    tokens; its options likewise replaced), ``ByteLevel`` decoder, no normalizer. Refused by name: anything
    else, and BPE options that change the result (``dropout``, ``continuing_subword_prefix``,
    ``end_of_word_suffix``, ``byte_fallback``, ``ignore_merges``, ``fuse_unk``).
    """
    where = f"tokenizer file {str(path)!r}"
    data = read_json(Path(path), "tokenizer file")
    if not isinstance(data, dict):
        raise TokenizerError(f"{where} must hold a JSON object; re-export it")
    if data.get("normalizer") is not None:
        _refuse(where, "normalizer", data["normalizer"])
    pre = data.get("pre_tokenizer")
    if not isinstance(pre, dict) or pre.get("type") != "ByteLevel":
        _refuse(where, "pre_tokenizer", pre)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        _refuse(where, "model", model)
    for key, default in (("dropout", None), ("continuing_subword_prefix", None), ("end_of_word_suffix", None),
                         ("byte_fallback", False), ("ignore_merges", False), ("fuse_unk", False)):  # fmt: skip
        value = model.get(key, default)
        if value not in (default, "") if key.endswith(("prefix", "suffix")) else value != default:
            _refuse(where, "model", model, f" with {key}={value!r} (refimpl: {default!r} only)")
    post = data.get("post_processor")
    if not isinstance(post, dict) or post.get("type") != "RobertaProcessing":
        _refuse(where, "post_processor", post)
    dec = data.get("decoder")
    if not isinstance(dec, dict) or dec.get("type") != "ByteLevel":
        _refuse(where, "decoder", dec)
    vocab, merges = model.get("vocab"), model.get("merges")
    if not isinstance(vocab, dict) or not isinstance(merges, list):
        raise TokenizerError(f"{where}: the BPE model needs 'vocab' (an object) and 'merges' (a list); re-export it")
    bad = next(((k, v) for k, v in vocab.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0), None)
    if bad is not None:
        raise TokenizerError(f"{where}: vocabulary entry {bad[0]!r}: {bad[1]!r} must map the token to an integer id "
                             ">= 0; re-export the file")
    ranks = {}
    for n, merge in enumerate(merges):
        pair = tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) if isinstance(merge, list) else ()
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise TokenizerError(f"{where}: merge {n} is {merge!r}; expected \"a b\" or [\"a\", \"b\"]")
        ranks.setdefault(pair, n)
    vocab = {str(k): v for k, v in vocab.items()}
    for added in data.get("added_tokens") or []:
        if isinstance(added, dict) and isinstance(added.get("content"), str) and isinstance(added.get("id"), int):
            vocab.setdefault(added["content"], added["id"])
    try:
        (sep, _), (cls, _) = post["sep"], post["cls"]
    except (KeyError, TypeError, ValueError):
        raise TokenizerError(f"{where}: RobertaProcessing needs 'sep' and 'cls' as [token, id]; re-export it") from None
    return {"vocab": vocab, "merges": ranks, "use_regex": bool(pre.get("use_regex", True)), "cls_token": cls,
            "sep_token": sep, "tokenizer_json": data}  # fmt: skip


class RobertaTokenizer(TokenizerBase):
    """Byte-level BPE from ``vocab.json`` + ``merges.txt``, as transformers' ``RobertaTokenizer``.

    Options: ``errors`` (bytes.decode's errors mode in decode, default "replace"), ``add_prefix_space``
    (prepend a space unless the text starts with whitespace), special tokens (``<s>``, ``</s>``,
    ``<unk>``, ``<pad>``, ``<mask>``; ``<mask>`` swallows the whitespace on its left).
    ``return_offsets_mapping=True`` gives ``RobertaTokenizerFast``'s character offsets for these tokens
    (the Python class has none); ids, truncation and padding stay the Python class's.
    """

    flavour = "slow"
    config_class_name = "RobertaTokenizer"
    model_input_names = ("input_ids", "attention_mask")
    default_special_tokens = {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": "<mask>",
    }  # fmt: skip
    lstrip_tokens = ("mask_token",)
    call_options = ("add_prefix_space",)  # transformers' prepare_for_tokenization reads it at call time

    def __init__(self, vocab_file=None, merges_file=None, errors="replace", add_prefix_space=False, *,
                 vocab=None, merges=None, trim_offsets=True, use_regex=True, tokenizer_json=None,
                 **kwargs):  # fmt: skip
        if vocab is None:
            if vocab_file is None:
                raise TokenizerError("RobertaTokenizer needs vocab_file (vocab.json) or vocab (a dict)")
            vocab = read_json(Path(vocab_file), "vocabulary file")
            if not isinstance(vocab, dict):
                raise TokenizerError(f"vocabulary file {str(vocab_file)!r} must hold a JSON object token -> id")
            bad = next(((k, v) for k, v in vocab.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0), None)
            if bad is not None:
                raise TokenizerError(f"vocabulary file {str(vocab_file)!r}: entry {bad[0]!r}: {bad[1]!r} must map the "
                                     "token to an integer id >= 0; re-export the file")
        if merges is None:
            if merges_file is None:
                raise TokenizerError("RobertaTokenizer needs merges_file (merges.txt) or merges")
            merges = load_merges(merges_file)
        # from a tokenizer.json: RobertaTokenizerFast's truncation / type-id / decode semantics (the Rust ones)
        self.flavour = "slow" if tokenizer_json is None else "fast"
        super().__init__(**kwargs)
        self.vocab = {str(k): int(v) for k, v in vocab.items()}
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.bpe_ranks = dict(merges)
        self.errors = errors
        self.add_prefix_space = bool(add_prefix_space)
        self.trim_offsets = bool(trim_offsets)
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        # use_regex=False (ByteLevel pre-tokenizer): each segment between special tokens is one word
        self.use_regex = bool(use_regex)
        self._pattern = regex.compile(PRETOKENIZE_PATTERN if self.use_regex else r"(?s).+")
        # loaded from a tokenizer.json: the Rust pipeline's rules where they differ from the Python class's
        # (the prefix space is added to each segment between added tokens that does not start with " ")
        self._tokenizer_json = tokenizer_json
        self._cache: dict[str, list[str]] = {}
        lstrip = {self.special_tokens.get(n) for n in self.lstrip_tokens}
        self._lstrip = lstrip - {None}
        # added tokens: the special tokens, in transformers' order, with ids past the vocabulary if absent
        self._init_added_tokens()

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """Load ``vocab.json`` + ``merges.txt`` (+ ``tokenizer_config.json``, ``special_tokens_map.json``)."""
        directory, config = cls._read_config(directory, kwargs)
        if (directory / "tokenizer.json").is_file() and not (directory / "vocab.json").is_file():
            return cls(**{**load_roberta_tokenizer_json(directory / "tokenizer.json"), **config})
        return cls(directory / "vocab.json", directory / "merges.txt", **config)

    def _template(self, pair: bool) -> list:
        cls, sep = self.cls_token, self.sep_token
        if pair:
            return [Special(cls, 0), Seq(0, 0), Special(sep, 0), Special(sep, 0), Seq(1, 0), Special(sep, 0)]
        return [Special(cls, 0), Seq(0, 0), Special(sep, 0)]

    def _bpe(self, piece: str) -> list[str]:
        out = self._cache.get(piece)
        if out is None:
            out = bpe(piece, self.bpe_ranks)
            if len(self._cache) < 500_000:
                self._cache[piece] = out
        return out

    def _encode_split_word(self, word: str, want_offsets: bool, opts: dict):
        """Each pre-split word gets the prefix space (transformers' prepare_for_tokenization with
        ``is_split_into_words``)."""
        return self._encode_text(word, want_offsets, **{**opts, "add_prefix_space": True})

    def _tokenize_with_offsets(self, text: str, want_offsets: bool, add_prefix_space=None):
        shift = 0  # characters added in front of the text: the prefix space maps to character 0
        if add_prefix_space is None:
            add_prefix_space = self.add_prefix_space
        elif not isinstance(add_prefix_space, bool):
            raise TokenizerError(f"add_prefix_space={add_prefix_space!r} must be True or False")
        fast = self._tokenizer_json is not None  # the Rust ByteLevel pre-tokenizer adds it per segment, below
        if add_prefix_space and text and not text[0].isspace() and not fast:
            text, shift = " " + text, 1
        # split on special tokens: (start, end, is_special); an lstrip token (<mask>) eats the whitespace
        # on its left
        pieces: list[tuple[int, int, bool]] = []
        pos = 0
        if self._special_re is not None:
            for m in self._special_re.finditer(text):
                pieces.append((pos, m.start(), False))
                pieces.append((m.start(), m.end(), True))
                pos = m.end()
        pieces.append((pos, len(text), False))
        swallowed = {}  # piece index -> start of the whitespace its lstrip token swallowed
        for i, (start, end, special) in enumerate(pieces):
            if special and text[start:end] in self._lstrip and i > 0 and pieces[i - 1][1] > pieces[i - 1][0]:
                prev_start = pieces[i - 1][0]
                kept_end = prev_start + len(text[prev_start : pieces[i - 1][1]].rstrip())
                pieces[i - 1] = (prev_start, kept_end, False)
                swallowed[i] = kept_end
        # raw offsets, untrimmed: (start, end, value); value is what the Rust encoding holds for trimming
        # (_post_process_offsets): the token, or for an lstrip token the whitespace it swallowed + the token
        tokens: list[str] = []
        offsets: list[tuple[int, int, str]] | None = [] if want_offsets else None
        enc = self.byte_encoder
        for i, (start, end, special) in enumerate(pieces):
            if special:
                token = text[start:end]
                tokens.append(token)
                if want_offsets:
                    ws_start = max(swallowed.get(i, start) - shift, 0)
                    offsets.append((ws_start, end - shift, " " * (start - shift - ws_start) + token))
                continue
            segment, seg_shift = text[start:end], 0
            if fast and add_prefix_space and segment and segment[0] != " ":  # Rust: not starts_with(' ')
                segment, seg_shift = " " + segment, 1  # the added space belongs to the segment's first char
            for m in self._pattern.finditer(segment):
                word = m.group()
                try:
                    raw = word.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise InputError(
                        f"text contains a lone surrogate {word[e.start]!r} (U+{ord(word[e.start]):04X}) that has no "
                        "UTF-8 encoding; byte-level BPE needs valid Unicode: fix the text, e.g. "
                        "text.encode('utf-16', 'surrogatepass').decode('utf-16')"
                    ) from None
                word_tokens = self._bpe("".join(enc[b] for b in raw))
                tokens.extend(word_tokens)
                if want_offsets:  # the prefix space belongs to character 0, as the Rust prepend() aligns it
                    spans = byte_char_offsets(word, m.start(), word_tokens)  # in the segment
                    spans = [(start + max(a - seg_shift, 0), start + (b - seg_shift if b > seg_shift else 1))
                             for a, b in spans]  # fmt: skip
                    offsets.extend((max(a - shift, 0), b - shift if b > shift else 1, t)
                                   for (a, b), t in zip(spans, word_tokens))  # fmt: skip
        return tokens, offsets

    def _post_process_offsets(self, ids: list[int], offsets: list, add_prefix_space=None) -> list:
        """``RobertaProcessing(trim_offsets=..., add_prefix_space=...)``, after truncation (as in Rust); with
        ``trim_offsets=False`` the byte-level offsets as they are."""
        if not self.trim_offsets:
            return [(a, b) for a, b, _ in offsets]
        prefix = self.add_prefix_space if add_prefix_space is None else add_prefix_space
        return trim_offsets([v for _, _, v in offsets], [(a, b) for a, b, _ in offsets], prefix)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Characters back to bytes, then UTF-8 with ``errors`` (invalid sequences -> U+FFFD by default)."""
        data = bytearray()
        for c in "".join(tokens):
            b = self.byte_decoder.get(c)
            if b is None:
                data += c.encode("utf-8")
            else:
                data.append(b)
        return data.decode("utf-8", errors=self.errors)

    def _decode(self, ids: list[int], skip_special_tokens: bool, **kwargs) -> str:
        """From a tokenizer.json: the Rust decode (special added tokens skipped when asked, then the ByteLevel
        decoder over all tokens at once); else the Python class's."""
        if self._tokenizer_json is None:
            return super()._decode(ids, skip_special_tokens, **kwargs)
        special = {i for t, i in self.added_tokens.items() if self._added_special[t]} if skip_special_tokens else set()
        return self.convert_tokens_to_string(self.convert_ids_to_tokens([i for i in ids if i not in special]))

    def _id_to_token(self, index: int):
        return self.ids_to_tokens.get(index)

    def _init_config(self) -> dict:
        return {"errors": self.errors, "add_prefix_space": self.add_prefix_space, "trim_offsets": self.trim_offsets}

    def _save_vocabulary(self, directory: Path):
        """vocab.json + merges.txt; loaded from a tokenizer.json: that file (added tokens brought up to date)
        instead, so both refimpl and transformers load the same Rust pipeline back."""
        import json

        if self._tokenizer_json is not None:
            data = dict(self._tokenizer_json)
            listed = {a["content"] for a in data.get("added_tokens") or []}
            data["added_tokens"] = list(data.get("added_tokens") or []) + [
                {"id": i, "content": t, "single_word": False, "lstrip": t in self._lstrip, "rstrip": False,
                 "normalized": not self._added_special[t], "special": self._added_special[t]}
                for t, i in sorted(self.added_tokens.items(), key=lambda kv: kv[1]) if t not in listed]  # fmt: skip
            path = directory / "tokenizer.json"
            path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            return [path]

        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        vocab_path.write_text(json.dumps(self.vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
        merges = sorted(self.bpe_ranks.items(), key=lambda kv: kv[1])
        merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for (a, b), _ in merges), "utf-8")
        return [vocab_path, merges_path]
