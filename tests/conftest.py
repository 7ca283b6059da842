"""Shared pytest fixtures and markers."""

from __future__ import annotations

import pytest
import torch

from pyadvt import _ext

# The suite's models are tiny: intra-op threads cost more in synchronisation than they gain
# (and on a shared 2-core machine they wait on each other), so tests run single-threaded.
torch.set_num_threads(1)

CUDA_KERNELS = torch.cuda.is_available() and "cuda" in _ext.compiled_backends()


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU and pyadvt's CUDA kernels")
    for item in items:
        if "needs_cuda" in item.keywords and not CUDA_KERNELS:
            item.add_marker(skip_cuda)


def device_params():
    """[cpu] plus cuda (marked needs_cuda) for parametrising CPU/CUDA parity tests."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
