"""The contract between the two kernel sets: every fast kernel (refimpl/kernels) against its reference
(refimpl/ops), over shapes, dtypes, masks, extreme values, non-contiguous inputs and the worker-thread
region. Bounds come from tests/tolerances.py (KERNEL_TOLERANCES, one row per op with its reason).
Also: the table covers every op once, and the worker-thread helpers keep their promises."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from refimpl import kernels as K
from refimpl import ops
from refimpl.errors import ConfigError
from refimpl.kernels import TABLE, Kernels
from refimpl.kernels.linear import input_major
from refimpl.kernels.threads import _MIN_BLOCK_ROWS, cpu_threads, map_blocks, map_rows, row_blocks, workers
from refimpl.ops.activations import ACT2FN
from tolerances import kernel_bounds

FAST, REF = Kernels("fast"), Kernels("reference")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
DTYPES = st.sampled_from([np.float32, np.float64])


def assert_close(fast, ref, op, dtype, scale=1.0):
    """|fast - ref| <= atol * scale + rtol * |ref|, the op's row of KERNEL_TOLERANCES."""
    atol, rtol = kernel_bounds(op, dtype)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype, (fast.shape, ref.shape, fast.dtype, ref.dtype)
    err = np.abs(fast.astype(np.float64) - ref.astype(np.float64))
    bound = atol * scale + rtol * np.abs(ref.astype(np.float64))
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert np.all(err <= bound), (
        f"{op} {np.dtype(dtype).name}: max error {err.max():.3g} at {worst} (bound {bound[worst]:.3g}), "
        f"fast {fast[worst]!r}, reference {ref[worst]!r}"
    )


def region(threads):
    """The fast set's worker-thread region (row and attention blocks on one thread per core), or none."""
    return cpu_threads(np) if threads else _Nothing()


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_table_names_two_implementations_of_every_op():
    assert set(TABLE) >= {"embedding", "linear", "layer_norm", "add_layer_norm", "softmax", "log_softmax", "erf",
                          "attention", "relative_key_scores", "relative_query_key_scores", "activation"}
    for op, (ref, fast) in TABLE.items():
        assert getattr(REF, op) is ref and getattr(FAST, op) is fast, op
        assert ref.__module__.startswith("refimpl.ops."), (op, ref.__module__)
        if fast is not ref:  # a fast kernel names the reference it implements
            assert fast.__module__.startswith("refimpl.kernels.") and f"ops.{ref.__module__.split('.')[-1]}" in (
                (fast.__doc__ or "") + (__import__(fast.__module__, fromlist=["_"]).__doc__ or "")), op
    with pytest.raises(ConfigError, match="kernels='textbook'"):
        Kernels("textbook")


def test_reference_kernels_are_plain_code():
    """Nothing under refimpl/ops imports threads or the fast package, or passes ``out=``."""
    import ast
    import pathlib

    for path in pathlib.Path(ops.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("threading", "concurrent", "kernels") for n in names), (path.name, names)
            if isinstance(node, ast.Call):
                assert all(k.arg != "out" for k in node.keywords), (path.name, ast.dump(node)[:80])
            if isinstance(node, ast.arg):
                assert node.arg != "out", path.name


# --- linear ------------------------------------------------------------------------------------------


@SETTINGS
@given(rows=st.integers(1, 300), i=st.integers(1, 40), o=st.integers(1, 40), lead3=st.booleans(),
       stored=st.sampled_from(["checkpoint", "input-major"]), bias=st.booleans(), strided=st.booleans(),
       threads=st.booleans(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_linear(rows, i, o, lead3, stored, bias, strided, threads, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 2 * i)).astype(dtype)
    x = x[:, ::2] if strided else x[:, :i]  # non-contiguous either way unless i == 2i
    if lead3 and rows % 3 == 0:
        x = x.reshape(3, rows // 3, i)
    w = rng.standard_normal((o, i)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if bias else None
    w_fast = input_major(w) if stored == "input-major" else w
    with region(threads):
        got = FAST.linear(x, w_fast, b)
    assert got.flags.c_contiguous
    assert_close(got, REF.linear(x, w, b), "linear", dtype, scale=math.sqrt(i))


def test_linear_big_enough_to_split_over_threads():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((4 * _MIN_BLOCK_ROWS + 5, 37)), rng.standard_normal((29, 37)), rng.standard_normal(29)
    with cpu_threads(np):
        got = FAST.linear(x, input_major(w), b)
    assert_close(got, REF.linear(x, w, b), "linear", np.float64, scale=math.sqrt(37))


# --- layer norm, softmax ----------------------------------------------------------------------------


@SETTINGS
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 80), st.integers(1, 50)), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       constant_rows=st.booleans(), threads=st.booleans(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_layer_norm_and_add_layer_norm(shape, scale, constant_rows, threads, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale + 0.5).astype(dtype)
    if constant_rows:
        x[0] = 0.5  # variance 0 (and an exact mean): both give the bias exactly
    r = (rng.standard_normal(shape) * scale).astype(dtype)
    w, b = rng.standard_normal(shape[-1]).astype(dtype), rng.standard_normal(shape[-1]).astype(dtype)
    with region(threads):
        got = FAST.layer_norm(x, w, b, 1e-12)
        got_add = FAST.add_layer_norm(x, r, w, b, 1e-12)
    assert_close(got, REF.layer_norm(x, w, b, 1e-12), "layer_norm", dtype, scale=_conditioning(x))
    assert_close(got_add, REF.add_layer_norm(x, r, w, b, 1e-12), "layer_norm", dtype, scale=_conditioning(x + r))
    if constant_rows:
        assert np.array_equal(got[0], np.broadcast_to(b, got[0].shape).astype(dtype))


def _conditioning(x):
    """1 + |mean| / std of each row [..., 1], from the rows themselves (float64): a short row's sample std
    can be far below the std it was drawn with (seen: D = 4 at scale 1e-3, ten times below), and the
    rounding of the mean counts in units of that std. Constant rows (std 0) come out exact: 1."""
    x = x.astype(np.float64)
    mean, std = x.mean(axis=-1, keepdims=True), x.std(axis=-1, keepdims=True)
    return 1 + np.abs(mean) / np.where(std > 0, std, np.inf)


def test_kernels_do_not_write_into_their_inputs():
    rng = np.random.default_rng(4)
    x, r = rng.standard_normal((300, 16)).astype(np.float32), rng.standard_normal((300, 16)).astype(np.float32)
    w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    x0, r0 = x.copy(), r.copy()
    with cpu_threads(np):
        FAST.layer_norm(x, w, b, 1e-5), FAST.add_layer_norm(x, r, w, b, 1e-5), FAST.softmax(x), FAST.log_softmax(x)
        FAST.activation("gelu")(x), FAST.activation("gelu_new")(x), FAST.erf(x)
    assert np.array_equal(x, x0) and np.array_equal(r, r0)


@SETTINGS
@given(x=st.integers(1, 5).flatmap(lambda n: arrays(np.float64, (n, 17), elements=st.floats(-1e4, 1e4))),
       masked_rows=st.booleans(), dtype=DTYPES)
def test_softmax_and_log_softmax(x, masked_rows, dtype):
    x = x.astype(dtype)
    if masked_rows:
        x[0] = np.finfo(dtype).min  # a fully masked row: uniform in both
    assert_close(FAST.softmax(x), REF.softmax(x), "softmax", dtype)
    assert_close(FAST.log_softmax(x), REF.log_softmax(x), "log_softmax", dtype, scale=1 + np.abs(x).max())
    if masked_rows:
        assert np.all(FAST.softmax(x)[0] == REF.softmax(x)[0])


# --- activations, erf -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACT2FN))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_activation(name, dtype):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(300_000) * 4, [0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 1e4, -1e4]])
    x = x.astype(dtype).reshape(2, -1)[:, ::1]
    with cpu_threads(np):
        got = FAST.activation(name)(x)
    assert_close(got, REF.activation(name)(x), "activation", dtype)
    strided = x[:, ::3]  # non-contiguous input
    assert_close(FAST.activation(name)(strided), REF.activation(name)(strided), "activation", dtype)


# --- attention ---------------------------------------------------------------------------------------


@SETTINGS
@given(b=st.integers(1, 3), n=st.integers(1, 5), s=st.integers(1, 9), t=st.integers(1, 9), h=st.integers(1, 7),
       masked=st.booleans(), heads=st.booleans(), positions=st.booleans(), threads=st.booleans(),
       cache_view=st.booleans(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_attention(b, n, s, t, h, masked, heads, positions, threads, cache_view, dtype, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, n, s, h)).astype(dtype)
    k, v = (rng.standard_normal((b, n, t + 3 * cache_view, h)).astype(dtype)[:, :, :t] for _ in range(2))
    mask = None
    if masked:
        keep = rng.random((b, 1, 1, t)) < 0.6
        keep[0] = False  # a fully masked row
        mask = np.where(keep, 0.0, np.finfo(dtype).min).astype(dtype)
    head_mask = rng.integers(0, 2, (1, n, 1, 1)).astype(dtype) if heads else None
    position_scores = rng.standard_normal((b, n, s, t)).astype(dtype) if positions else None
    seen, want = {}, {}  # record() callables copy what they keep: a kernel may work on in place afterwards
    with region(threads):
        ctx, probs = FAST.attention(q, k, v, mask, head_mask, position_scores,
                                    record=lambda name, a: seen.__setitem__(name, a.copy()))
    want_ctx, want_probs = REF.attention(q, k, v, mask, head_mask, position_scores,
                                         record=lambda name, a: want.__setitem__(name, a.copy()))
    assert_close(probs, want_probs, "attention_probs", dtype)
    assert_close(ctx, want_ctx, "attention_context", dtype)
    assert list(seen) == list(want) == ["scores", "masked_scores", "probs"]
    for name in ("scores", "masked_scores"):
        finite = want[name] > np.finfo(dtype).min / 2  # masked entries are finfo.min plus a score: compare the rest
        assert_close(np.where(finite, seen[name], 0), np.where(finite, want[name], 0), "attention_scores", dtype,
                     scale=math.sqrt(h))
    np.testing.assert_array_equal(seen["probs"], probs)


def test_attention_large_scores_split_into_head_blocks():
    """S = T = 600: one head's scores (1.4 MB) fill a block; several blocks per batch element."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 600, 8)).astype(np.float32) for _ in range(3))
    with cpu_threads(np):
        ctx, probs = FAST.attention(q, k, v)
    want_ctx, want_probs = REF.attention(q, k, v)
    assert_close(probs, want_probs, "attention_probs", np.float32)
    assert_close(ctx, want_ctx, "attention_context", np.float32)


@SETTINGS
@given(b=st.integers(1, 3), n=st.integers(1, 4), s=st.integers(1, 6), t=st.integers(1, 6), h=st.integers(1, 6),
       dtype=DTYPES, seed=st.integers(0, 2**16))
def test_relative_position_scores(b, n, s, t, h, dtype, seed):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((b, n, s, h)).astype(dtype), rng.standard_normal((b, n, t, h)).astype(dtype)
    table = rng.standard_normal((2 * 8 - 1, h)).astype(dtype)
    emb = ops.attention.relative_position_embeddings(table, np.arange(s) + (t - s if t > s else 0), np.arange(t), 8)
    assert_close(FAST.relative_key_scores(q, emb), REF.relative_key_scores(q, emb), "attention_scores", dtype,
                 scale=math.sqrt(h))
    assert_close(FAST.relative_query_key_scores(k, emb), REF.relative_query_key_scores(k, emb), "attention_scores",
                 dtype, scale=math.sqrt(h))


# --- worker threads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 31, 64, 1000, 4096])
def test_map_rows_equals_whole_call_with_and_without_threads(rows):
    rng = np.random.default_rng(rows)
    x, y = rng.standard_normal((rows, 5)), rng.standard_normal((rows, 3))

    def fn(a, c):
        return np.concatenate([a * 2, c.sum(-1, keepdims=True)], -1), a[..., :2] - 1

    want = fn(x, y)
    for ctx in (_Nothing(), cpu_threads(np)):
        with ctx:
            got = map_rows(fn, x.reshape(1, rows, 5), y.reshape(1, rows, 3), width=(6, 2))
        np.testing.assert_array_equal(got[0][0], want[0])
        np.testing.assert_array_equal(got[1][0], want[1])


def test_row_blocks_cover_rows_in_order():
    for rows in (1, 31, 32, 100, 4096, 4097):
        blocks = row_blocks(rows, np)
        assert blocks[0].start == 0 and blocks[-1].stop == rows
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))


def test_map_blocks_runs_every_block_once_and_propagates_errors():
    seen = []
    with cpu_threads(np):
        map_blocks(seen.append, range(50))
        assert sorted(seen) == list(range(50))

        def boom(i):
            if i == 7:
                raise ValueError("block 7")

        with pytest.raises(ValueError, match="block 7"):
            map_blocks(boom, range(20))
        inner = []
        map_blocks(lambda i: (inner.append(workers()), map_blocks(lambda j: None, range(3))), range(4))
        assert set(inner) == {1}  # no nested threading inside a block


def test_region_is_opened_only_for_inputs_worth_splitting(monkeypatch):
    """Fewer than two row blocks' worth of rows: no region (the BLAS keeps its threads); else the region's
    threads are the BLAS's thread count on entry, and the BLAS runs single-threaded inside. The reference
    set opens no region at all. (On a quiet machine: other processes' load, which takes threads away, is
    tools/bench_contention.py's subject, so it is held out here.)"""
    from threadpoolctl import threadpool_info

    import refimpl.kernels.threads as threads

    monkeypatch.setattr(threads, "free_cores", lambda wanted: wanted)

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    with cpu_threads(np, rows=2 * _MIN_BLOCK_ROWS - 1):
        assert workers() == 1 and blas_threads() == before
    with cpu_threads(np, rows=2 * _MIN_BLOCK_ROWS):
        assert workers() == max(before)
        if max(before) > 1:
            assert set(blas_threads()) == {1}
    with REF.region(np, rows=10_000):
        assert workers() == 1 and blas_threads() == before
    assert blas_threads() == before


def test_default_set_is_fast_unless_the_suite_runs_reference(request):
    assert K.get_kernels().name == request.config.getoption("--kernels")
    assert K.get_kernels("reference").name == "reference" and K.get_kernels(FAST) is FAST
