"""The quantization formats of refimpl.quantization against bitsandbytes 0.50.x on CPU, bit for bit.

Every expected value is computed by bitsandbytes / torch in the test. Matrices come from hypothesis: shapes
that are not multiples of the block size, odd element counts, zero rows and blocks, constant blocks,
magnitudes from 1e-30 to 1e30. NaN/inf policy: refimpl refuses them (bitsandbytes' value is not defined by
the format), tested at the end.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.errors import ConfigError
from refimpl.quantization import dynamic8, fourbit, int8, torch_float32

pytestmark = pytest.mark.parity
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def bnb():
    from reference import reference

    torch, _ = reference()
    # a skip here fails the run in CI, like any skipped parity test (conftest): CI installs the quant extra
    F = pytest.importorskip("bitsandbytes.functional", reason="bitsandbytes not installed: `pip install -e .[quant]`")
    from bitsandbytes.backends.default import ops as default_ops

    return torch, F, default_ops


@st.composite
def matrices(draw, max_rows=40, max_cols=300):
    """float32 matrices with the hard cases: zero rows, a constant run, tiny and huge magnitudes."""
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** draw(st.sampled_from([-30, -6, -1, 0, 2, 30]))
    w = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    kind = draw(st.sampled_from(["plain", "zero_row", "constant", "mixed", "zeros"]))
    if kind == "zero_row":
        w[rng.integers(rows)] = 0
    elif kind == "constant":
        w.reshape(-1)[: min(w.size, 200)] = np.float32(scale * 0.37)
    elif kind == "mixed":
        w.reshape(-1)[:: 7] *= np.float32(1e-12)
    elif kind == "zeros":
        w[:] = 0
    return w


def _dequantize_generic(torch, default_ops, packed, absmax, quant_type, blocksize, shape):
    """bitsandbytes' generic dequantization (the format's definition; its AVX-512 kernel is tested apart)."""
    from bitsandbytes.backends.utils import _get_4bit_code

    compute = default_ops._dequantize_4bit_compute
    compute = getattr(compute, "__wrapped__", compute)  # skip torch.compile: the same operations, eagerly
    return compute(packed.reshape(-1), absmax, _get_4bit_code(quant_type, packed.device), blocksize, shape,
                   torch.float32).numpy()


def _assert_equal(name, got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape or got.size == want.size, f"{name}: shape {got.shape} vs {want.shape}"
    diff = got.reshape(-1) != want.reshape(-1)
    assert not diff.any(), (f"{name}: {int(diff.sum())} of {diff.size} values differ, first at {int(np.argmax(diff))}: "
                            f"refimpl {got.reshape(-1)[diff][:4]}, bitsandbytes {want.reshape(-1)[diff][:4]}")


def test_codebooks_and_dynamic_map(bnb):
    torch, F, _ = bnb
    _assert_equal("nf4", fourbit.NF4_CODE, F.get_4bit_type("nf4", device="cpu").numpy())
    _assert_equal("fp4", fourbit.FP4_CODE, F.get_4bit_type("fp4", device="cpu").numpy())
    _assert_equal("dynamic map", dynamic8.create_dynamic_map(), F.create_dynamic_map().numpy())


def test_linspace_is_torchs(bnb):
    torch = bnb[0]
    for steps in (2, 3, 5, 9, 17, 33, 65, 100):
        _assert_equal(f"linspace {steps}", torch_float32.linspace_float32(0.1, 1.0, steps),
                      torch.linspace(0.1, 1.0, steps, dtype=torch.float32).numpy())


@SETTINGS
@given(n=st.integers(1, 40000), seed=st.integers(0, 2**32 - 1), threads=st.sampled_from([1, 2, 3]),
       magnitude=st.sampled_from([1e-3, 1.0, 1e3]))
def test_sum_and_mean_in_torchs_order(bnb, n, seed, threads, magnitude):
    torch = bnb[0]
    x = (np.random.default_rng(seed).random(n) * magnitude).astype(np.float32)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t = torch.from_numpy(x)
        want_sum, want_mean = np.float32(t.sum().item()), np.float32(t.mean().item())
    finally:
        torch.set_num_threads(old)
    assert torch_float32.sum_float32(x, threads=threads) == want_sum
    assert torch_float32.mean_float32(x, threads=threads) == want_mean


@SETTINGS
@given(w=matrices(), quant_type=st.sampled_from(["nf4", "fp4"]), blocksize=st.sampled_from([32, 64, 128, 4096]),
       double=st.booleans())
def test_quantize_4bit_bit_exact(bnb, w, quant_type, blocksize, double):
    torch, F, default_ops = bnb
    packed, state = F.quantize_4bit(torch.from_numpy(w), blocksize=blocksize, quant_type=quant_type,
                                    compress_statistics=double)
    mine_packed, mine = fourbit.quantize_4bit(w, blocksize=blocksize, quant_type=quant_type,
                                              compress_statistics=double, offset_threads=torch.get_num_threads())
    _assert_equal("packed", mine_packed, packed.numpy())
    assert mine_packed.shape == tuple(packed.shape) and mine_packed.dtype == np.uint8
    _assert_equal("absmax", mine.absmax, state.absmax.numpy())
    _assert_equal("code", mine.code, state.code.numpy())
    assert (mine.blocksize, mine.quant_type, mine.shape, mine.dtype) == (
        state.blocksize, state.quant_type, tuple(state.shape), "float32")
    if double:
        _assert_equal("offset", mine.offset, state.offset.numpy())
        _assert_equal("state2.absmax", mine.state2.absmax, state.state2.absmax.numpy())
        _assert_equal("state2.code", mine.state2.code, state.state2.code.numpy())
        assert mine.state2.blocksize == state.state2.blocksize == 256
        absmax = F.dequantize_blockwise(state.absmax, state.state2) + state.offset
        _assert_equal("nested absmax", fourbit.absmax_of(mine), absmax.numpy())
    else:
        absmax = state.absmax
    want = _dequantize_generic(torch, default_ops, packed, absmax, quant_type, blocksize, state.shape)
    _assert_equal("dequantized", fourbit.dequantize_4bit(mine_packed, mine), want)


@pytest.mark.parametrize("source", ["float16", "bfloat16"])
def test_quantize_4bit_half_sources(bnb, source):
    torch, F, _ = bnb
    ml_dtypes = pytest.importorskip("ml_dtypes") if source == "bfloat16" else None
    w = np.random.default_rng(1).standard_normal((33, 130)).astype(np.float32)
    tw = torch.from_numpy(w).to(getattr(torch, source))
    host = w.astype(ml_dtypes.bfloat16) if source == "bfloat16" else w.astype(np.float16)
    packed, state = F.quantize_4bit(tw, blocksize=64, quant_type="nf4", compress_statistics=True)
    mine_packed, mine = fourbit.quantize_4bit(host, blocksize=64, quant_type="nf4", compress_statistics=True)
    _assert_equal("packed", mine_packed, packed.numpy())
    _assert_equal("absmax", mine.absmax, state.absmax.numpy())
    assert mine.dtype == source
    want = F.dequantize_4bit(packed, state).float().numpy()
    _assert_equal("dequantized", fourbit.dequantize_4bit(mine_packed, mine).astype(np.float32), want)


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_dequantize_matches_bitsandbytes_cpu_kernel_where_it_is_right(bnb, quant_type):
    """bitsandbytes' own CPU dequantize kernel (F.dequantize_4bit) agrees wherever rows hold whole blocks
    or the last dimension is not a multiple of 16. Where it is a multiple of 16 but not of the block size, its
    AVX-512 kernel reads absmax per row and gives other values (docs/precision.md): checked so the day it
    changes, this test says so."""
    torch, F, default_ops = bnb
    rng = np.random.default_rng(2)
    for shape, kernel_right in (((64, 128), True), ((37, 100), True), ((5, 33), True), ((8, 96), False)):
        w = rng.standard_normal(shape).astype(np.float32)
        packed, state = F.quantize_4bit(torch.from_numpy(w), blocksize=64, quant_type=quant_type)
        mine = fourbit.dequantize_4bit(*fourbit.quantize_4bit(w, blocksize=64, quant_type=quant_type))
        kernel = F.dequantize_4bit(packed, state).numpy()
        avx512 = torch.backends.cpu.get_cpu_capability() == "AVX512"
        if kernel_right or not avx512:
            _assert_equal(f"{shape}", mine, kernel)
        else:
            assert (mine != kernel).any(), "bitsandbytes' AVX-512 dequantize kernel now agrees: update docs/precision.md"


@pytest.mark.parametrize("storage", ["float16", "float32", "int8"])
def test_quant_storage_views_the_same_bytes(bnb, storage):
    torch, F, _ = bnb
    w = np.random.default_rng(3).standard_normal((16, 64)).astype(np.float32)
    packed, _ = F.quantize_4bit(torch.from_numpy(w), blocksize=64, quant_type="nf4",
                                quant_storage=getattr(torch, storage))
    mine, _ = fourbit.quantize_4bit(w, blocksize=64, quant_type="nf4", quant_storage=storage)
    assert mine.dtype == np.dtype(storage) and mine.shape == tuple(packed.shape)
    _assert_equal("bytes", mine.view(np.uint8), packed.numpy().view(np.uint8))


@SETTINGS
@given(w=matrices(max_rows=20, max_cols=600), rounding=st.sampled_from(["cpu"]))
def test_blockwise_8bit_bit_exact(bnb, w, rounding):
    torch, F, _ = bnb
    flat = w.reshape(-1)
    q, state = F.quantize_blockwise(torch.from_numpy(flat), blocksize=256)
    mine_q, mine_absmax = dynamic8.quantize_blockwise(flat, blocksize=256, rounding=rounding)
    _assert_equal("q", mine_q, q.numpy())
    _assert_equal("absmax", mine_absmax, state.absmax.numpy())
    _assert_equal("dequantized", dynamic8.dequantize_blockwise(mine_q, mine_absmax),
                  F.dequantize_blockwise(q, state).numpy())


def test_nearest_rounding_differs_from_the_cpu_table_on_few_codes(bnb):
    """The CUDA kernel's exact nearest neighbour (rounding="nearest") and the CPU table differ on a few codes:
    measured on the absmax of a 384 x 1536 NF4 matrix (docs/precision.md)."""
    w = np.random.default_rng(4).standard_normal((1536, 384)).astype(np.float32)
    _, cpu = fourbit.quantize_4bit(w, compress_statistics=True)
    _, nearest = fourbit.quantize_4bit(w, compress_statistics=True, rounding="nearest")
    differ = int((cpu.absmax != nearest.absmax).sum())
    assert 0 < differ < 0.01 * cpu.absmax.size, differ


@SETTINGS
@given(a=matrices(max_rows=30, max_cols=200), threshold=st.sampled_from([0.0, 0.3, 1.0, 6.0]))
def test_int8_vectorwise_quant_bit_exact(bnb, a, threshold):
    torch, F, _ = bnb
    a = np.clip(a, -60000, 60000)  # float16's range: the layer input is cast to float16 first
    q, stats, cols = F.int8_vectorwise_quant(torch.from_numpy(a).half(), threshold=threshold)
    mine_q, mine_stats, mine_cols = int8.int8_vectorwise_quant(a, threshold)
    _assert_equal("int8", mine_q, q.numpy())
    _assert_equal("row_stats", mine_stats, stats.numpy())
    assert (cols is None) == (mine_cols is None)
    if cols is not None:
        _assert_equal("outlier_cols", mine_cols, cols.numpy())


@pytest.mark.parametrize("threshold", [0.0, 1.5, 6.0])
def test_int8_linear_against_linear8bitlt(bnb, threshold):
    """Without outlier columns the int8 linear is bit-identical; the outlier product (torch's addmm) is summed
    in another order (tests/tolerances.py, quant_int8_outliers)."""
    torch, F, _ = bnb
    import bitsandbytes as bnb_lib
    from tolerances import QUANT_TOLERANCES

    rng = np.random.default_rng(5)
    w = (rng.standard_normal((37, 100)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(37).astype(np.float32)
    layer = bnb_lib.nn.Linear8bitLt(100, 37, bias=True, has_fp16_weights=False, threshold=threshold)
    layer.weight = bnb_lib.nn.Int8Params(torch.from_numpy(w), requires_grad=False, has_fp16_weights=False)
    layer.bias = torch.nn.Parameter(torch.from_numpy(bias))
    layer = layer.to("cpu").eval()
    x = (rng.standard_normal((2, 9, 100)) * 1.5).astype(np.float32)
    with torch.no_grad():
        want = layer(torch.from_numpy(x)).numpy()
    cb, scb, _ = int8.int8_vectorwise_quant(w)
    _assert_equal("CB", cb, layer.state.CB.numpy())
    _assert_equal("SCB", scb, layer.state.SCB.numpy())
    got = int8.int8_linear(x, cb, scb, bias, threshold)
    outliers = threshold > 0 and (np.abs(x.astype(np.float16)) >= np.float16(threshold)).any()
    if not outliers:
        _assert_equal("y", got, want)
    else:
        atol, rtol = QUANT_TOLERANCES["int8_outliers"]
        assert np.abs(got - want).max() <= atol + rtol * np.abs(want).max()


def test_bad_input_is_named():
    w = np.ones((4, 64), np.float32)
    with pytest.raises(ConfigError, match="quant_type='nf5' does not exist"):
        fourbit.quantize_4bit(w, quant_type="nf5")
    with pytest.raises(ConfigError, match=r"blocksize=48 is not one bitsandbytes accepts.*64"):
        fourbit.quantize_4bit(w, blocksize=48)
    with pytest.raises(ConfigError, match="got float64.*astype"):
        fourbit.quantize_4bit(w.astype(np.float64))
    bad = w.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ConfigError, match=r"1 NaN or infinite value\(s\) \(first at index \(1, 3\)\)"):
        fourbit.quantize_4bit(bad)
    with pytest.raises(ConfigError, match="rounding='exact'"):
        dynamic8.quantize_blockwise(w, rounding="exact")
