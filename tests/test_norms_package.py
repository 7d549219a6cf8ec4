"""bnlib.norms as a package: old import paths, every layer usable, and the house style of bnlib's files."""
import copy
import inspect
import io
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import bnlib
from bnlib import ghost, layers, lpnorm, models, noisy, norms
from bnlib.norms import batchnorm

ROOT = Path(__file__).resolve().parent.parent


def test_old_import_paths_give_the_same_objects():
    assert layers.BatchNorm1d is norms.BatchNorm1d and layers.BatchNorm2d is norms.BatchNorm2d
    assert layers.BatchNormFunction is norms.BatchNormFunction and layers._BatchNormBase is batchnorm._BatchNormBase
    assert layers.NoisyBatchNorm2d is noisy.NoisyBatchNorm2d is norms.NoisyBatchNorm2d
    assert ghost.GhostBatchNorm1d is norms.GhostBatchNorm1d and lpnorm.LpNorm2d is norms.LpNorm2d
    assert lpnorm.lp_stats is norms.lpnorm.lp_stats and layers.LOW_PRECISION is norms.base.LOW_PRECISION
    assert isinstance(models.make_norm("bn", 4, 2), norms.BatchNorm2d)
    assert isinstance(models.make_norm("l1", 4, 1), norms.LpNorm1d)


def test_the_preface_module_summaries_of_the_old_modules_are_unchanged():
    """chapters/preface.ipynb prints each module's first docstring line; the moved modules keep theirs."""
    nb = json.loads((ROOT / "chapters" / "preface.ipynb").read_text(encoding="utf-8"))
    printed = "".join(t for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
                      for t in o.get("text", []))
    for module in (layers, noisy, ghost, lpnorm):
        name = module.__name__
        summary = module.__doc__.strip().splitlines()[0]
        rows = [row.split(None, 1) for row in printed.splitlines()]  # "bnlib.x   summary" -> [name, summary]
        assert [name, summary] in rows, f"{name} {summary}"


def test_shared_parameter_and_buffer_code_lives_once():
    base = norms.base._NormBase
    for cls in (norms.BatchNorm1d, norms.GhostBatchNorm2d, norms.NoisyBatchNorm1d, norms.LpNorm2d,
                norms.BatchRenorm2d, norms.InstanceNorm1d, norms.MeanOnlyBatchNorm2d):
        assert issubclass(cls, base)
        assert "reset_running_stats" not in vars(cls) and "__init__" not in vars(cls)  # subclasses check dims


def example(cls):
    """(a small instance, an input for it) for every layer class bnlib.norms exports."""
    table = {
        "BatchNorm1d": ((3,), (4, 3)), "BatchNorm2d": ((3,), (2, 3, 4, 4)),
        "NoisyBatchNorm1d": ((3,), (4, 3)), "NoisyBatchNorm2d": ((3,), (2, 3, 4, 4)),
        "GhostBatchNorm1d": ((3,), (4, 3)), "GhostBatchNorm2d": ((3,), (2, 3, 4, 4)),
        "LpNorm1d": ((3,), (4, 3)), "LpNorm2d": ((3,), (2, 3, 4, 4)),
        "BatchRenorm1d": ((3,), (4, 3)), "BatchRenorm2d": ((3,), (2, 3, 4, 4)),
        "InstanceNorm1d": ((3,), (2, 3, 5)), "InstanceNorm2d": ((3,), (2, 3, 4, 4)),
        "GroupNorm": ((3, 6), (2, 6, 4, 4)), "LayerNorm": ((5,), (2, 3, 5)), "RMSNorm": ((5,), (2, 3, 5)),
        "WSConv2d": ((3, 4, 3), (2, 3, 6, 6)), "WNLinear": ((5, 4), (3, 5)), "WNConv2d": ((3, 4, 3), (2, 3, 6, 6)),
        "MeanOnlyBatchNorm1d": ((3,), (4, 3)), "MeanOnlyBatchNorm2d": ((3,), (2, 3, 4, 4)), "DyT": ((5,), (2, 5)),
    }
    args, shape = table[cls.__name__]
    kwargs = {"virtual_batch_size": 2} if cls.__name__.startswith("Ghost") else {}
    return cls(*args, **kwargs), torch.randn(shape)


MODULES = [getattr(norms, n) for n in norms.__all__
           if inspect.isclass(getattr(norms, n)) and issubclass(getattr(norms, n), nn.Module)]


@pytest.mark.parametrize("cls", MODULES, ids=[c.__name__ for c in MODULES])
def test_every_exported_layer_builds_runs_and_survives_save_copy_and_double(cls):
    """Catches what labml's group_norm/experiment.py shipped (an unimported fnorm.GroupNorm), and more."""
    torch.manual_seed(0)
    layer, x = example(cls)
    x.requires_grad_()
    out = layer(x)
    out.square().sum().backward()
    assert out.shape[0] == x.shape[0] and x.grad is not None and repr(layer).startswith(cls.__name__)
    assert all(p.grad is not None for p in layer.parameters())
    layer.eval()
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), layer(x), atol=0, rtol=0)
        torch.testing.assert_close(copy.deepcopy(layer)(x), layer(x), atol=0, rtol=0)
    double = layer.double()
    assert all(t.dtype == torch.float64 for t in list(double.parameters()) + [
        b for b in double.buffers() if b.is_floating_point()])
    assert double(x.detach().double()).dtype == torch.float64
    doc = inspect.getdoc(cls)
    assert doc and "Shape" in doc and ("(N" in doc or "(*" in doc), cls.__name__  # docstrings give shapes


def test_files_are_small():
    too_long = {str(p.relative_to(ROOT)): n for p in (ROOT / "bnlib").rglob("*.py")
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300}
    assert not too_long, f"expected bnlib files of at most 300 lines (got {too_long})"


def test_every_reshape_in_norms_has_a_shape_comment():
    """A reshape/view/flatten/unsqueeze line carries a comment (on it, or on the next line) with its shapes."""
    missing = []
    for path in sorted((ROOT / "bnlib" / "norms").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            code = line.split("#")[0]
            if code.lstrip().startswith(">>>") or not re.search(r"\.(reshape|view|flatten|unsqueeze)\(", code):
                continue
            comment = line.partition("#")[2] or (lines[i + 1].strip()[1:] if lines[i + 1].strip().startswith("#")
                                                 else "")
            if "(" not in comment:  # a shape: (N, C, *) -> ...
                missing.append(f"{path.name}:{i + 1}")
    assert not missing, f"expected a shape comment on every reshape (got none at {missing})"


def test_the_package_is_installed_and_documented():
    assert '"bnlib.norms"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "norms" in bnlib.__doc__
    for name in norms.__all__:
        assert getattr(norms, name).__doc__, name
