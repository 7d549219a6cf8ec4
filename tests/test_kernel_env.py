"""Numeric environments for chapter kernels (tools/kernel_env.py): named, checked, inherited."""
import os
import platform
import subprocess
import sys

import pytest

from tools import kernel_env
from tools.book import ROOT


def test_conftest_sets_the_kernel_environment():
    chosen = kernel_env.numerics()
    for key in kernel_env.KNOBS:
        assert os.environ.get(key) == chosen.get(key), key
    assert os.environ["BNLIB_PROGRESS"] == "0" and os.environ["PYTHONHASHSEED"] == "0"


def test_an_unknown_environment_says_which_exist(monkeypatch):
    monkeypatch.setenv("BNLIB_NUMERICS", "avx1024")
    with pytest.raises(ValueError, match=r"expected one of \['avx2', 'mixed', 'native', 'perturbed'\] \(got 'avx1024'\)"):
        kernel_env.numerics()


def test_ci_runs_the_chapters_a_second_time_perturbed():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "BNLIB_NUMERICS=perturbed python -m pytest" in ci


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="ATen's kernel choice on x86-64")
def test_a_kernel_started_in_the_perturbed_environment_runs_scalar_aten(monkeypatch):
    env = dict(os.environ)
    for key in kernel_env.KNOBS:
        env.pop(key, None)
    env.update(kernel_env.ENVIRONMENTS["perturbed"])
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                         capture_output=True, text=True, check=True, timeout=120, env=env)
    assert out.stdout.strip() == "DEFAULT", out.stdout
