"""pytest setup: choose the CPU kernel ISA for the whole run and report it.

The ISA can be forced two ways (both cap at what the CPU supports):
  DEEPCORE_CPU_ISA=generic pytest tests/       (read by deepcore at import)
  pytest tests/ --cpu-isa=avx2                  (switched after import, before any test)
"""
from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--cpu-isa", action="store", default=None,
                     choices=["avx512", "avx2", "generic"],
                     help="run deepcore's CPU kernels with this instruction set")


def pytest_configure(config):
    isa = config.getoption("--cpu-isa")
    if isa:
        os.environ["DEEPCORE_CPU_ISA"] = isa  # subprocesses started by tests inherit it
        import deepcore
        deepcore._C._set_isa(isa)


def pytest_report_header(config):
    import deepcore
    return (f"deepcore ISA: active={deepcore._C._active_isa()} "
            f"detected={deepcore._C._detected_isa()} threads={deepcore.get_num_threads()}")


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests may toggle grad mode or thread count; never let that leak into the next test."""
    import deepcore
    threads = deepcore.get_num_threads()
    grad = deepcore.is_grad_enabled()
    yield
    deepcore._C._set_grad_enabled(grad)
    deepcore.set_num_threads(threads)
