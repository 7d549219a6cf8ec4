"""Fixtures shared by bnlib's tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Two threads on a shared 2-core machine can be ~100x slower for small tensors: run on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
