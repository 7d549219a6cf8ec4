"""Chapter kernels round alike on every x86-64 CPU: conftest caps torch, MKL and oneDNN at AVX2."""
import os
import platform
import subprocess
import sys

import pytest

from tools import kernel_env


def test_conftest_sets_the_kernel_environment():
    for key, value in kernel_env.NUMERICS.items():
        assert os.environ[key] == value, key
    assert os.environ["BNLIB_PROGRESS"] == "0" and os.environ["PYTHONHASHSEED"] == "0"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the cap is for x86-64 CPUs")
def test_a_kernel_started_now_runs_torch_at_avx2():
    # what a chapter kernel inherits: a fresh interpreter with this environment
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() in ("AVX2", "DEFAULT"), out.stdout  # never AVX512, whatever the CPU has
